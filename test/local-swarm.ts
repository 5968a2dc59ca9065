import { execa } from 'execa';
import { swarmInfo } from '../src/swarm.js';
import { eventually } from './helpers.js';

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
