import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { type Config, ConfigError, type Language } from './config.js';
import { DockerError, ensureNetwork, inspectState, removeContainers, runContainer, tailLogs } from './docker.js';
import { log } from './log.js';
import type { SourceRef } from './store.js';
import { envProblem } from './validate.js';

/** One function container: how it is started, and how its end is explained. The pool decides when. */

export const LABEL = 'lowcode-faas';
const LOG_LINES = 10;

/** A container that could not be started or never became ready; shared by all who waited for it. */
export class StartFailure extends Error {
	override name = 'StartFailure';
}

/** The command that runs a function's source, mounted at `path`, inside its image. */
export function commandFor(language: Language, path: string): string[] {
	if (language === 'python') return ['python3', '-u', path];
	// A server needs the network and its PORT; nothing else (no files, no subprocesses, no FFI).
	return ['deno', 'run', '--no-prompt', '--allow-net', '--allow-env', path];
}

/** Where environment files live while `docker run` reads them: private to the platform's user. */
const runDir = (config: Config) => join(config.dataDir, '.run');

// The network is checked once per process, before the first container needs it (Docker may have been down at start).
const networks = new Map<string, Promise<void>>();

function networkReady(name: string): Promise<void> {
	let ready = networks.get(name);
	if (!ready) {
		ready = ensureNetwork(name);
		networks.set(name, ready);
		ready.catch(() => networks.delete(name));
	}
	return ready;
}

/**
 * Readies the host before any container: the private folder for env files (0700, emptied of what a
 * crash left), and the functions network. A network where functions could reach each other is a
 * ConfigError, and the platform refuses to start; Docker being down is only a warning.
 */
export async function prepareHost(config: Config): Promise<void> {
	const dir = runDir(config);
	await mkdir(dir, { recursive: true, mode: 0o700 });
	// It may have been made before, by hand, with a looser mode.
	await chmod(dir, 0o700);
	for (const file of await readdir(dir)) await rm(join(dir, file), { recursive: true, force: true });
	try {
		await networkReady(config.sandbox.network);
	} catch (err) {
		if (err instanceof ConfigError) throw err;
		log('warn', 'cannot create the functions network', { error: (err as Error).message });
	}
}

/** A free TCP port on 127.0.0.1 to publish a container on. */
function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.unref();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

/** `docker run` of a function's container, on a port chosen here; a port taken between choosing and binding is retried. Returns the port. */
export async function launch(config: Config, ref: SourceRef, name: string, labels: Record<string, string>): Promise<number> {
	const target = `/app/${ref.file}`;
	// Settings on disk are not checked by the API: what docker's env file cannot hold fails here, with the reason.
	const problem = ref.settings.env ? envProblem(ref.settings.env) : null;
	if (problem) throw new StartFailure(`The container was not started: its settings are refused: ${problem} Change them with PATCH /functions/${ref.name}.`);
	try {
		await networkReady(config.sandbox.network);
	} catch (err) {
		throw new StartFailure(err instanceof ConfigError ? `The container was not started: ${err.message}.` : describeDockerError(err, config.images[ref.language]), { cause: err });
	}
	for (let attempt = 1; ; attempt++) {
		const port = await freePort();
		try {
			await runContainer({
				name,
				image: config.images[ref.language],
				labels: { ...labels, [`${LABEL}.function`]: ref.name },
				// HOME in /tmp: the root filesystem is read-only and user 65534 has no home. The function's
				// own variables first; the platform's PORT always wins.
				env: { HOME: '/tmp', DENO_DIR: '/tmp/deno', PYTHONDONTWRITEBYTECODE: '1', ...ref.settings.env, PORT: String(config.containerPort) },
				envDir: runDir(config),
				publish: { host: '127.0.0.1', hostPort: port, containerPort: config.containerPort },
				mounts: [{ source: ref.path, target, readonly: true }],
				command: commandFor(ref.language, target),
				sandbox: { ...config.sandbox, memoryMb: ref.settings.memory_mb ?? config.sandbox.memoryMb, cpus: ref.settings.cpus ?? config.sandbox.cpus },
			});
			return port;
		} catch (err) {
			if (err instanceof DockerError && err.kind === 'port_taken' && attempt < 3) {
				await removeContainers([name]).catch(() => {});
				continue;
			}
			throw new StartFailure(describeDockerError(err, config.images[ref.language]), { cause: err });
		}
	}
}

/** How a container stopped, with the last lines it printed, e.g. "exited with code 3 (last output: ...)". */
export async function explainExit(name: string, memoryMb: number): Promise<string> {
	const [state, logs] = await Promise.all([inspectState(name).catch(() => null), tailLogs(name, LOG_LINES)]);
	const how = state?.oomKilled ? `ran out of memory (limit ${memoryMb} MiB)` : state ? `exited with code ${state.exitCode}` : 'was removed';
	const lines = logs.trim() ? logs.trim().split('\n').slice(-LOG_LINES).join(' | ') : '';
	return lines ? `${how} (last output: ${lines})` : how;
}

function describeDockerError(err: unknown, image: string): string {
	if (!(err instanceof DockerError)) return `The container could not be started: ${String(err)}.`;
	switch (err.kind) {
		case 'unreachable':
			return `Docker is unreachable (${err.message}); start it with: npm run setup (or systemctl start docker).`;
		case 'no_image':
			return `The runtime image ${image} is missing; build it with: npm run setup.`;
		default:
			return `The container could not be started: ${err.message}.`;
	}
}
