import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ConfigError, type Sandbox } from './config.js';
import { log } from './log.js';

/**
 * Every docker CLI call of the platform goes through this module. Options end with `--` wherever the CLI
 * takes names after them: no name, image or value can ever be read as a flag.
 */

export type DockerFailure = 'unreachable' | 'no_image' | 'port_taken' | 'not_found' | 'other';

export class DockerError extends Error {
	override name = 'DockerError';
	constructor(
		readonly kind: DockerFailure,
		message: string,
		options?: { cause?: unknown },
	) {
		super(message, options);
	}
}

function classify(stderr: string): DockerFailure {
	if (/Cannot connect to the Docker daemon|docker daemon is not running|permission denied while trying to connect|ENOENT/i.test(stderr)) return 'unreachable';
	if (/No such image|Unable to find image|pull access denied|manifest unknown/i.test(stderr)) return 'no_image';
	if (/port is already allocated|address already in use/i.test(stderr)) return 'port_taken';
	// Being removed by another call (a shutdown and a sweep meeting): as good as gone for whoever removes it.
	if (/No such container|is not running|removal of container .* is already in progress/i.test(stderr)) return 'not_found';
	return 'other';
}

/** The line of docker's stderr that says what went wrong, without its prefixes and help hints. */
function firstReason(stderr: string): string {
	const lines = stderr.split('\n').map((line) => line.trim());
	const reason = lines.find((line) => line && !/^(Run|See) 'docker .*--help'/.test(line)) ?? 'unknown error';
	return reason.replace(/^docker: /, '').replace(/^Error( response from daemon)?:\s*/i, '');
}

export interface CallOptions {
	timeoutMs?: number;
	signal?: AbortSignal;
	/** What the CLI reads on stdin (a Swarm config's or secret's content); none when unset. */
	input?: string;
}

/** One docker CLI call; its stdout, or a DockerError that never quotes the command line. */
export async function docker(args: string[], { timeoutMs = 30_000, signal, input }: CallOptions = {}): Promise<string> {
	try {
		const { stdout } = await execa('docker', args, { timeout: timeoutMs, cancelSignal: signal, ...(input === undefined ? { stdin: 'ignore' as const } : { input }) });
		return stdout;
	} catch (err) {
		const e = err as { stderr?: string; code?: string; isCanceled?: boolean; timedOut?: boolean; exitCode?: number };
		const kind = e.code === 'ENOENT' ? 'unreachable' : classify(e.stderr ?? '');
		// Never execa's own message: it repeats the command line, function environment values included.
		const reason = e.stderr
			? firstReason(e.stderr)
			: e.code === 'ENOENT'
				? 'the docker command is not installed'
				: e.timedOut
					? `docker ${args[0]} timed out`
					: e.isCanceled
						? `docker ${args[0]} was cancelled`
						: `docker ${args[0]} failed (exit code ${e.exitCode ?? 'unknown'})`;
		throw new DockerError(kind, reason, { cause: err });
	}
}

export interface RunSpec {
	name: string;
	image: string;
	labels: Record<string, string>;
	env: Record<string, string>;
	/** A private folder (0700) where the environment is written for `docker run --env-file`, then removed. */
	envDir: string;
	/** Host address and port to publish the container port on; null when the platform reaches the container on its bridge address. */
	publish: { host: string; hostPort: number; containerPort: number } | null;
	mounts: { source: string; target: string; readonly: boolean }[];
	command: string[];
	sandbox: Sandbox;
}

// docker --mount takes CSV: quote a field when it holds a comma or a quote.
const csvField = (field: string) => (/[",]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field);

/**
 * The env file `docker run --env-file` reads: one VAR=VALUE a line, taken as written (no quotes, no
 * escapes), so a name or value that would split or bend a line is refused, never written.
 */
export function envFileText(env: Record<string, string>): string {
	let text = '';
	for (const [key, value] of Object.entries(env)) {
		if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`env name "${key.slice(0, 40)}" cannot be passed to a container`);
		if (/[\r\n\0]/.test(value)) throw new Error(`env ${key} holds a line break or NUL and cannot be passed to a container`);
		text += `${key}=${value}\n`;
	}
	return text;
}

/** The `docker run` arguments for a function container: confined by `spec.sandbox`, never the Docker socket. */
export function runArgs(spec: RunSpec, envFile: string): string[] {
	const { sandbox: box } = spec;
	const args = ['run', '-d', '--pull', 'never', '--name', spec.name];
	for (const [key, value] of Object.entries(spec.labels)) args.push('--label', `${key}=${value}`);
	// A file, not the command line (any user reads /proc/PID/cmdline; one argument is capped at 128 KiB),
	// nor the CLI's own environment (a function's DOCKER_HOST or PATH would steer the docker CLI).
	args.push('--env-file', envFile);
	if (spec.publish) {
		const { host, hostPort, containerPort } = spec.publish;
		args.push('--publish', `${host}:${hostPort}:${containerPort}/tcp`);
	}
	args.push('--network', box.network);
	for (const m of spec.mounts) {
		args.push('--mount', ['type=bind', `source=${m.source}`, `target=${m.target}`, ...(m.readonly ? ['readonly'] : [])].map(csvField).join(','));
	}
	if (box.readOnlyRoot) args.push('--read-only');
	// biome-ignore format: docker flags stay paired with their values
	args.push(
		// A writable /tmp, bounded in bytes and in files, where nothing can be executed.
		'--tmpfs', `/tmp:rw,nosuid,nodev,noexec,size=${box.tmpMb}m,nr_inodes=${box.tmpMb * 256}`,
		'--user', box.user,
		'--cap-drop', 'ALL',
		'--security-opt', 'no-new-privileges',
		'--pids-limit', String(box.pidsLimit),
		// Swap equal to memory: no swap, so the limit is the limit.
		'--memory', `${box.memoryMb}m`, '--memory-swap', `${box.memoryMb}m`,
		'--cpus', String(box.cpus),
		'--ulimit', `nofile=${box.nofile}:${box.nofile}`,
		// A real PID 1 reaps zombies and forwards signals.
		'--init',
		'--log-driver', 'json-file', '--log-opt', `max-size=${box.logMaxKb}k`, '--log-opt', 'max-file=1',
	);
	args.push('--', spec.image, ...spec.command);
	return args;
}

/** `docker run -d`; returns the container id. The env file lives only while the CLI runs. */
export async function runContainer(spec: RunSpec, options?: CallOptions): Promise<string> {
	const envFile = join(spec.envDir, `${spec.name}.env`);
	const args = runArgs(spec, envFile);
	log('debug', 'container starting', { container: spec.name, image: spec.image });
	try {
		// 'wx' never reuses or follows what is there; 0600: only the platform's user reads the values.
		await writeFile(envFile, envFileText(spec.env), { mode: 0o600, flag: 'wx' });
		const id = (await docker(args, options)).trim();
		log('info', 'container started', { container: spec.name, id: id.slice(0, 12), image: spec.image });
		return id;
	} catch (err) {
		// A start cut short by the caller's deadline is expected, not worth a warning.
		log(options?.signal?.aborted ? 'debug' : 'warn', 'container start failed', { container: spec.name, error: (err as Error).message });
		throw err;
	} finally {
		await rm(envFile, { force: true });
	}
}

export interface ContainerState {
	running: boolean;
	exitCode: number;
	oomKilled: boolean;
	/** Epoch ms when it stopped; 0 while it runs. */
	finishedAt: number;
}

/** The container's address on `network`; '' when it has none (not attached, or already stopped). */
export async function containerAddress(name: string, network: string): Promise<string> {
	const out = await docker(['inspect', '--type', 'container', '--format', '{{json .NetworkSettings.Networks}}', '--', name]);
	const networks = JSON.parse(out) as Record<string, { IPAddress?: string }> | null;
	return networks?.[network]?.IPAddress ?? '';
}

export async function inspectState(id: string): Promise<ContainerState> {
	const out = await docker(['inspect', '--type', 'container', '--format', '{{json .State}}', '--', id]);
	const state = JSON.parse(out) as { Running: boolean; ExitCode: number; OOMKilled: boolean; FinishedAt: string };
	const finishedAt = Date.parse(state.FinishedAt);
	return { running: state.Running, exitCode: state.ExitCode, oomKilled: state.OOMKilled, finishedAt: state.Running || !(finishedAt > 0) ? 0 : finishedAt };
}

/** The last lines the container printed (stdout and stderr interleaved), for error messages. */
export async function tailLogs(id: string, lines: number): Promise<string> {
	try {
		const { all } = await execa('docker', ['logs', '--tail', String(lines), '--', id], { all: true, timeout: 10_000, stdin: 'ignore' });
		return all ?? '';
	} catch {
		return '';
	}
}

/** `docker rename`: a container keeps running under its new name. */
export async function renameContainer(id: string, name: string, options?: CallOptions): Promise<void> {
	await docker(['rename', '--', id, name], options);
}

/** `docker update` of a running container's memory (no swap, as at run) and CPU limits. */
export async function updateLimits(id: string, memoryMb: number, cpus: number, options?: CallOptions): Promise<void> {
	await docker(['update', '--memory', `${memoryMb}m`, '--memory-swap', `${memoryMb}m`, '--cpus', String(cpus), '--', id], options);
}

/** `docker rm -f` of one or more containers; one that is already gone counts as removed. */
export async function removeContainers(names: string[]): Promise<void> {
	if (names.length === 0) return;
	try {
		await docker(['rm', '-f', '--', ...names], { timeoutMs: 120_000 });
		log('info', 'containers removed', { containers: names });
	} catch (err) {
		if (err instanceof DockerError && err.kind === 'not_found') {
			// Some were gone already (or going); docker still removed the others.
			log('info', 'containers removed', { containers: names });
			return;
		}
		log('warn', 'container removal failed', { containers: names, error: (err as Error).message });
		throw err;
	}
}

export interface DieEvent {
	name: string;
	exitCode: number;
	/** Epoch ms of the event. */
	at: number;
}

/**
 * Follows `docker events` for the containers carrying `labels` and calls `onDie` as each one stops:
 * one long-lived process tells the platform at once when any of its containers exits or is removed.
 * The stream is resumed from its last event when it breaks. Returns a function that stops it.
 */
export function watchDieEvents(labels: Record<string, string>, onDie: (event: DieEvent) => void): () => void {
	let stopped = false;
	let since = Math.floor(Date.now() / 1000);
	let controller: AbortController;
	let buffered = '';

	function follow() {
		controller = new AbortController();
		const args = ['events', '--format', '{{json .}}', '--filter', 'type=container', '--filter', 'event=die', '--since', String(since)];
		for (const [key, value] of Object.entries(labels)) args.push('--filter', `label=${key}=${value}`);
		const child = execa('docker', args, { cancelSignal: controller.signal, buffer: false, stdin: 'ignore', reject: false });
		child.stdout?.setEncoding('utf8');
		child.stdout?.on('data', (chunk: string) => {
			buffered += chunk;
			let newline: number;
			while ((newline = buffered.indexOf('\n')) >= 0) {
				const line = buffered.slice(0, newline);
				buffered = buffered.slice(newline + 1);
				try {
					const event = JSON.parse(line) as { timeNano?: number; time?: number; Actor?: { Attributes?: Record<string, string> } };
					const attributes = event.Actor?.Attributes ?? {};
					const at = event.timeNano ? event.timeNano / 1e6 : (event.time ?? 0) * 1000;
					since = Math.max(since, Math.floor(at / 1000));
					if (attributes.name) onDie({ name: attributes.name, exitCode: Number(attributes.exitCode ?? -1), at });
				} catch {
					log('warn', 'unreadable docker event', { line: line.slice(0, 200) });
				}
			}
		});
		void child.then(() => {
			if (stopped) return;
			log('warn', 'docker events stream ended; following again');
			setTimeout(follow, 500).unref();
		});
	}

	follow();
	return () => {
		stopped = true;
		controller.abort();
	};
}

/** Names of all containers, running or not, that carry every given label. */
export async function listContainers(labels: Record<string, string>): Promise<string[]> {
	const args = ['ps', '-a', '--format', '{{.Names}}'];
	for (const [key, value] of Object.entries(labels)) args.push('--filter', `label=${key}=${value}`);
	return (await docker(args)).split('\n').filter(Boolean);
}

/** Null when the engine answers; otherwise why not. */
export async function engineProblem(): Promise<string | null> {
	try {
		await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
		return null;
	} catch (err) {
		return (err as Error).message;
	}
}

const ICC = 'com.docker.network.bridge.enable_icc';

export interface NetworkInfo {
	driver: string;
	options: Record<string, string>;
	/** The host's own address on the network (its bridge interface); '' when Docker gave none. */
	gateway: string;
	/** The Linux bridge interface that carries the network. */
	bridge: string;
}

/** A network as `docker network inspect` tells it; null when there is none of that name. */
export async function inspectNetwork(name: string): Promise<NetworkInfo | null> {
	let out: string;
	try {
		out = await docker(['network', 'inspect', '--format', '{{json .}}', '--', name]);
	} catch (err) {
		if (err instanceof DockerError && err.kind === 'unreachable') throw err;
		return null;
	}
	const net = JSON.parse(out) as { Id: string; Driver: string; IPAM?: { Config?: { Gateway?: string }[] | null }; Options?: Record<string, string> | null };
	const options = net.Options ?? {};
	return {
		driver: net.Driver,
		options,
		gateway: net.IPAM?.Config?.find((c) => c.Gateway)?.Gateway ?? '',
		bridge: options['com.docker.network.bridge.name'] ?? `br-${net.Id.slice(0, 12)}`,
	};
}

/**
 * Creates the bridge network functions run on, with inter-container traffic disabled so that one
 * function cannot reach another's container, and its interface named `bridge`. An existing network
 * of that name is used only if it is such a network too; otherwise a ConfigError says why.
 */
export async function ensureNetwork(name: string, bridge: string): Promise<NetworkInfo> {
	let network = await inspectNetwork(name);
	if (!network) {
		try {
			// biome-ignore format: docker flags stay paired with their values
			await docker(['network', 'create', '--driver', 'bridge', '--opt', `${ICC}=false`,
				// A known interface name, so the firewall rule that guards it can be set before the network exists.
				'--opt', `com.docker.network.bridge.name=${bridge}`, '--label', 'lowcode-faas=network', '--', name]);
			log('info', 'network created', { network: name });
		} catch (err) {
			// Another instance may have created it meanwhile.
			if (!/already exists/i.test((err as Error).message)) throw err;
		}
		network = await inspectNetwork(name);
		if (!network) throw new DockerError('other', `network ${name} was created but cannot be inspected`);
	}
	const icc = network.options[ICC] ?? 'true';
	if (network.driver !== 'bridge' || icc !== 'false') {
		throw new ConfigError(
			`LOWCODE_FAAS_NETWORK=${name} is a ${network.driver} network with ${ICC}=${icc}: functions on it could reach each other's containers; remove it (docker network rm ${name}) to let the platform create it, or name another`,
		);
	}
	return network;
}

export async function imageExists(image: string): Promise<boolean> {
	try {
		await docker(['image', 'inspect', '--format', '{{.Id}}', '--', image], { timeoutMs: 10_000 });
		return true;
	} catch (err) {
		if (err instanceof DockerError && err.kind === 'unreachable') throw err;
		return false;
	}
}
