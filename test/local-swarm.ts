import { execa } from 'execa';
import * as assert from 'uvu/assert';
import type { Config } from '../src/config.js';
import { unguardPorts } from '../src/firewall.js';
import { swarmInfo } from '../src/swarm.js';
import { type Platform, eventually } from './helpers.js';

/**
 * A single-node swarm of this machine's own engine, for the Swarm tests and the bench: initialised when
 * the engine is in none, and left at the end only by whoever initialised it, so that another run's swarm
 * (a test beside it on the same machine) is never taken away.
 */

/**
 * Makes this engine a swarm manager when it is in no swarm. True when it initialised the swarm here (and
 * so must leave it); throws, saying why, when the engine is a worker or cannot be made a manager.
 */
export async function ensureSwarm(advertiseAddr = '127.0.0.1'): Promise<boolean> {
	const info = await swarmInfo();
	if (info.LocalNodeState === 'active') {
		if (!info.ControlAvailable) throw new Error('this Docker engine is a swarm worker, not a manager');
		return false;
	}
	const init = await execa('docker', ['swarm', 'init', '--advertise-addr', advertiseAddr], { reject: false, all: true });
	if (init.exitCode !== 0) throw new Error(`docker swarm init failed (state: ${info.LocalNodeState || 'inactive'}): ${init.all?.trim()}`);
	return true;
}

/** Leaves the swarm that ensureSwarm initialised, and removes what joining it left on this engine. */
export async function leaveSwarm(): Promise<void> {
	await execa('docker', ['swarm', 'leave', '--force']);
	// Swarm's gateway bridge and the platform's config-only network. The config-only network stays in use
	// a moment after the swarm network made from it is gone.
	await eventually(
		'the networks removed',
		async () => (await execa('docker', ['network', 'rm', 'lowcode-faas-swarm-config', 'docker_gwbridge'], { reject: false })).stderr,
		(stderr) => !/in use/i.test(stderr),
	);
}

/** Names of a platform instance's services, configs or secrets (of one function's, with `fn`). */
export async function swarmNames(kind: 'service' | 'config' | 'secret', config: Config, fn?: string): Promise<string[]> {
	const filters = ['--filter', `label=lowcode-faas.instance=${config.instance}`, ...(fn ? ['--filter', `label=lowcode-faas.function=${fn}`] : [])];
	return (await execa('docker', [kind, 'ls', '--format', '{{.Name}}', ...filters])).stdout.split('\n').filter(Boolean);
}

/** Every service, config and secret of a platform instance, by kind. */
export async function swarmObjectsOf(config: Config) {
	return { service: await swarmNames('service', config), config: await swarmNames('config', config), secret: await swarmNames('secret', config) };
}

export const NO_SWARM_OBJECTS = { service: [], config: [], secret: [] };

/** Closes a platform, removes the guard its start (as root) put on its port range, and checks it left no service, config or secret. */
export async function closeClean(platform: Platform): Promise<void> {
	const { config } = platform;
	await platform.close();
	// The swarm bridge's guard is shared by every platform on this swarm: it goes at the end, with the swarm.
	await unguardPorts(config.swarmPorts);
	assert.equal(await swarmObjectsOf(config), NO_SWARM_OBJECTS, 'no service, config or secret is left');
}
