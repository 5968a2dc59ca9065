import { execa } from 'execa';
import type { Sandbox } from './config.js';
import { DockerError, docker } from './docker.js';
import { log } from './log.js';

/**
 * Every docker CLI call of the Swarm backend (services, configs, secrets, tasks, nodes) and nothing
 * else. As in docker.ts, options end with `--` wherever names follow.
 */

/** Where a function's environment is mounted in its task (/run/secrets/NAME): read by the runtime entry, never a command line. */
export const ENV_SECRET = 'lowcode-faas-env';

export interface ServiceSpec {
	name: string;
	image: string;
	/** Labels of the service, and of its tasks' containers (the die events carry those). */
	labels: Record<string, string>;
	/** Platform constants only (HOME, DENO_DIR...): a function's own variables travel in `secret`. */
	env: Record<string, string>;
	/** The published port on the node (host mode) and the port inside. */
	port: { published: number; target: number };
	network: string;
	configs: { name: string; target: string }[];
	secret: string;
	command: string[];
	/** Placement constraints, e.g. node.labels.lowcode-faas.images==ID. */
	constraints: string[];
	sandbox: Sandbox;
}

/** `docker service create` arguments: one replica, published in host mode, with every sandbox flag Swarm has (see README, Scaling out). */
export function serviceArgs(spec: ServiceSpec): string[] {
	const { sandbox: box } = spec;
	const [uid, gid = uid] = box.user.split(':');
	// Swarm replaces a task that fails (the scheduler has let its instance go by then, and parks the service).
	// Not `none`: with it, Swarm 20.10 starts no task when a service scaled to 0 goes back to 1, every other time.
	const args = ['service', 'create', '--detach', '--no-resolve-image', '--replicas', '1', '--restart-condition', 'on-failure', '--name', spec.name];
	for (const [key, value] of Object.entries(spec.labels)) args.push('--label', `${key}=${value}`, '--container-label', `${key}=${value}`);
	for (const [key, value] of Object.entries(spec.env)) args.push('--env', `${key}=${value}`);
	for (const c of spec.configs) args.push('--config', `source=${c.name},target=${c.target},mode=0444`);
	for (const c of spec.constraints) args.push('--constraint', c);
	if (box.readOnlyRoot) args.push('--read-only');
	// biome-ignore format: docker flags stay paired with their values
	args.push(
		'--publish', `mode=host,target=${spec.port.target},published=${spec.port.published},protocol=tcp`,
		'--network', spec.network,
		// Only the function's user reads its variables.
		'--secret', `source=${spec.secret},target=${ENV_SECRET},uid=${uid},gid=${gid},mode=0400`,
		// Swarm's tmpfs is nosuid,nodev,noexec; it has no inode cap.
		'--mount', `type=tmpfs,target=/tmp,tmpfs-size=${box.tmpMb * 1024 * 1024}`,
		'--user', box.user,
		'--cap-drop', 'ALL',
		'--limit-pids', String(box.pidsLimit),
		'--limit-memory', `${box.memoryMb}m`,
		'--limit-cpu', String(box.cpus),
		'--ulimit', `nofile=${box.nofile}:${box.nofile}`,
		'--init',
		'--log-driver', 'json-file', '--log-opt', `max-size=${box.logMaxKb}k`, '--log-opt', 'max-file=1',
		'--', spec.image, ...spec.command,
	);
	return args;
}

const gone = (err: unknown) => err instanceof DockerError && /not found|no such/i.test(err.message);

export async function createService(spec: ServiceSpec, signal?: AbortSignal): Promise<void> {
	await docker(serviceArgs(spec), { signal });
	log('info', 'service created', { service: spec.name, image: spec.image, port: spec.port.published });
}

/** Sets a service's replicas (0: parked; 1: serving) without waiting for its tasks. */
export async function scaleService(name: string, replicas: number): Promise<void> {
	await docker(['service', 'update', '--detach', '--replicas', String(replicas), '--', name]);
}

/** `docker <kind> rm` of services, configs or secrets; one already gone counts as removed, one still in use is left (and said). */
export async function removeObjects(kind: 'service' | 'config' | 'secret', names: string[]): Promise<void> {
	// One by one: docker stops at nothing, but one failure would hide which others went.
	await Promise.all(
		names.map(async (name) => {
			try {
				await docker([kind, 'rm', '--', name], { timeoutMs: 60_000 });
				log('info', `${kind} removed`, { [kind]: name });
			} catch (err) {
				if (gone(err)) return;
				log('warn', `${kind} removal failed`, { [kind]: name, error: (err as Error).message });
				throw err;
			}
		}),
	);
}

/** Names of the services, configs or secrets carrying every given label. */
export async function listObjects(kind: 'service' | 'config' | 'secret', labels: Record<string, string>): Promise<string[]> {
	const args = [kind, 'ls', '--format', '{{.Name}}'];
	for (const [key, value] of Object.entries(labels)) args.push('--filter', `label=${key}=${value}`);
	return (await docker(args)).split('\n').filter(Boolean);
}

/** Creates a config or secret from `content` (on stdin, never the command line); one of that name already there is kept. */
export async function createObject(kind: 'config' | 'secret', name: string, labels: Record<string, string>, content: string): Promise<void> {
	const args = [kind, 'create'];
	for (const [key, value] of Object.entries(labels)) args.push('--label', `${key}=${value}`);
	try {
		await docker([...args, '--', name, '-'], { input: content });
	} catch (err) {
		// Content-addressed names: the same name holds the same content.
		if (!/already exists|AlreadyExists/i.test((err as Error).message)) throw err;
	}
}

export interface TaskState {
	id: string;
	/** new, pending, assigned, ..., running, complete, failed, shutdown, rejected, orphaned, remove. */
	state: string;
	/** What Swarm wants of it: `shutdown` once it is replaced, also while its lost node still reports it running. */
	desiredState: string;
	/** Swarm's error for a task that failed or could not be placed ('' when none). */
	error: string;
	exitCode: number;
	nodeId: string;
	/** The host-mode port it is published on; 0 until it runs. */
	port: number;
}

/** Ids of a service's tasks that Swarm wants running (newest first). */
export async function runningTasks(service: string): Promise<string[]> {
	return (await docker(['service', 'ps', '--no-trunc', '--quiet', '--filter', 'desired-state=running', '--', service])).split('\n').filter(Boolean);
}

interface RawTask {
	ID: string;
	NodeID?: string;
	DesiredState?: string;
	Status?: { State?: string; Err?: string; ContainerStatus?: { ExitCode?: number }; PortStatus?: { Ports?: { PublishedPort?: number }[] } };
}

/** The state of tasks by id; a task Swarm no longer has is missing from the answer. */
export async function inspectTasks(ids: string[]): Promise<TaskState[]> {
	if (ids.length === 0) return [];
	let out: string;
	try {
		out = await docker(['inspect', '--type', 'task', '--format', '{{json .}}', '--', ...ids]);
	} catch (err) {
		// Some of them are gone: ask one by one.
		if (ids.length === 1 || !gone(err)) return gone(err) ? [] : Promise.reject(err);
		return (await Promise.all(ids.map((id) => inspectTasks([id])))).flat();
	}
	return out
		.split('\n')
		.filter(Boolean)
		.map((line) => {
			const t = JSON.parse(line) as RawTask;
			return {
				id: t.ID,
				state: t.Status?.State ?? 'unknown',
				desiredState: t.DesiredState ?? 'unknown',
				error: t.Status?.Err ?? '',
				exitCode: t.Status?.ContainerStatus?.ExitCode ?? -1,
				nodeId: t.NodeID ?? '',
				port: t.Status?.PortStatus?.Ports?.[0]?.PublishedPort ?? 0,
			};
		});
}

/** The last lines a task printed (stdout and stderr), from `docker service logs`; '' when there are none. */
export async function taskLogs(taskId: string, lines: number): Promise<string> {
	try {
		const { all } = await execa('docker', ['service', 'logs', '--raw', '--no-task-ids', '--tail', String(lines), '--', taskId], { all: true, timeout: 10_000, stdin: 'ignore' });
		return all ?? '';
	} catch {
		return '';
	}
}

export interface SwarmInfo {
	LocalNodeState?: string;
	ControlAvailable?: boolean;
	NodeID?: string;
	Error?: string;
}

export async function swarmInfo(): Promise<SwarmInfo> {
	return JSON.parse(await docker(['info', '--format', '{{json .Swarm}}'], { timeoutMs: 10_000 })) as SwarmInfo;
}

/** Null when this engine manages a swarm; else why the platform cannot start services on it. */
export function swarmProblem(info: SwarmInfo): string | null {
	if (info.LocalNodeState !== 'active') {
		const state = info.LocalNodeState || 'inactive';
		return `LOWCODE_FAAS_BACKEND=swarm but this Docker engine is not in a swarm (state: ${state}${info.Error ? `, ${info.Error}` : ''}); run: docker swarm init`;
	}
	if (!info.ControlAvailable) return 'LOWCODE_FAAS_BACKEND=swarm but this Docker engine is a swarm worker, not a manager; run the platform on a manager node';
	return null;
}

export interface NodeInfo {
	id: string;
	hostname: string;
	addr: string;
	/** ready, down, unknown, disconnected. */
	state: string;
	/** Why it is in that state ("heartbeat failure"), '' when Swarm says nothing. */
	message: string;
	availability: string;
	labels: Record<string, string>;
}

export async function listNodes(): Promise<NodeInfo[]> {
	const ids = (await docker(['node', 'ls', '--quiet'])).split('\n').filter(Boolean);
	if (ids.length === 0) return [];
	const out = await docker(['node', 'inspect', '--format', '{{json .}}', '--', ...ids]);
	return out
		.split('\n')
		.filter(Boolean)
		.map((line) => {
			const n = JSON.parse(line) as { ID: string; Description?: { Hostname?: string }; Status?: { State?: string; Addr?: string; Message?: string }; Spec?: { Availability?: string; Labels?: Record<string, string> } };
			return { id: n.ID, hostname: n.Description?.Hostname ?? n.ID, addr: n.Status?.Addr ?? '', state: n.Status?.State ?? 'unknown', message: n.Status?.Message ?? '', availability: n.Spec?.Availability ?? '', labels: n.Spec?.Labels ?? {} };
		});
}

export async function labelNode(id: string, key: string, value: string): Promise<void> {
	await docker(['node', 'update', '--label-add', `${key}=${value}`, '--', id]);
}

/** The local image's id, '' when this engine does not have it. */
export async function imageId(image: string): Promise<string> {
	try {
		return (await docker(['image', 'inspect', '--format', '{{.Id}}', '--', image], { timeoutMs: 10_000 })).trim();
	} catch (err) {
		if (err instanceof DockerError && err.kind === 'unreachable') throw err;
		return '';
	}
}

/**
 * The bridge network every task joins, on each node: Swarm-scoped, made from a node-local
 * config-only network that turns inter-container traffic off (a Swarm network's own options are not
 * applied to a bridge). Each node needs the config-only network (scripts/swarm-images.sh makes it).
 */
export async function ensureNetwork(name: string): Promise<void> {
	const exists = async (n: string) =>
		docker(['network', 'inspect', '--format', '{{.Id}}', '--', n]).then(
			() => true,
			() => false,
		);
	if (await exists(name)) return;
	const local = `${name}-config`;
	if (!(await exists(local))) {
		await docker(['network', 'create', '--config-only', '--opt', 'com.docker.network.bridge.enable_icc=false', '--', local]).catch((err) => {
			if (!/already exists/i.test((err as Error).message)) throw err;
		});
	}
	await docker(['network', 'create', '--driver', 'bridge', '--scope', 'swarm', '--config-from', local, '--', name]).catch((err) => {
		if (!/already exists/i.test((err as Error).message)) throw err;
	});
	log('info', 'swarm network created', { network: name });
}
