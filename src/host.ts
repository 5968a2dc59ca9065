import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Config, ConfigError } from './config.js';
import { type NetworkInfo, ensureNetwork } from './docker.js';
import { privateDir } from './files.js';
import { guardBridge, guardPorts, guardSwarmBridge } from './firewall.js';
import { log } from './log.js';

/** The host side of running function containers: the private env-file folder, the functions network, how containers are reached. */

/** Where environment files live while `docker run` reads them: private to the platform's user. */
export const runDir = (config: Config) => join(config.dataDir, '.run');

/**
 * How the platform reaches its containers: on their bridge address where the host routes it (Linux;
 * no docker-proxy hop, and no port that every local user could call), else on a port published on
 * 127.0.0.1 (Docker Desktop, a remote engine).
 */
export type Reach = 'bridge' | 'published';

// The network is checked once per process, before the first container needs it (Docker may have been down at start).
const networks = new Map<string, Promise<Reach>>();

export function networkReady(config: Config): Promise<Reach> {
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
			log('warn', 'cannot install the firewall: other local users can call functions on their bridge addresses, and functions can connect to host services', {
				bridge: info.bridge,
				error: (err as { shortMessage?: string }).shortMessage ?? String(err),
			}),
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
	if (config.backend === 'swarm') await guardSwarmPorts(config);
	try {
		return await networkReady(config);
	} catch (err) {
		if (err instanceof ConfigError) throw err;
		log('warn', 'cannot create the functions network', { error: (err as Error).message });
		return null;
	}
}

/** Swarm mode: the published ports bind every address of the node, so, as root, only root may connect to them or to the tasks here. */
async function guardSwarmPorts(config: Config) {
	const ports = `${config.swarmPorts.first}-${config.swarmPorts.last}`;
	if (process.getuid?.() !== 0) {
		log('info', "not root: other local users are kept off the swarm's published ports and tasks only if the firewall step ran (see README, Security)", { ports });
		return;
	}
	const error = (err: unknown) => (err as { shortMessage?: string }).shortMessage ?? (err as Error).message ?? String(err);
	try {
		await guardPorts(config.swarmPorts, [0]);
	} catch (err) {
		log('warn', 'cannot install the swarm firewall: other local users can call functions on their published ports', { ports, error: error(err) });
	}
	await guardSwarmBridge(config, [0]).catch((err) => log('warn', "cannot guard the swarm network's bridge: other local users can call tasks on this node at their addresses, and tasks can connect to host services", { error: error(err) }));
}

/** Says so when the functions' uid is a host account: its processes could signal, trace and read them. */
async function warnIfHostAccount(user: string) {
	const uid = user.split(':')[0];
	const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
	const account = passwd.split('\n').find((line) => line.split(':')[2] === uid);
	if (account) log('warn', 'functions run as a uid that is a host account: its processes can signal, trace and read function containers; choose another LOWCODE_FAAS_USER', { uid: Number(uid), account: account.split(':')[0] });
}
