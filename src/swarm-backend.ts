import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Backend, type Exit, InstanceExited, type InstanceSpec, StartFailure } from './backend.js';
import type { Config } from './config.js';
import { listContainers, removeContainers, watchDieEvents } from './docker.js';
import { LABEL } from './docker-backend.js';
import { createKeyedOnce } from './locks.js';
import { log } from './log.js';
import { ReadyTimeout, waitReady } from './readiness.js';
import { envProblem } from './settings.js';
import { type TaskState, createObject, createService, ensureNetwork, inspectTasks, listObjects, removeObjects, scaleService, taskLogs } from './swarm.js';
import { type SwarmPlacement, createPlacement } from './swarm-nodes.js';
import { DENO_ENTRY, ended, functionEnv, functionService, serviceName, sizeProblem } from './swarm-spec.js';
import { explainTask as explainOf, pollTasks, waitRunning } from './swarm-tasks.js';

/**
 * Function instances as Docker Swarm services: one service of one replica per instance, published in
 * host mode on a port of LOWCODE_FAAS_SWARM_PORTS, so the scheduler picks the replica per request as
 * it picks containers (Swarm's own scale-down would choose its victim itself, a busy one maybe). The
 * source travels as a Swarm config, the environment as a Swarm secret. An instance let go is scaled to
 * zero and parked; the next start of the same version scales it back to one (Swarm's cold start).
 */

const SCHEDULE_WAIT_MS = 30_000;
/** One service, serving an instance or parked at zero replicas. */
interface Service {
	name: string;
	fn: string;
	version: string;
	port: number;
	config: string;
	secret: string;
	/** The instance it serves; null while parked. */
	instance: string | null;
	/** Its current task once known. */
	task: string;
	/** Its task answered: from here on the poll watches it (a start watches its own, and waits out a replacement). */
	serving: boolean;
	/**
	 * It served once: only then is it parked when let go. One whose start failed would fail the same way
	 * at every unpark for as long as it stays parked (e.g. on a port of the range that another program holds).
	 */
	served: boolean;
	parkedAt: number;
	/** Creation or scaling in flight: a removal waits for it. */
	pending: Promise<unknown>;
}

export type SwarmBackend = Backend & {
	/** Removes every service, config and secret of this platform instance (SIGTERM). */
	close(): Promise<void>;
	/** Removes parked services past LOWCODE_FAAS_SWARM_PARK_S or of an outdated version, then unused configs and secrets. */
	sweep(): Promise<void>;
	/** Services by state, for tests and /metrics. */
	services(): { name: string; fn: string; instance: string | null }[];
	placement: SwarmPlacement;
};

export interface SwarmOptions {
	/** A function's current version (null when it is gone): a let-go instance of another version is removed, not parked. */
	currentVersion(fn: string): Promise<string | null>;
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

export async function createSwarmBackend(config: Config, options: SwarmOptions): Promise<SwarmBackend> {
	const labels = { [`${LABEL}.instance`]: config.instance };
	const placement = createPlacement(config);
	const services = new Map<string, Service>();
	const bound = new Map<string, Service>();
	const listeners = new Set<(exit: Exit) => void>();
	let cursor = config.swarmPorts.first;
	let closing = false;
	const network = `${config.sandbox.network}-swarm`;
	// Made once per process (a failure is tried again at the next start), as the Deno entry's config.
	const readyOnce = createKeyedOnce();
	const entryConfig = `lcf-${config.instance}-entry-${sha(DENO_ENTRY).slice(0, 12)}`;

	// Stem cells are runtime containers on this engine, handed a function over HTTP: no Swarm equivalent yet.
	if (config.stemCells > 0) log('info', 'stem cells are off with LOWCODE_FAAS_BACKEND=swarm');
	await removeEverything().catch((err) => log('warn', 'cannot remove the services left by a previous run', { error: (err as Error).message }));

	function emit(svc: Service, task: TaskState | null) {
		if (!svc.instance) return;
		const exit = { name: svc.instance, exitCode: task?.exitCode ?? -1, at: Date.now() };
		for (const onExit of listeners) onExit(exit);
	}

	/** A port of the range no service of this platform holds (Swarm itself refuses a task a port another task holds on its node). */
	function takePort(): number {
		const { first, last } = config.swarmPorts;
		const held = new Set([...services.values()].map((s) => s.port));
		for (let tries = 0; tries <= last - first; tries++) {
			const port = cursor;
			cursor = cursor >= last ? first : cursor + 1;
			if (!held.has(port)) return port;
		}
		return 0;
	}

	async function createFor(spec: InstanceSpec, signal: AbortSignal): Promise<Service> {
		const problem = envProblem(spec.env);
		if (problem) throw new StartFailure(`The service was not created: its settings are refused: ${problem} Change them with PATCH /functions/${spec.function}.`);
		const source = await readFile(spec.path);
		const env = JSON.stringify(functionEnv(spec.env, config.containerPort));
		// Before a port is taken: a start that cannot succeed must not make a parked service give its port up.
		const tooBig = sizeProblem(source.length, Buffer.byteLength(env));
		if (tooBig) throw new StartFailure(tooBig);
		// Parked services hold their ports: the longest parked gives its port up when the range is full.
		let port = takePort();
		const parked = [...services.values()].filter((s) => !s.instance && s.parkedAt > 0).sort((a, b) => a.parkedAt - b.parkedAt);
		if (!port && parked[0]) {
			await destroy(parked[0]).catch(() => {});
			port = takePort();
		}
		const { first, last } = config.swarmPorts;
		if (!port) throw new StartFailure(`Every port of LOWCODE_FAAS_SWARM_PORTS (${first}-${last}) is held by a service; widen the range or lower LOWCODE_FAAS_MAX_CONTAINERS.`);
		const svc: Service = {
			name: serviceName(spec.name),
			fn: spec.function,
			version: spec.version,
			port,
			config: `lcf-${config.instance}-src-${sha(source.toString('latin1')).slice(0, 24)}`,
			// Named by version, not by content: a hash of the values would let a guess at a value be checked.
			secret: `lcf-${config.instance}-env-${sha(`${spec.function}\n${spec.version}`).slice(0, 24)}`,
			instance: spec.name,
			task: '',
			serving: false,
			served: false,
			parkedAt: 0,
			pending: Promise.resolve(),
		};
		services.set(svc.name, svc);
		bound.set(spec.name, svc);
		const create = async () => {
			const constraint = await placement.constraint();
			const entry = spec.language === 'deno' ? entryConfig : null;
			await Promise.all([
				readyOnce('network', () => ensureNetwork(network)),
				entry ? readyOnce('entry', () => createObject('config', entryConfig, labels, DENO_ENTRY)) : null,
				createObject('config', svc.config, labels, source.toString('utf8')),
				createObject('secret', svc.secret, labels, env),
			]);
			await createService(functionService(config, spec, { name: svc.name, port: svc.port, network, config: svc.config, secret: svc.secret, entry, constraint }), signal);
		};
		svc.pending = create();
		await svc.pending;
		return svc;
	}

	/** A parked service of that exact version, bound to the instance and scaled back to one. */
	function unpark(spec: InstanceSpec): Service | null {
		const svc = [...services.values()].find((s) => !s.instance && s.fn === spec.function && s.version === spec.version && s.parkedAt > 0);
		if (!svc) return null;
		svc.instance = spec.name;
		svc.task = '';
		svc.serving = false;
		svc.parkedAt = 0;
		bound.set(spec.name, svc);
		svc.pending = scaleService(svc.name, 1);
		return svc;
	}

	async function start(spec: InstanceSpec, signal: AbortSignal): Promise<string> {
		const problem = await placement.problem();
		if (problem) throw new StartFailure(problem);
		// Swarm's own scheduling takes 1-3 s here, more under load: it is not the function's start, and gets its own allowance.
		const allowance = Math.max(config.readyWaitMs, SCHEDULE_WAIT_MS);
		const deadline = Date.now() + allowance;
		let svc = unpark(spec);
		try {
			if (svc) await svc.pending;
			else svc = await createFor(spec, signal);
		} catch (err) {
			if (err instanceof StartFailure) throw err;
			throw new StartFailure(`The service could not be started: ${(err as Error).message}.`, { cause: err });
		}
		if (signal.aborted && !(signal.reason instanceof InstanceExited)) throw new StartFailure('The function was removed before answering.');
		const task = await waitRunning(svc.name, deadline, allowance / 1000, signal, (t) => (svc.task = t.id), placement).catch(async (err) => {
			if (err instanceof StartFailure) throw err;
			// Its task ended while Swarm placed or started it (seen by the task poll): say how, not just that.
			const [ended] = signal.reason instanceof InstanceExited && svc.task ? await inspectTasks([svc.task]).catch(() => []) : [];
			throw new StartFailure(ended ? `The function ${await explainTask(ended, spec.memoryMb)} before answering.` : 'The function was removed before answering.');
		});
		const url = `http://${await placement.address(task.nodeId)}:${task.port}/`;
		const alive = async () => {
			const [now] = await inspectTasks([task.id]);
			if (!ended(now)) return true;
			emit(svc, now ?? null);
			return false;
		};
		try {
			await waitReady(url, Date.now() + config.readyWaitMs, signal, alive);
			svc.serving = true;
			svc.served = true;
			return url;
		} catch (err) {
			if (err instanceof ReadyTimeout) throw new StartFailure(`The function's server did not answer on port ${config.containerPort} within ${config.readyWaitMs / 1000} s.`);
			if (signal.aborted && !(signal.reason instanceof InstanceExited)) throw new StartFailure('The function was removed before answering.');
			const [now] = await inspectTasks([task.id]).catch(() => []);
			throw new StartFailure(`The function ${now ? await explainTask(now, spec.memoryMb) : 'was removed'} before answering.`);
		}
	}

	/** Lets instances go: each one's service is parked at zero replicas, or removed when its version is outdated or the platform stops. */
	async function remove(names: string[]): Promise<void> {
		await Promise.all(
			names.map(async (name) => {
				const svc = bound.get(name);
				if (!svc) {
					// Not an instance: a service left by a previous run (list() names those).
					if (!services.has(name)) await removeObjects('service', [name]);
					return;
				}
				bound.delete(name);
				svc.instance = null;
				svc.serving = false;
				await svc.pending.catch(() => {});
				const current = closing ? null : await options.currentVersion(svc.fn).catch(() => null);
				if (current !== svc.version || !svc.served) return destroy(svc);
				await scaleService(svc.name, 0).then(
					() => {
						svc.parkedAt = Date.now();
						return trimParked();
					},
					() => destroy(svc),
				);
			}),
		);
	}

	/** Removes a service, then its config and secret once no other service uses them. */
	async function destroy(svc: Service) {
		services.delete(svc.name);
		await removeObjects('service', [svc.name]);
		const used = [...services.values()];
		if (!used.some((s) => s.config === svc.config)) await removeObjects('config', [svc.config]).catch(() => {});
		if (!used.some((s) => s.secret === svc.secret)) await removeObjects('secret', [svc.secret]).catch(() => {});
	}

	/**
	 * Removes the longest-parked services beyond LOWCODE_FAAS_MAX_CONTAINERS. A parked service keeps its
	 * source and env in the swarm's Raft store (up to 1.5 MB), which every manager holds in memory: bounded
	 * by the port range alone, a caller could park a thousand of them there for LOWCODE_FAAS_SWARM_PARK_S.
	 */
	async function trimParked() {
		const parked = [...services.values()].filter((s) => !s.instance && s.parkedAt > 0).sort((a, b) => a.parkedAt - b.parkedAt);
		// Picked and taken out of `services` at once (destroy's first step): an unpark cannot take one meanwhile.
		const extra = parked.slice(0, Math.max(0, parked.length - config.maxContainers));
		await Promise.all(extra.map((s) => destroy(s).catch(() => {})));
	}

	async function sweep() {
		const now = Date.now();
		for (const svc of [...services.values()]) {
			if (svc.instance || !svc.parkedAt) continue;
			const stale = now - svc.parkedAt >= config.swarmParkMs || (await options.currentVersion(svc.fn).catch(() => null)) !== svc.version;
			if (stale && !svc.instance) await destroy(svc).catch(() => {});
		}
	}

	/** Every service, config and secret labelled with this platform instance. */
	async function removeEverything() {
		await removeObjects('service', await listObjects('service', labels));
		await removeObjects('config', await listObjects('config', labels)).catch(() => {});
		await removeObjects('secret', await listObjects('secret', labels)).catch(() => {});
	}

	const explainTask = (task: TaskState, memoryMb: number) => explainOf(task, memoryMb, placement);

	// A task on another node dies without an event here: the tasks of serving instances are also polled.
	const poller = pollTasks(
		() => (listeners.size ? [...bound.values()].filter((s) => s.serving).map((s) => s.task) : []),
		(task) => {
			for (const svc of bound.values()) if (svc.task === task.id) emit(svc, task);
		},
	);
	const parkTimer = setInterval(() => void sweep().catch(() => {}), Math.max(250, Math.min(5_000, config.swarmParkMs / 4)));
	parkTimer.unref();

	return {
		start,
		remove,
		list: async () => [...bound.keys(), ...(await listObjects('service', labels)).filter((name) => !services.has(name))],
		watchExits(onExit) {
			listeners.add(onExit);
			// A task's container is named SERVICE.SLOT.TASK: its die event says which task died (on this node).
			const stop = watchDieEvents({ ...labels, [LABEL]: 'swarm' }, (event) => {
				const task = event.name.split('.').pop();
				for (const svc of bound.values()) {
					if (svc.task === task && svc.instance) onExit({ name: svc.instance, exitCode: event.exitCode, at: event.at });
				}
			});
			return () => {
				listeners.delete(onExit);
				stop();
			};
		},
		async explain(name, memoryMb) {
			const svc = bound.get(name);
			const [task] = svc?.task ? await inspectTasks([svc.task]).catch(() => []) : [];
			return task ? explainTask(task, memoryMb) : 'was removed';
		},
		async logs(name, tail) {
			const svc = bound.get(name);
			return svc?.task ? taskLogs(svc.task, tail) : '';
		},
		problem: () => placement.problem(true),
		notes: () => placement.notes(),
		async close() {
			closing = true;
			clearInterval(poller);
			clearInterval(parkTimer);
			await Promise.allSettled([...services.values()].map((s) => s.pending));
			services.clear();
			bound.clear();
			readyOnce.clear();
			await removeEverything().catch((err) => log('warn', 'cannot remove the services', { error: (err as Error).message }));
			// Swarm takes seconds to stop the tasks of removed services: those on this node go at once.
			await removeContainers(await listContainers(labels).catch(() => [])).catch(() => {});
		},
		sweep,
		services: () => [...services.values()].map((s) => ({ name: s.name, fn: s.fn, instance: s.instance })),
		placement,
	};
}
