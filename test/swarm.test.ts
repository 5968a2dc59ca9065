import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Config, loadConfig } from '../src/config.js';
import { unguardBridge, unguardPorts, unguardSwarm } from '../src/firewall.js';
import { answersFor, apiAt, createFunction, deploy, eventually, fixture, invoke, logged, request, spawnServer, startPlatform } from './helpers.js';
import { NO_SWARM_OBJECTS, closeClean, ensureSwarm as ensureLocalSwarm, leaveSwarm as leaveLocalSwarm, swarmObjectsOf } from './local-swarm.js';

/**
 * The Swarm backend on a single-node swarm of this machine's own engine: initialised here when the
 * engine is in none, and left at the end only then (others' docker tests run beside it untouched).
 */

const SWARM = { LOWCODE_FAAS_BACKEND: 'swarm', LOWCODE_FAAS_SWARM_PORTS: '30000-30999' };
// For cases that act on the task's container here: a node another test joined to this swarm must not get it.
const HERE = { ...SWARM, LOWCODE_FAAS_SWARM_CONSTRAINTS: 'node.role==manager' };
let initialised = false;
// A Swarm cold start (service created or scaled to one, task scheduled, container started) takes 1-3 s here, more under load.
const COLD_MS = 60_000;

async function ensureSwarm() {
	// Three suites call this: the first may initialise the swarm, the next ones find it active.
	if (await ensureLocalSwarm()) initialised = true;
}

async function leaveSwarm() {
	if (initialised) await leaveLocalSwarm();
}

/** A function's services with their replicas, e.g. [['lcf-..-greet-1a2b3c4d', '1/1']]. */
async function servicesOf(config: Config, fn: string): Promise<[string, string][]> {
	const { stdout } = await execa('docker', ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}', '--filter', `label=lowcode-faas.function=${fn}`, '--filter', `label=lowcode-faas.instance=${config.instance}`]);
	return stdout
		.split('\n')
		.filter(Boolean)
		.map((line) => line.split(' ') as [string, string]);
}

const seed = suite('swarm: the seed example, both languages');
seed.before(ensureSwarm);

seed('greet in Python and Deno answers through services published in host mode', async () => {
	const platform = await startPlatform(SWARM, { 'greet.py': await fixture('../../data/functions/greet.py') });
	try {
		const r = await invoke(platform, 'greet', { input: { name: 'Swarm' }, timeout_ms: COLD_MS });
		assert.equal(r.output, { message: 'Hello, Swarm' }, JSON.stringify(r));
		assert.ok(r.cold_start);
		await createFunction(platform, 'greet-ts', 'deno', await fixture('../../data/functions/greet.ts'));
		const d = await invoke(platform, 'greet-ts', { input: { name: 'Deno' }, timeout_ms: COLD_MS });
		assert.equal(d.output, { message: 'Hello, Deno' }, JSON.stringify(d));
		const service = (await servicesOf(platform.config, 'greet'))[0]?.[0];
		const { stdout } = await execa('docker', ['service', 'inspect', '--format', '{{json .Endpoint.Ports}} {{.Spec.TaskTemplate.ContainerSpec.ReadOnly}}', '--', service!]);
		assert.match(stdout, /"PublishMode":"host"/);
		assert.match(stdout, /"PublishedPort":30\d\d\d/);
		assert.match(stdout, / true$/, 'read-only root');
		const again = await invoke(platform, 'greet', { input: { name: 'warm' }, timeout_ms: COLD_MS });
		assert.is(again.cold_start, false);
		// What it printed, from `docker service logs` of its task.
		await logged(platform, 'greet', 'greet listening on 8080');
		const ready = await platform.request('GET', '/readyz');
		assert.is(ready.status, 200, JSON.stringify(ready.body));
		assert.equal(ready.body.nodes_without_images, [], JSON.stringify(ready.body));
		assert.is(platform.app.stems, null, 'no stem cells in a swarm');
	} finally {
		await closeClean(platform);
	}
});

seed("the environment travels as a secret: not in the service's spec, read by the function", async () => {
	const platform = await startPlatform(SWARM);
	const marker = `marker-${Date.now()}-'q"$HOME`;
	try {
		await deploy(platform, 'env', 'env.py', { env: { SECRET_MARKER: marker } });
		const r = await invoke(platform, 'env', { input: ['SECRET_MARKER', 'PORT'], timeout_ms: COLD_MS });
		assert.equal(r.output, { SECRET_MARKER: marker, PORT: '8080' }, JSON.stringify(r));
		const service = (await servicesOf(platform.config, 'env'))[0]?.[0];
		const { stdout } = await execa('docker', ['service', 'inspect', '--', service!]);
		assert.not.ok(stdout.includes('marker-'), 'the value is in no spec');
		assert.is((await swarmObjectsOf(platform.config)).secret.length, 1);
	} finally {
		await closeClean(platform);
	}
});

seed.run();

const scale = suite('swarm: replicas, scale to zero, new code, delete');
scale.before(ensureSwarm);

scale('concurrent load starts replicas up to max_replicas', async () => {
	const platform = await startPlatform({ ...SWARM, LOWCODE_FAAS_CONCURRENCY: '1' });
	try {
		await deploy(platform, 'slow', 'slow.py', { max_replicas: 2 });
		const results = await Promise.all([1, 2, 3, 4].map(() => invoke(platform, 'slow', { input: { seconds: 0.5 }, timeout_ms: COLD_MS })));
		for (const r of results) assert.is(r.status, 'success', JSON.stringify(r));
		const hosts = new Set(results.map((r) => r.output.host));
		assert.is(hosts.size, 2, 'two replicas served');
		assert.is((await servicesOf(platform.config, 'slow')).length, 2, 'no more services than max_replicas');
	} finally {
		await closeClean(platform);
	}
});

scale('an idle instance is scaled to zero and parked; the next call scales the same service back to one', async () => {
	// One port: a new function's service takes the port of the parked one.
	const platform = await startPlatform({ ...SWARM, LOWCODE_FAAS_IDLE_S: '1', LOWCODE_FAAS_SWARM_PORTS: '30500-30500' });
	const parked = async (fn: string) => {
		const list = await eventually(
			`${fn}'s service at zero replicas`,
			() => servicesOf(platform.config, fn),
			(l) => l.length === 1 && l[0]![1] === '0/0',
			15_000,
		);
		return list[0]![0];
	};
	try {
		await deploy(platform, 'echo', 'echo.py');
		assert.ok((await invoke(platform, 'echo', { input: 1, timeout_ms: COLD_MS })).cold_start);
		const service = await parked('echo');
		const r = await invoke(platform, 'echo', { input: 2, timeout_ms: COLD_MS });
		assert.is(r.status, 'success', JSON.stringify(r));
		assert.ok(r.cold_start, 'a cold start: 0 -> 1');
		assert.equal(await servicesOf(platform.config, 'echo'), [[service, '1/1']], 'the parked service served it');
		await parked('echo');
		await deploy(platform, 'other', 'echo.py');
		assert.is((await invoke(platform, 'other', { timeout_ms: COLD_MS })).status, 'success', 'the parked service gave its port up');
		assert.equal(await servicesOf(platform.config, 'echo'), [], 'and went');
	} finally {
		await closeClean(platform);
	}
});

scale('new code wins; the old service and its config go', async () => {
	const platform = await startPlatform(SWARM);
	try {
		const source = await fixture('saying.py');
		await createFunction(platform, 'say', 'python', source);
		assert.is((await invoke(platform, 'say', { timeout_ms: COLD_MS })).output, 'default');
		const old = (await servicesOf(platform.config, 'say'))[0]?.[0];
		const before = (await swarmObjectsOf(platform.config)).config;
		await createFunction(platform, 'say', 'python', source.replace('WORD = "default"', 'WORD = "newer"'));
		assert.is((await invoke(platform, 'say', { timeout_ms: COLD_MS })).output, 'newer');
		await eventually(
			'the old service removed',
			() => servicesOf(platform.config, 'say'),
			(list) => list.length === 1 && list[0]![0] !== old,
		);
		const after = (await swarmObjectsOf(platform.config)).config;
		assert.is(after.length, 1);
		assert.is.not(after[0], before[0], 'the old source config went with it');
	} finally {
		await closeClean(platform);
	}
});

scale('delete removes the service, its config and its secret', async () => {
	const platform = await startPlatform(SWARM);
	try {
		await deploy(platform, 'echo', 'echo.py');
		assert.is((await invoke(platform, 'echo', { timeout_ms: COLD_MS })).status, 'success');
		assert.is((await swarmObjectsOf(platform.config)).service.length, 1);
		assert.is((await platform.request('DELETE', '/functions/echo')).status, 204);
		await eventually(
			'nothing of it left',
			() => swarmObjectsOf(platform.config),
			(o) => o.service.length + o.config.length + o.secret.length === 0,
		);
	} finally {
		await closeClean(platform);
	}
});

scale('a task that dies is seen; the next call gets a new one', async () => {
	const platform = await startPlatform(HERE);
	try {
		await deploy(platform, 'echo', 'echo.py');
		assert.is((await invoke(platform, 'echo', { timeout_ms: COLD_MS })).status, 'success');
		const { stdout } = await execa('docker', ['ps', '-q', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`]);
		await execa('docker', ['kill', '--', stdout.trim()]);
		await eventually(
			'the scheduler to let it go',
			async () => platform.app.scheduler.snapshot(),
			(s) => s.length === 0,
		);
		const r = await invoke(platform, 'echo', { timeout_ms: COLD_MS });
		assert.is(r.status, 'success', JSON.stringify(r));
		assert.ok(r.cold_start);
	} finally {
		await closeClean(platform);
	}
});

scale.run();

const kept = suite('swarm: min_warm, and a request a dead task never got');
kept.before(ensureSwarm);

kept('min_warm 1: a running service with no invocation, kept past the idle time, gone on delete', async () => {
	const platform = await startPlatform({ ...SWARM, LOWCODE_FAAS_IDLE_S: '1' });
	try {
		await deploy(platform, 'warmed', 'echo.py', { min_warm: 1 });
		const warm = await eventually(
			'a running service for warmed',
			() => servicesOf(platform.config, 'warmed'),
			(l) => l.length === 1 && l[0]![1] === '1/1',
			COLD_MS,
		);
		// A function without min_warm, used once, is the clock: once it is parked, the idle time has passed for both.
		await deploy(platform, 'plain', 'echo.py');
		assert.is((await invoke(platform, 'plain', { timeout_ms: COLD_MS })).status, 'success');
		await eventually(
			'plain parked',
			() => servicesOf(platform.config, 'plain'),
			(l) => l.length === 1 && l[0]![1] === '0/0',
			15_000,
		);
		assert.equal(await servicesOf(platform.config, 'warmed'), [[warm[0]![0], '1/1']], 'the warm service stays, the same one');
		const r = await invoke(platform, 'warmed', { input: 1, timeout_ms: COLD_MS });
		assert.is(r.status, 'success', JSON.stringify(r));
		assert.is(r.cold_start, false, 'it was warm');
		assert.is((await platform.request('DELETE', '/functions/warmed')).status, 204);
		await eventually(
			'its service gone',
			() => servicesOf(platform.config, 'warmed'),
			(l) => l.length === 0,
		);
	} finally {
		await closeClean(platform);
	}
});

/** The `docker events` a server process follows die events with: its child whose command line says so. */
async function eventsWatcherOf(pid: number): Promise<number> {
	for (const entry of await readdir('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
		const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
		const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
		if (parent === pid && cmdline.split('\0').includes('events')) return Number(entry);
	}
	throw new Error(`no docker events child of ${pid}`);
}

kept('a request sent to a task killed a moment before runs again on a fresh one', async () => {
	const dir = await mkdtemp(join(tmpdir(), 'lowcode-faas-swarm-'));
	const { child, url } = await spawnServer(dir, HERE);
	let printed = '';
	child.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString()));
	const watcher = await eventsWatcherOf(child.pid!);
	try {
		await deploy(apiAt(url), 'echo', 'echo.py');
		const config = loadConfig({ LOWCODE_FAAS_DATA: dir });
		// Up to 3 rounds: Swarm's 2 s task poll may still see the death first (then no request reaches the dead task).
		for (let round = 1; round <= 3 && !printed.includes('retrying on a fresh container'); round++) {
			assert.is((await invoke(apiAt(url), 'echo', { input: 0, timeout_ms: COLD_MS })).status, 'success');
			const { stdout } = await execa('docker', ['ps', '-q', '--filter', `label=lowcode-faas.instance=${config.instance}`]);
			// Its die event held back (as it is when it comes late, or from another node), so the next request goes to the dead task.
			process.kill(watcher, 'SIGSTOP');
			try {
				await execa('docker', ['kill', '--', stdout.trim()]);
				const r = await invoke(apiAt(url), 'echo', { input: round, timeout_ms: COLD_MS });
				assert.is(r.status, 'success', JSON.stringify(r));
				assert.is(r.output.body, round);
				assert.ok(r.cold_start, 'a fresh task answered');
			} finally {
				process.kill(watcher, 'SIGCONT');
			}
		}
		assert.match(printed, /retrying on a fresh container/, 'the request went to the dead task, and ran again');
	} finally {
		child.kill('SIGTERM');
		await child;
		await unguardPorts(loadConfig(SWARM).swarmPorts);
		await rm(dir, { recursive: true, force: true });
	}
	assert.equal(await swarmObjectsOf(loadConfig({ LOWCODE_FAAS_DATA: dir })), NO_SWARM_OBJECTS);
});

kept.run();

const guard = suite('swarm: only root and the platform user reach the published ports');
// Ranges of their own (below the kernel's ephemeral ports, apart from test/swarm-multinode.test.ts's 31000-31099): each chain is removed at its case's end.
const GUARDED = { ...HERE, LOWCODE_FAAS_SWARM_PORTS: '31500-31599' };
guard.before(ensureSwarm);

/** This host's addresses a task's host-mode port answers on: loopback (docker-proxy), IPv6 loopback, and a non-loopback one (DNAT). */
function localAddresses(): string[] {
	const outer = Object.values(networkInterfaces())
		.flat()
		.find((a) => a && a.family === 'IPv4' && !a.internal);
	return ['127.0.0.1', '[::1]', ...(outer ? [outer.address] : [])];
}

guard('another local user cannot call a task on its published port nor its address; root (the platform here) can; the task cannot connect to the host', async () => {
	const platform = await startPlatform(GUARDED);
	try {
		await deploy(platform, 'echo', 'echo.py');
		assert.is((await invoke(platform, 'echo', { input: 1, timeout_ms: COLD_MS })).status, 'success');
		const service = (await servicesOf(platform.config, 'echo'))[0]![0];
		const { stdout: port } = await execa('docker', ['service', 'inspect', '--format', '{{range .Endpoint.Ports}}{{.PublishedPort}}{{end}}', '--', service]);
		const { stdout: task } = await execa('docker', ['ps', '-q', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`]);
		const { stdout: address } = await execa('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', '--', task.trim()]);
		const urls = [...localAddresses().map((a) => `http://${a}:${port.trim()}/`), `http://${address.trim()}:8080/`];
		for (const url of urls) {
			assert.is(await answersFor(0, url), 'status 204', `root gets the answer on ${url}`);
			assert.match(await answersFor(65534, url), /^refused /, `uid 65534 is refused on ${url}`);
			assert.match(await answersFor(1000, url), /^refused /, `uid 1000 is refused on ${url}`);
		}
		assert.is((await invoke(platform, 'echo', { input: 2 })).output.body, 2, 'the function still serves the platform');
		// And a task cannot open a connection to the host through its bridge's gateway (a service on all interfaces).
		const listener = createServer((socket) => socket.on('error', () => {}).end('host secret\n'));
		await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
		try {
			await deploy(platform, 'neighbour', 'neighbour.py');
			const { stdout: gateway } = await execa('docker', ['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', `${platform.config.sandbox.network}-swarm`]);
			const hostPort = (listener.address() as AddressInfo).port;
			const tried = await invoke(platform, 'neighbour', { input: { host: gateway.trim(), port: hostPort }, timeout_ms: COLD_MS });
			assert.is(tried.status, 'success', JSON.stringify(tried));
			assert.is(tried.output.reached, false, `the host's port ${hostPort} on ${gateway.trim()} is out of reach`);
		} finally {
			await new Promise((resolve) => listener.close(resolve));
		}
	} finally {
		await closeClean(platform);
	}
	await noChainOf(platform.config.swarmPorts);
});

guard('firewall.js guards the ports (IPv4 and IPv6) and the swarm bridge for root and the named user, idempotently', async () => {
	// A network of its own (as test/reach.test.ts's firewall case), so that no shared chain changes.
	const env = { ...process.env, ...GUARDED, LOWCODE_FAAS_SWARM_PORTS: '31600-31699', LOWCODE_FAAS_NETWORK: 'lcf-guard-test' };
	const config = loadConfig(env);
	const chain = 'LCF-SW-31600-31699';
	let bridge = '';
	try {
		for (let i = 0; i < 2; i++) await execa('node', ['dist/src/firewall.js', 'nobody'], { env });
		for (const command of ['iptables', 'ip6tables']) {
			const { stdout } = await execa(command, ['-S', chain]);
			assert.match(stdout, /RELATED,ESTABLISHED -j RETURN\n.*--uid-owner 0 -j RETURN\n.*--uid-owner 65534 -j RETURN\n.*-j REJECT/, `${command}: ${stdout}`);
			const hooks = (await execa(command, ['-S', 'OUTPUT'])).stdout.split('\n').filter((line) => line.endsWith(`-j ${chain}`));
			assert.is(hooks.length, 1, `${command}: hooked in once`);
			assert.match(hooks[0]!, /-p tcp -m conntrack --ctorigdstport 31600:31699/);
		}
		const id = (await execa('docker', ['network', 'inspect', '--format', '{{.Id}}', `${config.sandbox.network}-swarm`])).stdout.slice(0, 12);
		bridge = `br-${id}`;
		assert.match((await execa('iptables', ['-S', `LOWCODE-FAAS-${bridge}`])).stdout, /--uid-owner 65534 -j RETURN/, 'the swarm bridge is guarded');
		assert.match((await execa('iptables', ['-S', `LCF-IN-${bridge}`])).stdout, /-j REJECT/, 'tasks may not open connections to the host');
	} finally {
		await unguardSwarm(config);
		await unguardBridge(config.sandbox.bridge);
		await execa('docker', ['network', 'rm', 'lcf-guard-test-swarm'], { reject: false });
		await eventually(
			'its networks removed',
			async () => (await execa('docker', ['network', 'rm', 'lcf-guard-test-swarm-config', 'lcf-guard-test'], { reject: false })).stderr,
			(stderr) => !/in use/i.test(stderr),
		);
	}
	await noChainOf(config.swarmPorts, [bridge, config.sandbox.bridge]);
});

guard('firewall.js where the swarm network cannot be made (a worker; no swarm): the ports are guarded, the bridge said not to be', async () => {
	const dir = await mkdtemp(join(tmpdir(), 'lowcode-faas-fake-docker-'));
	await writeFile(join(dir, 'docker'), '#!/bin/sh\necho "Error response from daemon: This node is not a swarm manager." >&2\nexit 1\n');
	await chmod(join(dir, 'docker'), 0o755);
	const env = { ...process.env, ...GUARDED, LOWCODE_FAAS_SWARM_PORTS: '31700-31701', LOWCODE_FAAS_NETWORK: 'lcf-guard-test', PATH: `${dir}:${process.env.PATH}` };
	const config = loadConfig(env);
	try {
		const step = await execa('node', ['dist/src/firewall.js'], { env, reject: false });
		assert.is(step.exitCode, 0, step.stderr);
		assert.match(step.stderr, /ports 31700-31701 \(any address\); the swarm network's bridge is not guarded: .*not a swarm manager/);
		assert.match((await execa('iptables', ['-S', 'LCF-SW-31700-31701'])).stdout, /--uid-owner 0 -j RETURN\n.*-j REJECT/);
	} finally {
		await unguardPorts(config.swarmPorts);
		await unguardBridge(config.sandbox.bridge);
		await rm(dir, { recursive: true, force: true });
	}
	await noChainOf(config.swarmPorts, [config.sandbox.bridge]);
});

/** No chain of the guard left, in either family. */
async function noChainOf({ first, last }: Config['swarmPorts'], bridges: string[] = []) {
	for (const command of ['iptables', 'ip6tables']) {
		const chains = (await execa(command, ['-S'])).stdout.split('\n').filter((line) => line.startsWith('-N '));
		const left = chains.filter((line) => line === `-N LCF-SW-${first}-${last}` || bridges.some((b) => line.endsWith(`-${b}`)));
		assert.equal(left, [], `${command}: no chain of the guard left`);
	}
}

guard.run();

const life = suite('swarm: kill -9 and restart');
let dataDir: string;
life.before(ensureSwarm);
life.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-swarm-'));
});
life.after.each(async () => {
	await rm(dataDir, { recursive: true, force: true });
});
life.after(async () => {
	// What every case's start installed as root: the guard of the default range and of the swarm bridge.
	await unguardSwarm(loadConfig(SWARM));
	await leaveSwarm();
});

life('after kill -9, a restart removes the services, configs and secrets of the previous run', async () => {
	const { child, url } = await spawnServer(dataDir, SWARM);
	try {
		await deploy(apiAt(url), 'echo', 'echo.py', { env: { A: 'b' } });
		assert.is((await invoke(apiAt(url), 'echo', { timeout_ms: COLD_MS })).status, 'success');
	} finally {
		child.kill('SIGKILL');
		await child;
	}
	const config = loadConfig({ LOWCODE_FAAS_DATA: dataDir });
	const left = await swarmObjectsOf(config);
	assert.equal([left.service.length, left.config.length, left.secret.length], [1, 1, 1], 'kill -9 leaves them behind');
	const restarted = await startPlatform({ ...SWARM, LOWCODE_FAAS_DATA: dataDir });
	try {
		assert.equal(await swarmObjectsOf(config), NO_SWARM_OBJECTS, 'the restart removed them before serving');
		assert.is((await invoke(restarted, 'echo', { timeout_ms: COLD_MS })).status, 'success');
	} finally {
		await closeClean(restarted);
	}
});

life('SIGTERM removes the services', async () => {
	const { child, url } = await spawnServer(dataDir, SWARM);
	try {
		await deploy(apiAt(url), 'echo2', 'echo.py');
		assert.is((await invoke(apiAt(url), 'echo2', { timeout_ms: COLD_MS })).status, 'success');
	} finally {
		child.kill('SIGTERM');
	}
	assert.is((await child).exitCode, 0, 'SIGTERM ends it within 5 s');
	assert.equal(await swarmObjectsOf(loadConfig({ LOWCODE_FAAS_DATA: dataDir })), NO_SWARM_OBJECTS);
});

life.run();

const ready = suite('swarm: /readyz');

ready('503 with the reason when the engine is in no swarm (a docker CLI that says so, first on PATH)', async () => {
	const dir = await mkdtemp(join(tmpdir(), 'lowcode-faas-fake-docker-'));
	// biome-ignore format: a shell script
	await writeFile(join(dir, 'docker'), [
		'#!/bin/sh',
		'case "$1" in',
		'  version) echo 20.10.24 ;;',
		'  info) echo \'{"LocalNodeState":"inactive","NodeID":"","ControlAvailable":false,"Error":""}\' ;;',
		'  *) echo "Error response from daemon: This node is not a swarm manager." >&2; exit 1 ;;',
		'esac',
	].join('\n'));
	await chmod(join(dir, 'docker'), 0o755);
	const { child, url } = await spawnServer(join(dir, 'data'), { ...SWARM, PATH: `${dir}:${process.env.PATH}` });
	try {
		const res = await request(url, 'GET', '/readyz');
		assert.is(res.status, 503, JSON.stringify(res.body));
		assert.match(res.body.reason, /not in a swarm \(state: inactive\); run: docker swarm init/);
	} finally {
		child.kill('SIGTERM');
		await child;
		await rm(dir, { recursive: true, force: true });
		// Its start (as root) guarded the range before finding no swarm.
		await unguardPorts(loadConfig(SWARM).swarmPorts);
	}
});

ready.run();
