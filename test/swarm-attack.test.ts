import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Config, loadConfig } from '../src/config.js';
import { unguardSwarm } from '../src/firewall.js';
import { serviceName } from '../src/swarm-spec.js';
import { createFunction, deploy, eventually, fixture, invoke, startPlatform } from './helpers.js';
import { NO_SWARM_OBJECTS, closeClean, ensureSwarm as ensureLocalSwarm, leaveSwarm as leaveLocalSwarm, swarmNames, swarmObjectsOf } from './local-swarm.js';

/**
 * Attacks on the Swarm backend, on a single-node swarm of this machine's engine (initialised here only
 * when the engine is in none, and then left): a hostile function in its task, a hostile API caller.
 * Its own port range, so that it never meets test/swarm.test.ts's services.
 */

const SWARM = { LOWCODE_FAAS_BACKEND: 'swarm', LOWCODE_FAAS_SWARM_PORTS: '34000-34099' };
const COLD_MS = 60_000;
let initialised = false;

async function ensureSwarm() {
	if (await ensureLocalSwarm()) initialised = true;
}

/** The port a function's (one) service publishes on its node. */
async function publishedPort(config: Config, fn: string): Promise<number> {
	const [service] = await swarmNames('service', config, fn);
	const { stdout } = await execa('docker', ['service', 'inspect', '--format', '{{range .Endpoint.Ports}}{{.PublishedPort}}{{end}}', '--', service!]);
	return Number(stdout.trim());
}

/** The address of a function's task container on the swarm bridge (its task runs on this node). */
async function taskAddress(config: Config, fn: string): Promise<string> {
	const { stdout: id } = await execa('docker', ['ps', '-q', '--filter', `label=lowcode-faas.instance=${config.instance}`, '--filter', `label=lowcode-faas.function=${fn}`]);
	const { stdout } = await execa('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', '--', id.split('\n')[0]!]);
	return stdout.trim().split(' ')[0]!;
}

const naming = suite('swarm attack: service names from function names');

naming('every instance name becomes a distinct service name Swarm takes (63 characters, a letter or digit at each end)', () => {
	const valid = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;
	const short = 'lcf-0123456789ab-greet-1a2b3c4d';
	assert.is(serviceName(short), short, 'a name Swarm takes is kept');
	const seen = new Set<string>();
	for (const fn of [`a${'-b'.repeat(31)}c`, `${'x'.repeat(36)}_-`, `${'y'.repeat(37)}`, `${'y'.repeat(38)}`, `${'z'.repeat(64)}`]) {
		for (const suffix of ['1a2b3c4d', '1a2b3c4e']) {
			const name = serviceName(`lcf-0123456789ab-${fn}-${suffix}`);
			assert.ok(name.length <= 63 && valid.test(name), name);
			seen.add(name);
		}
	}
	assert.is(seen.size, 10, 'no two instances share a service');
});

naming.run();

const fn = suite('swarm attack: a hostile function in its task');
fn.before(ensureSwarm);

fn("a task reaches no other function's task: not on its bridge address, nor on its published port through any address of the node, nor Swarm's own ports", async () => {
	const platform = await startPlatform(SWARM);
	try {
		await deploy(platform, 'victim', 'echo.py');
		await invoke(platform, 'victim', { input: { a: 1 }, timeout_ms: COLD_MS });
		const port = await publishedPort(platform.config, 'victim');
		const victim = await taskAddress(platform.config, 'victim');
		const { stdout: nodeAddr } = await execa('docker', ['info', '--format', '{{.Swarm.NodeAddr}}']);
		await deploy(platform, 'probe', 'swarm_probe.py');
		// '' is the probe's own gateway: the host, through the swarm bridge.
		const targets = [
			[victim, 8080],
			['', port],
			[nodeAddr.trim(), port],
			['', 2377],
			['', 7946],
			[nodeAddr.trim(), 2377],
		];
		const r = await invoke(platform, 'probe', { input: { connect: targets }, timeout_ms: COLD_MS });
		assert.is(r.status, 'success', JSON.stringify(r));
		const reached = Object.entries(r.output.reached as Record<string, boolean>).filter(([, yes]) => yes);
		assert.equal(reached, [], `out of the probe's reach (gateway ${r.output.gateway}, victim on ${victim}, port ${port})`);
	} finally {
		await closeClean(platform);
	}
});

fn('its secret is its own; only /tmp and /dev/shm take writes; a setuid-root binary of the image runs as uid 0 with no capability', async () => {
	const platform = await startPlatform(SWARM);
	try {
		await deploy(platform, 'other', 'echo.py', { env: { OTHER_SECRET: 'theirs' } });
		await invoke(platform, 'other', { input: 1, timeout_ms: COLD_MS });
		await deploy(platform, 'probe', 'swarm_probe.py', { env: { MINE: 'mine' } });
		const tries = ['/tmp/x', '/dev/shm/x', '/app/x', '/app/swarm_probe.py', '/x', '/etc/x', '/run/secrets/x', '/run/secrets/lowcode-faas-env'];
		const r = await invoke(platform, 'probe', { input: { write: tries, setuid_run: true }, timeout_ms: COLD_MS });
		assert.is(r.status, 'success', JSON.stringify(r));
		assert.equal(r.output.secrets, ['lowcode-faas-env'], 'one secret mounted: its own');
		assert.equal(r.output.writable, ['/tmp/x', '/dev/shm/x']);
		assert.is(r.output.cap_bnd, '0000000000000000', 'no capability can ever be gained');
		// The gap README names (no no-new-privileges on a service): setuid works, and gives uid 0 nothing.
		const run = r.output.setuid_run as Record<string, string[]>;
		assert.is(run.Uid?.[1], '0', `passwd runs with effective uid 0: ${JSON.stringify(run)}`);
		assert.equal([run.CapPrm?.[0], run.CapEff?.[0]], ['0000000000000000', '0000000000000000'], JSON.stringify(run));
		// Every sandbox flag reached the task's container (Swarm drops what it does not know without a word).
		const box = platform.config.sandbox;
		const { stdout: id } = await execa('docker', ['ps', '-q', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`, '--filter', 'label=lowcode-faas.function=probe']);
		const { stdout } = await execa('docker', ['inspect', '--format', '{{json .HostConfig}}', '--', id.trim()]);
		const host = JSON.parse(stdout);
		const seen = {
			readOnly: host.ReadonlyRootfs,
			capDrop: host.CapDrop,
			privileged: host.Privileged,
			pids: host.PidsLimit,
			memory: host.Memory,
			cpus: host.NanoCpus,
			init: host.Init,
			nofile: host.Ulimits,
			log: host.LogConfig,
			mounts: host.Binds ?? null,
		};
		assert.equal(seen, {
			readOnly: box.readOnlyRoot,
			capDrop: ['ALL'],
			privileged: false,
			pids: box.pidsLimit,
			memory: box.memoryMb * 1024 * 1024,
			cpus: box.cpus * 1e9,
			init: true,
			nofile: [{ Name: 'nofile', Hard: box.nofile, Soft: box.nofile }],
			log: { Type: 'json-file', Config: { 'max-file': '1', 'max-size': `${box.logMaxKb}k` } },
			mounts: null,
		});
	} finally {
		await closeClean(platform);
	}
});

fn('a function that crashes on every start leaves no service to restart and no container behind', async () => {
	const platform = await startPlatform(SWARM);
	const { config } = platform;
	try {
		await deploy(platform, 'crash', 'crash.py');
		for (let i = 0; i < 3; i++) {
			const r = await invoke(platform, 'crash', { timeout_ms: COLD_MS });
			assert.is(r.status, 'failed', JSON.stringify(r));
			assert.match(r.error_message, /fatal: the model file is missing/);
		}
		// A service whose start failed is removed, not parked: Swarm's on-failure restart has nothing left to restart,
		// and its exited containers go with it.
		await eventually(
			'no service left',
			() => swarmNames('service', config, 'crash'),
			(list) => list.length === 0,
			20_000,
		);
		const containers = async () => (await execa('docker', ['ps', '-aq', '--filter', `label=lowcode-faas.instance=${config.instance}`])).stdout.trim();
		await eventually('no container left', containers, (ids) => ids === '', 20_000);
	} finally {
		await closeClean(platform);
	}
});

fn.run();

const local = suite('swarm attack: a local user without root on the manager');
local.before(ensureSwarm);

local("a function's env is out of a local user's reach: not its process's environment, nor its secret's file, nor any command line", async () => {
	const platform = await startPlatform(SWARM);
	const marker = `swarm-secret-${Date.now()}`;
	try {
		await deploy(platform, 'env', 'env.py', { env: { SECRET_MARKER: marker } });
		const r = await invoke(platform, 'env', { input: ['SECRET_MARKER'], timeout_ms: COLD_MS });
		assert.equal(r.output, { SECRET_MARKER: marker }, JSON.stringify(r));
		const { stdout: id } = await execa('docker', ['ps', '-q', '--no-trunc', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`]);
		const { stdout: initPid } = await execa('docker', ['inspect', '--format', '{{.State.Pid}}', '--', id.trim()]);
		// The function's process: docker-init's child (--init).
		const { stdout: children } = await execa('cat', [`/proc/${initPid.trim()}/task/${initPid.trim()}/children`]);
		const pid = children.trim().split(' ')[0]!;
		assert.ok((await execa('cat', [`/proc/${pid}/environ`])).stdout.includes(marker), 'root sees it: the probe is aimed right');
		const reads = [`/proc/${pid}/environ`, `/proc/${pid}/root/run/secrets/lowcode-faas-env`, `/var/lib/docker/containers/${id.trim()}/mounts/secrets`];
		for (const path of reads) {
			const tried = await execa('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'sh', '-c', `${path.endsWith('/secrets') ? 'ls' : 'cat'} "${path}"`], { reject: false });
			assert.not.ok(tried.stdout.includes(marker) || tried.exitCode === 0, `uid 65534 cannot read ${path}: ${tried.stdout.slice(0, 80)}${tried.stderr}`);
		}
		const { stdout: lines } = await execa('sh', ['-c', 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "']);
		assert.not.ok(lines.includes(marker), 'on no command line');
	} finally {
		await closeClean(platform);
	}
});

local.run();

const caller = suite('swarm attack: a hostile API caller');
caller.before(ensureSwarm);

caller('a source or env too big for Swarm fails at once with a clear message, creates nothing, and takes no parked service', async () => {
	// One port and a short idle time: the first function's service is parked on the one port.
	const platform = await startPlatform({ ...SWARM, LOWCODE_FAAS_SWARM_PORTS: '34090-34090', LOWCODE_FAAS_IDLE_S: '1' });
	const { config } = platform;
	try {
		await deploy(platform, 'echo', 'echo.py');
		await invoke(platform, 'echo', { input: 1, timeout_ms: COLD_MS });
		await eventually(
			'echo parked',
			async () => platform.app.swarm!.services(),
			(list) => list.length === 1 && list[0]!.instance === null,
			20_000,
		);
		const parked = await swarmObjectsOf(config);
		// 1 MiB is the API's limit; a Swarm config holds less than 1,024,000 bytes.
		const big = `# ${'x'.repeat(1_024_000)}\n${await fixture('echo.py')}`.slice(-1_040_000);
		await createFunction(platform, 'big', 'python', big);
		const r = await invoke(platform, 'big', { timeout_ms: COLD_MS });
		assert.is(r.status, 'failed', JSON.stringify(r).slice(0, 300));
		assert.match(r.error_message, /a Swarm config holds at most 1023999/);
		// The API takes 1 MiB of env; a Swarm secret holds less than 512,000 bytes.
		const env: Record<string, string> = {};
		for (let i = 0; i < 20; i++) env[`V${i}`] = 'x'.repeat(30_000);
		await deploy(platform, 'bigenv', 'echo.py', { env });
		const e = await invoke(platform, 'bigenv', { timeout_ms: COLD_MS });
		assert.is(e.status, 'failed', JSON.stringify(e));
		assert.match(e.error_message, /The env is \d+ bytes as JSON: a Swarm secret holds at most 511999; make it smaller/);
		assert.equal(await swarmObjectsOf(config), parked, 'nothing made, the parked service kept');
		assert.is(platform.app.swarm!.services().length, 1);
	} finally {
		await closeClean(platform);
	}
});

caller('a DELETE racing a cold start leaves no service, config or secret behind, while the platform runs', async () => {
	const platform = await startPlatform(SWARM);
	try {
		const delays = [0, 30, 150, 400, 800, 1500];
		const source = await fixture('echo.py');
		for (const [i] of delays.entries()) await createFunction(platform, `race-${i}`, 'python', source);
		await Promise.all(
			delays.map(async (delay, i) => {
				const call = platform.request('POST', `/functions/race-${i}/invoke`, { input: i, timeout_ms: COLD_MS });
				// The offset of the race itself, not a wait for state.
				await sleep(delay);
				const del = await platform.request('DELETE', `/functions/race-${i}`);
				assert.is(del.status, 204, JSON.stringify(del.body));
				await call;
			}),
		);
		await eventually(
			'every service, config and secret removed',
			() => swarmObjectsOf(platform.config),
			(o) => JSON.stringify(o) === JSON.stringify(NO_SWARM_OBJECTS),
			30_000,
		);
		assert.equal(platform.app.swarm!.services(), []);
	} finally {
		await closeClean(platform);
	}
});

caller("a function named with the API's longest name (64 characters) runs as a service", async () => {
	const platform = await startPlatform(SWARM);
	try {
		const name = `a${'-b'.repeat(31)}c`;
		assert.is(name.length, 64);
		await deploy(platform, name, 'echo.py');
		const r = await invoke(platform, name, { input: { long: true }, timeout_ms: COLD_MS });
		assert.is(r.status, 'success', JSON.stringify(r));
		assert.equal(r.output.body, { long: true });
		assert.is((await swarmNames('service', platform.config, name)).length, 1);
	} finally {
		await closeClean(platform);
	}
});

caller('a port of the range held by another program costs one failed start, not every start of that function', async () => {
	// Anyone on the node (a local user, another service) may listen on a port of the range: Swarm does not know it.
	const squatter = execa('python3', ['-c', 'import socket,time; s=socket.socket(); s.bind(("0.0.0.0", 34080)); s.listen(); print("bound", flush=True); time.sleep(600)']);
	const bound = new Promise<void>((resolve, reject) => {
		squatter.stdout?.once('data', () => resolve());
		squatter.catch(reject);
	});
	const platform = await startPlatform({ ...SWARM, LOWCODE_FAAS_SWARM_PORTS: '34080-34081' });
	try {
		await bound;
		await deploy(platform, 'echo', 'echo.py');
		// The first start meets the held port: it fails with Swarm's reason...
		const first = await invoke(platform, 'echo', { input: 1, timeout_ms: COLD_MS });
		assert.is(first.status, 'failed', JSON.stringify(first));
		assert.match(first.error_message, /could not be started by Swarm \(.*address already in use/);
		// At its first failure, not after Swarm's restarts of it (every 5 s) for the whole 30 s allowed to place it.
		assert.ok(first.duration_ms < 10_000, `failed in ${first.duration_ms} ms`);
		// ...and its service is removed, not parked, so the next start takes the other port.
		await eventually(
			'the failed service removed',
			() => swarmNames('service', platform.config, 'echo'),
			(list) => list.length === 0,
			20_000,
		);
		const second = await invoke(platform, 'echo', { input: 2, timeout_ms: COLD_MS });
		assert.is(second.status, 'success', JSON.stringify(second));
		assert.is(await publishedPort(platform.config, 'echo'), 34081);
	} finally {
		squatter.kill();
		await squatter.catch(() => {});
		await closeClean(platform);
	}
});

caller('parked services, which keep sources and env in the Raft store, are no more than LOWCODE_FAAS_MAX_CONTAINERS', async () => {
	const platform = await startPlatform({ ...SWARM, LOWCODE_FAAS_MAX_CONTAINERS: '2', LOWCODE_FAAS_IDLE_S: '1' });
	try {
		const source = await fixture('echo.py');
		for (let i = 0; i < 4; i++) {
			await createFunction(platform, `many-${i}`, 'python', source);
			const r = await invoke(platform, `many-${i}`, { input: i, timeout_ms: COLD_MS });
			assert.is(r.status, 'success', JSON.stringify(r));
		}
		// Every instance idle and let go: two parked services at most, with their configs and secrets.
		await eventually(
			'all let go',
			async () => platform.app.swarm!.services(),
			(list) => list.every((s) => s.instance === null),
			20_000,
		);
		const objects = await eventually(
			'at most two parked',
			() => swarmObjectsOf(platform.config),
			(o) => o.service.length <= 2,
			20_000,
		);
		assert.ok(objects.config.length <= 2 && objects.secret.length <= 2, JSON.stringify(objects));
		assert.ok(platform.app.swarm!.services().length <= 2);
	} finally {
		await closeClean(platform);
	}
});

caller.after(async () => {
	// What every start installed as root on the swarm bridge.
	await unguardSwarm(loadConfig(SWARM));
	if (initialised) await leaveLocalSwarm();
});
caller.run();
