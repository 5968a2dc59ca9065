import { createHash } from 'node:crypto';
import type { Config } from './config.js';
import { engineProblem } from './docker.js';
import { imageId, labelNode, listNodes, swarmInfo, swarmProblem } from './swarm.js';

/**
 * The swarm's nodes as the Swarm backend sees them: whether this engine manages a swarm, which nodes
 * hold the runtime images (a node label that scripts/swarm-images.sh sets once it loaded them, and
 * that services are constrained to), and each node's address.
 */

// Swarm calls are not cheap: an answer about the swarm is reused for this long.
const CACHE_MS = 2_000;

/** The node label saying a node holds these exact images: `lowcode-faas.images.TAG=1`, TAG from their ids. */
export function imagesLabel(ids: string[]): string {
	return `lowcode-faas.images.${createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 12)}`;
}

export type SwarmPlacement = ReturnType<typeof createPlacement>;

export function createPlacement(config: Config) {
	const addresses = new Map<string, string>();
	let checked: { at: number; problem: string | null; label: string } | undefined;
	let labelled = '';

	let asking: Promise<{ problem: string | null; label: string }> | undefined;

	/** Null when services can be created: the engine answers, manages a swarm, and holds the runtime images. One question at a time. */
	function managerProblem(): Promise<{ problem: string | null; label: string }> {
		if (checked && Date.now() - checked.at < CACHE_MS) return Promise.resolve(checked);
		asking ??= askManager().finally(() => {
			asking = undefined;
		});
		return asking;
	}

	async function askManager(): Promise<{ problem: string | null; label: string }> {
		const engine = await engineProblem();
		let problem: string | null = engine ? `Docker is unreachable: ${engine}` : null;
		let label = '';
		let info: Awaited<ReturnType<typeof swarmInfo>> | undefined;
		if (!problem) {
			info = await swarmInfo();
			problem = swarmProblem(info);
		}
		if (!problem) {
			const images = Object.values(config.images);
			const ids = await Promise.all(images.map(imageId));
			const missing = images.filter((_, i) => !ids[i]);
			if (missing.length > 0) problem = `The runtime image ${missing.join(' and ')} is missing on this manager; build it with: npm run setup.`;
			else label = imagesLabel(ids);
			// The manager holds them: say so on its node, so that services may be placed on it.
			if (label && labelled !== label && info?.NodeID) {
				await labelNode(info.NodeID, label, '1');
				labelled = label;
			}
		}
		checked = { at: Date.now(), problem, label };
		return checked;
	}

	/** Ready nodes that lack the runtime images, and nodes that are not ready, with Swarm's word (by hostname). */
	async function nodeReport(label: string): Promise<{ lacking: string[]; down: string[] }> {
		const nodes = await listNodes();
		for (const n of nodes) if (n.addr && n.addr !== '0.0.0.0') addresses.set(n.id, n.addr);
		return {
			lacking: nodes.filter((n) => n.state === 'ready' && n.availability === 'active' && n.labels[label] !== '1').map((n) => n.hostname),
			down: nodes.filter((n) => n.state !== 'ready').map((n) => `${n.hostname} (${n.message ? `${n.state}: ${n.message}` : n.state})`),
		};
	}

	return {
		/** Why no service can be started now (null: they can). `full` also asks every node (for /readyz). */
		async problem(full = false): Promise<string | null> {
			const { problem, label } = await managerProblem().catch((err: Error) => ({ problem: `The swarm cannot be asked: ${err.message}`, label: '' }));
			if (problem || !full) return problem;
			const nodes = await listNodes().catch(() => []);
			const ready = nodes.filter((n) => n.state === 'ready' && n.availability === 'active');
			if (!ready.some((n) => n.labels[label] === '1')) return 'No active node of the swarm holds the runtime images; load them with: scripts/swarm-images.sh NODE';
			return null;
		},
		/** For /readyz: the nodes where functions cannot be placed for want of the images, and those down (their tasks are lost). */
		async notes(): Promise<Record<string, unknown>> {
			const { label } = await managerProblem().catch(() => ({ label: '' }));
			if (!label) return {};
			const { lacking, down } = await nodeReport(label).catch(() => ({ lacking: [], down: [] }));
			return { backend: 'swarm', nodes_without_images: lacking, nodes_down: down };
		},
		/** The placement constraint of every service: nodes that hold the images. */
		async constraint(): Promise<string> {
			const { label } = await managerProblem();
			return label ? `node.labels.${label}==1` : '';
		},
		/** Why a node can run nothing now ("down: heartbeat failure"), with its name; null while it is ready. */
		async lost(nodeId: string): Promise<{ node: string; why: string } | null> {
			const node = (await listNodes().catch(() => [])).find((n) => n.id === nodeId);
			if (!node || node.state === 'ready') return null;
			return { node: node.hostname, why: node.message ? `${node.state}: ${node.message}` : node.state };
		},
		/** The address a node's host-mode ports answer on. */
		async address(nodeId: string): Promise<string> {
			if (!addresses.has(nodeId)) await nodeReport('').catch(() => {});
			// A node advertising no usable address is this one (a single-node swarm).
			return addresses.get(nodeId) ?? '127.0.0.1';
		},
	};
}
