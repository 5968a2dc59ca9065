import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, ConfigError, type Language } from './config.js';
import { DockerError, type NetworkInfo, containerAddress, ensureNetwork, inspectState, removeContainers, runContainer, tailLogs } from './docker.js';
import { privateDir } from './files.js';
import { guardBridge } from './firewall.js';
import { log } from './log.js';
import type { SourceRef } from './store.js';
import { envProblem } from './settings.js';

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

/**
 * How the platform reaches its containers: on their bridge address where the host routes it (Linux;
 * no docker-proxy hop, and no port that every local user could call), else on a port published on
 * 127.0.0.1 (Docker Desktop, a remote engine).
 */
export type Reach = 'bridge' | 'published';

// The network is checked once per process, before the first container needs it (Docker may have been down at start).
const networks = new Map<string, Promise<Reach>>();

function networkReady(config: Config): Promise<Reach> {
	const { network, bridge } = config.sandbox;
	let ready = networks.get(network);
	if (!ready) {
		ready = ensureNetwork(network, bridge).then(chooseReach);
		networks.set(network, ready);
		ready.catch(() => networks.delete(network));
	}
	return ready;
}

/**
 * Bridge addresses when the functions' bridge is an interface of this host (a local engine on Linux),
 * guarded so that only root may connect; published ports otherwise (Docker Desktop, a remote or
 * rootless engine, whose bridge lives elsewhere). The interface may be down while no container is
 * attached, so its existence is what counts, not its addresses.
 */
async function chooseReach(info: NetworkInfo): Promise<Reach> {
	if (!info.gateway || !existsSync(`/sys/class/net/${info.bridge}`)) {
		log('info', 'functions reached on ports published on 127.0.0.1; no firewall: local users can call them there, and they can connect to host services', { bridge: info.bridge });
		return 'published';
	}
	if (process.getuid?.() === 0) {
		await guardBridge(info.bridge, [0]).catch((err) =>
			log('warn', 'cannot install the firewall: other local users can call functions on their bridge addresses, and functions can connect to host services', { bridge: info.bridge, error: (err as { shortMessage?: string }).shortMessage ?? String(err) }),
		);
	} else {
		log('info', 'not root: other local users are kept off the functions network, and functions off the host, only if the firewall step ran (see README, Security)', { bridge: info.bridge });
	}
	log('info', 'functions reached on their bridge addresses', { bridge: info.bridge });
	return 'bridge';
}

/**
 * Readies the host before any container: the private folder for env files (0700, emptied of what a
 * crash left), and the functions network. A network where functions could reach each other is a
 * ConfigError, and the platform refuses to start; Docker being down is only a warning.
 */
export async function prepareHost(config: Config): Promise<Reach | null> {
	const dir = runDir(config);
	// Made anew: what is there is a crash's leftovers, or not the platform's at all (a link, whose
	// target must not be emptied); rm removes a link itself, never what it points at.
	await rm(dir, { recursive: true, force: true });
	await privateDir(dir);
	await warnIfHostAccount(config.sandbox.user);
	try {
		return await networkReady(config);
	} catch (err) {
		if (err instanceof ConfigError) throw err;
		log('warn', 'cannot create the functions network', { error: (err as Error).message });
		return null;
	}
}

/** Says so when the functions' uid is a host account: its processes could signal, trace and read them. */
async function warnIfHostAccount(user: string) {
	const uid = user.split(':')[0];
	const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
	const account = passwd.split('\n').find((line) => line.split(':')[2] === uid);
	if (account) log('warn', 'functions run as a uid that is a host account: its processes can signal, trace and read function containers; choose another LOWCODE_FAAS_USER', { uid: Number(uid), account: account.split(':')[0] });
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

/**
 * `docker run` of a function's container; returns the base URL the platform reaches it on. A published
 * port taken between choosing and binding is retried.
 */
export async function launch(config: Config, ref: SourceRef, name: string, labels: Record<string, string>): Promise<string> {
	const target = `/app/${ref.file}`;
	// Settings on disk are not checked by the API: what docker's env file cannot hold fails here, with the reason.
	const problem = ref.settings.env ? envProblem(ref.settings.env) : null;
	if (problem) throw new StartFailure(`The container was not started: its settings are refused: ${problem} Change them with PATCH /functions/${ref.name}.`);
	let reach: Reach;
	try {
		reach = await networkReady(config);
	} catch (err) {
		throw new StartFailure(err instanceof ConfigError ? `The container was not started: ${err.message}.` : describeDockerError(err, config.images[ref.language]), { cause: err });
	}
	for (let attempt = 1; ; attempt++) {
		const port = reach === 'published' ? await freePort() : 0;
		try {
			await runContainer({
				name,
				image: config.images[ref.language],
				labels: { ...labels, [`${LABEL}.function`]: ref.name },
				// HOME in /tmp: the root filesystem is read-only and the function's user has no home. The function's
				// own variables first; the platform's PORT always wins.
				env: { HOME: '/tmp', DENO_DIR: '/tmp/deno', PYTHONDONTWRITEBYTECODE: '1', ...ref.settings.env, PORT: String(config.containerPort) },
				envDir: runDir(config),
				publish: reach === 'published' ? { host: '127.0.0.1', hostPort: port, containerPort: config.containerPort } : null,
				mounts: [{ source: ref.path, target, readonly: true }],
				command: commandFor(ref.language, target),
				sandbox: { ...config.sandbox, memoryMb: ref.settings.memory_mb ?? config.sandbox.memoryMb, cpus: ref.settings.cpus ?? config.sandbox.cpus },
			});
			if (reach === 'published') return `http://127.0.0.1:${port}/`;
		} catch (err) {
			if (err instanceof DockerError && err.kind === 'port_taken' && attempt < 3) {
				await removeContainers([name]).catch(() => {});
				continue;
			}
			throw new StartFailure(describeDockerError(err, config.images[ref.language]), { cause: err });
		}
		const address = await containerAddress(name, config.sandbox.network).catch(() => '');
		// No address: it stopped at once, or was removed.
		if (!address) throw new StartFailure(`The function ${await explainExit(name, ref.settings.memory_mb ?? config.sandbox.memoryMb)} before answering.`);
		return `http://${address}:${config.containerPort}/`;
	}
}

/** How a container stopped, with the last lines it printed, e.g. "exited with code 3 (last output: ...)". */
export async function explainExit(name: string, memoryMb: number): Promise<string> {
	const [state, logs] = await Promise.all([inspectState(name).catch(() => null), tailLogs(name, LOG_LINES)]);
	const how = !state
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
