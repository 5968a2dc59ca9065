import { createServer } from 'node:net';
import { type Backend, type Exit, InstanceExited, type InstanceSpec, StartFailure } from './backend.js';
import { type Config, ConfigError, type Language } from './config.js';
import { DockerError, containerAddress, engineProblem, imageExists, inspectState, listContainers, removeContainers, runContainer, tailLogs, watchDieEvents } from './docker.js';
import { type Reach, networkReady, prepareHost, runDir } from './host.js';
import { ReadyTimeout, waitReady } from './readiness.js';
import { envProblem } from './settings.js';

/** Function instances as sandboxed Docker containers on this host: the platform's default backend. */

export const LABEL = 'lowcode-faas';
// Lines of a stopped container's output quoted in the message that says why it stopped.
const LOG_LINES = 10;

/** The command that runs a function's source, mounted at `path`, inside its image. */
export function commandFor(language: Language, path: string): string[] {
	if (language === 'python') return ['python3', '-u', path];
	// A server needs the network and its PORT; nothing else (no files, no subprocesses, no FFI).
	return ['deno', 'run', '--no-prompt', '--allow-net', '--allow-env', path];
}

export type DockerBackend = Backend & {
	/** How containers are reached; null while the functions network could not be readied (Docker down). */
	reach(): Reach | null;
	/** `docker run` of a container with every sandbox flag of a function's; resolves with its base URL. */
	launch(container: Launch): Promise<string>;
	/** Waits until the container's server (a stem cell's loader if `stem`) answers on `url`; a StartFailure says why it did not. */
	ready(name: string, memoryMb: number, url: string, signal: AbortSignal, stem?: boolean): Promise<string>;
};

/** A container to run in a function's sandbox: a function's own, or a stem cell (stem-cells.ts). */
export interface Launch {
	name: string;
	language: Language;
	/** Labels besides the platform's and the instance's own. */
	labels: Record<string, string>;
	/** Variables besides the runtime's own; PORT is always the platform's. */
	env: Readonly<Record<string, string>>;
	mounts: { source: string; target: string; readonly: boolean }[];
	command: string[];
	memoryMb: number;
	cpus: number;
	signal?: AbortSignal;
}

/**
 * Readies the host (the private env-file folder, the functions network and its firewall) and returns
 * the backend. A network where functions could reach each other is a ConfigError, and the platform
 * refuses to start; Docker being down is only a warning: the first start tries again.
 */
export async function createDockerBackend(config: Config): Promise<DockerBackend> {
	const labels = { [LABEL]: 'function', [`${LABEL}.instance`]: config.instance };
	let reach = await prepareHost(config);
	/** Who follows exits: also told of a starting container found stopped while its readiness is polled. */
	const exitListeners = new Set<(exit: Exit) => void>();

	/** Whether a starting container still runs; when it stopped, its followers are told, as by an event. */
	async function stillRunning(name: string): Promise<boolean> {
		const state = await inspectState(name);
		if (!state.running) for (const onExit of exitListeners) onExit({ name, exitCode: state.exitCode, at: state.finishedAt || Date.now() });
		return state.running;
	}

	/** `docker run` of a function's container; returns the base URL the platform reaches it on. */
	async function launchFunction(spec: InstanceSpec): Promise<string> {
		const target = `/app/${spec.file}`;
		// Settings on disk are not checked by the API: what docker's env file cannot hold fails here, with the reason.
		const problem = envProblem(spec.env);
		if (problem) throw new StartFailure(`The container was not started: its settings are refused: ${problem} Change them with PATCH /functions/${spec.function}.`);
		return launch({
			name: spec.name,
			language: spec.language,
			labels: { [`${LABEL}.function`]: spec.function },
			env: spec.env,
			mounts: [{ source: spec.path, target, readonly: true }],
			command: commandFor(spec.language, target),
			memoryMb: spec.memoryMb,
			cpus: spec.cpus,
		});
	}

	async function launch(c: Launch): Promise<string> {
		const image = config.images[c.language];
		try {
			reach = await networkReady(config);
		} catch (err) {
			throw new StartFailure(err instanceof ConfigError ? `The container was not started: ${err.message}.` : describeDockerError(err, image), { cause: err });
		}
		// A published port taken between choosing and binding is retried.
		for (let attempt = 1; ; attempt++) {
			const port = reach === 'published' ? await freePort() : 0;
			try {
				await runContainer(
					{
						name: c.name,
						image,
						labels: { ...labels, ...c.labels },
						// HOME in /tmp: the root filesystem is read-only and the function's user has no home. The function's
						// own variables first; the platform's PORT always wins.
						env: { HOME: '/tmp', DENO_DIR: '/tmp/deno', PYTHONDONTWRITEBYTECODE: '1', ...c.env, PORT: String(config.containerPort) },
						envDir: runDir(config),
						publish: reach === 'published' ? { host: '127.0.0.1', hostPort: port, containerPort: config.containerPort } : null,
						mounts: c.mounts,
						command: c.command,
						sandbox: { ...config.sandbox, memoryMb: c.memoryMb, cpus: c.cpus },
					},
					{ signal: c.signal },
				);
				if (reach === 'published') return `http://127.0.0.1:${port}/`;
			} catch (err) {
				if (err instanceof DockerError && err.kind === 'port_taken' && attempt < 3) {
					await removeContainers([c.name]).catch(() => {});
					continue;
				}
				throw new StartFailure(describeDockerError(err, image), { cause: err });
			}
			const address = await containerAddress(c.name, config.sandbox.network).catch(() => '');
			// No address: it stopped at once, or was removed.
			if (!address) throw new StartFailure(`The function ${await explain(c.name, c.memoryMb)} before answering.`);
			return `http://${address}:${config.containerPort}/`;
		}
	}

	async function ready(name: string, memoryMb: number, url: string, signal: AbortSignal, stem = false): Promise<string> {
		try {
			await waitReady(url, Date.now() + config.readyWaitMs, signal, () => stillRunning(name), stem);
			return url;
		} catch (err) {
			if (err instanceof ReadyTimeout) {
				throw new StartFailure(`The function's server did not answer on port ${config.containerPort} within ${config.readyWaitMs / 1000} s.`);
			}
			// Retired, or the platform is stopping: there is no exit to explain.
			if (signal.aborted && !(signal.reason instanceof InstanceExited)) throw new StartFailure('The function was removed before answering.');
			throw new StartFailure(`The function ${await explain(name, memoryMb)} before answering.`);
		}
	}

	async function start(spec: InstanceSpec, signal: AbortSignal): Promise<string> {
		const url = await launchFunction(spec);
		// Let go while `docker run` ran: the scheduler removes it once this settles.
		if (signal.aborted && !(signal.reason instanceof InstanceExited)) throw new StartFailure('The container was retired before it started.');
		return ready(spec.name, spec.memoryMb, url, signal);
	}

	async function problem(): Promise<string | null> {
		const engine = await engineProblem();
		if (engine) return `Docker is unreachable: ${engine}`;
		for (const image of Object.values(config.images)) {
			if (!(await imageExists(image).catch(() => false))) return `The runtime image ${image} is missing; build it with: npm run setup.`;
		}
		return null;
	}

	return {
		start,
		remove: removeContainers,
		list: () => listContainers(labels),
		watchExits(onExit) {
			exitListeners.add(onExit);
			const stop = watchDieEvents(labels, onExit);
			return () => {
				exitListeners.delete(onExit);
				stop();
			};
		},
		explain,
		logs: tailLogs,
		problem,
		reach: () => reach,
		launch,
		ready,
	};
}

/** How a container stopped, with the last lines it printed, e.g. "exited with code 3 (last output: ...)". */
async function explain(name: string, memoryMb: number): Promise<string> {
	const [state, logs] = await Promise.all([inspectState(name).catch(() => null), tailLogs(name, LOG_LINES)]);
	const how =
		!state || state.running
			? 'was removed'
			: state.oomKilled
				? `ran out of memory (limit ${memoryMb} MiB)`
				: // Docker's OOMKilled flag can miss (seen here: a memory bomb exited 137 with it false). The
					// platform sends no SIGKILL to a running container, so the OOM killer is the likely sender
					// (the function may also have killed itself, hence "most likely").
					state.exitCode === 137
					? `was killed (SIGKILL), most likely out of memory (limit ${memoryMb} MiB)`
					: `exited with code ${state.exitCode}`;
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
