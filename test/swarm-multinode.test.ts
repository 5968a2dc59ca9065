import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../src/config.js';
import { unguardSwarm } from '../src/firewall.js';
import { type Platform, eventually, fixture, invoke, startPlatform } from './helpers.js';
import { leaveSwarm, swarmObjectsOf } from './local-swarm.js';

/**
 * The Swarm backend across nodes: two Docker engines in containers of this machine
 * (scripts/build-images.sh swarm-node=...), joined as workers to this engine's swarm, functions
 * constrained to workers. greet runs on one; the README's firewall rules keep a host outside the swarm
 * off its port; that node is killed under load and the calls move to the other; then the other falls
 * silent (paused), and the calls fail saying its node was lost, then with Swarm's reason. Or, where a
 * nested engine cannot run a task (it may lack the cgroup controllers that a service's limits need), the
 * result says exactly what it refused.
 *
 * Why these choices:
 * - The node has a cgroup namespace of its own, and its own cgroup v1 controllers (that namespace's view of
 *   them, rooted at the node container's cgroup) are remounted read-write inside it, the way a privileged
 *   dind container gets them: its engine can then set CPU, memory and pid limits, under the node
 *   container's cgroup only. The host's /sys/fs/cgroup is never bound in (checked: /proc/self/cgroup and
 *   the host's hierarchies are the same at the end). With `--cgroupns=host` and only the cgroup2 hierarchy
 *   bound in (README, "Multi-node"), the nested engine has no cpu controller and refuses every task with
 *   "NanoCPUs can not be set": the test then checks that this refusal is what the result says.
 * - /var/lib/docker is a volume: the node's engine cannot put overlay2 on the container's own overlay root
 *   (it falls back to vfs, a full copy per layer); the volume goes with the container.
 * - The manager advertises the docker0 gateway: the node container reaches it there (127.0.0.1, which
 *   test/swarm.test.ts advertises, is the node's own loopback).
 * - The swarm is initialised here only when the engine is in none, and left at the end only then.
 */

const IMAGE = 'lowcode-faas/swarm-node:1';
const CGROUP2_MAGIC = 0x63677270;
// Ports of their own: test/swarm.test.ts uses 30000-30999.
const SWARM = { LOWCODE_FAAS_BACKEND: 'swarm', LOWCODE_FAAS_SWARM_PORTS: '31000-31099', LOWCODE_FAAS_SWARM_CONSTRAINTS: 'node.role==worker' };
// The backend's own allowance for Swarm to place and start a task is 30 s: a refusal must be reported well within this.
const BOUND_MS = 45_000;

const docker = async (args: string[]) => (await execa('docker', args)).stdout.trim();

/** Whether this host mounts cgroup v1 controllers (v1 or hybrid), which a private cgroup namespace can hand to the node. */
async function cgroupV1(): Promise<boolean> {
	const info = await statfs('/sys/fs/cgroup');
	return Number(info.type) !== CGROUP2_MAGIC;
}

// The node's PID 1: its own controllers writable (per mount: `bind`, so the host's mounts keep their flags), then its engine.
const NODE_INIT = 'set -e; for m in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$m"; done; exec dockerd';

/** The README's firewall rules for a node (section "Running on a Docker Swarm"), for this test's port range. */
const firewallRules = (manager: string) => [
	['-I', 'INPUT', '-p', 'tcp', '--dport', '31000:31099', '!', '-s', manager, '!', '-i', 'lo', '-j', 'DROP'],
	['-I', 'DOCKER-USER', '-p', 'tcp', '-m', 'conntrack', '--ctorigdstport', '31000:31099', '--ctdir', 'ORIGINAL', '!', '-s', manager, '-j', 'DROP'],
];

/** Builds the node image on the first run only; says how long it took. */
async function ensureImage() {
	const { exitCode } = await execa('docker', ['image', 'inspect', IMAGE], { reject: false, stdio: 'ignore' });
	if (exitCode === 0) return;
	const log = join(await mkdtemp('/tmp/lowcode-faas-swarm-node-image-'), 'build.log');
	const started = Date.now();
	await execa('bash', ['scripts/build-images.sh', `swarm-node=${IMAGE}`], { env: { SETUP_LOG: log }, stdio: 'inherit' });
	console.log(`  (built ${IMAGE} in ${Math.round((Date.now() - started) / 1000)} s)`);
}

interface TaskSeen {
	node: string;
	state: string;
	error: string;
}

/** Every task of this instance's services seen while `work` runs, by `docker service ps` (the platform removes a refused service). */
async function watchTasks<T>(config: Config, work: Promise<T>): Promise<{ result: T; tasks: TaskSeen[] }> {
	const seen = new Map<string, TaskSeen>();
	let done = false;
	const poll = (async () => {
		while (!done) {
			const services = (await execa('docker', ['service', 'ls', '-q', '--filter', `label=lowcode-faas.instance=${config.instance}`], { reject: false })).stdout.split('\n').filter(Boolean);
			for (const service of services) {
				const { stdout } = await execa('docker', ['service', 'ps', '--no-trunc', '--format', '{{.ID}}\t{{.Node}}\t{{.CurrentState}}\t{{.Error}}', '--', service], { reject: false });
				for (const line of stdout.split('\n').filter(Boolean)) {
					const [id = '', node = '', state = '', error = ''] = line.split('\t');
					// `service ps` quotes the error.
					seen.set(id, { node, state, error: error.replace(/^"(.*)"$/, '$1') });
				}
			}
			await new Promise((done) => setTimeout(done, 200));
		}
	})();
	try {
		return { result: await work, tasks: [...seen.values()] };
	} finally {
		done = true;
		await poll;
	}
}

interface Outcome {
	startedAt: number;
	ms: number;
	status: string;
	message: string;
}

/**
 * Kills `victim` (a node container) while two clients call greet, and gathers what the calls begun
 * after the kill got, until `enough` says so. Each call is bounded by its timeout_ms: longer than Swarm
 * takes to mark a node down (about 12 s with its default 5 s heartbeat), so that a call caught on the
 * dead node ends with the platform's word for it, not with the caller's deadline.
 */
async function killUnderLoad(platform: Platform, how: 'kill' | 'pause', pick: (running: string[]) => string, enough: (after: Outcome[]) => boolean, what: string) {
	const outcomes: Outcome[] = [];
	let killedAt = 0;
	let running: string[] = [];
	let victim = '';
	let stop = false;
	const client = async () => {
		while (!stop) {
			const startedAt = Date.now();
			const r = await invoke(platform, 'greet', { input: { name: 'load' }, timeout_ms: 30_000 });
			outcomes.push({ startedAt, ms: Date.now() - startedAt, status: r.status, message: r.error_message ?? '' });
		}
	};
	// A client's failure is kept for the end: left unhandled while the test waits, it would end the process.
	let broken: unknown;
	const clients = [client(), client()].map((c) =>
		c.catch((err) => {
			broken ??= err;
			stop = true;
		}),
	);
	const after = () => outcomes.filter((o) => o.startedAt > killedAt);
	try {
		await eventually(
			'calls to succeed before the kill',
			async () => {
				if (broken) throw broken;
				return outcomes.filter((o) => o.status === 'success').length;
			},
			(n) => n >= 10,
			20_000,
		);
		running = await runningOn(platform.config);
		victim = pick(running);
		await execa('docker', [how, victim]);
		killedAt = Date.now();
		await eventually(
			what,
			async () => {
				if (broken) throw broken;
				return after();
			},
			enough,
			60_000,
		);
	} finally {
		stop = true;
		await Promise.all(clients);
	}
	if (broken) throw broken;
	// Calls in flight at the kill: the platform cannot know whether they reached the function, so they are not run again.
	const caught = outcomes.filter((o) => o.startedAt <= killedAt && o.startedAt + o.ms > killedAt);
	const first = new Map<string, number>();
	for (const o of after()) if (!first.has(`${o.status}: ${o.message}`)) first.set(`${o.status}: ${o.message}`, o.startedAt - killedAt);
	const seen = [...first].map(([what, at]) => `from +${Math.round(at / 1000)} s, ${what}`);
	const inFlight = caught.map((o) => `${o.status} at +${Math.round((o.startedAt + o.ms - killedAt) / 1000)} s: ${o.message}`);
	console.log(
		`  (greet's tasks ran on ${running.join(', ')}; ${victim} ${how === 'kill' ? 'killed' : 'paused'} under load after ${outcomes.length - after().length - caught.length} calls; calls in flight at the kill got:\n    ${inFlight.join('\n    ')}\n   calls begun after it got:\n    ${seen.join('\n    ')})`,
	);
	return { after: after(), caught, killedAt, victim };
}

/** What a call caught on a node that died gets, once Swarm has marked the node down (its default 5 s heartbeat, missed). */
const lostWith = (node: string) => new RegExp(`^The function was lost with its node ${node} \\(down: heartbeat failure\\) (while handling the request|before answering)\\.$`);

/**
 * What a call gets whose connection the dying node reset or closed, before Swarm says the node is gone:
 * it may have reached the function, so it is not run again, and the connection's failure is what is known.
 */
const RESET = /^The request to the function failed: (read ECONNRESET|socket hang up|the function closed the connection mid-answer)\.$/;

/** What a start gets when no node the constraints allow is up. */
const NO_NODE = /^Swarm has no node to run the function on: no suitable node \(/;

/** The node each running task of this platform's services is on (by hostname). */
async function runningOn(config: Config): Promise<string[]> {
	const services = (await docker(['service', 'ls', '-q', '--filter', `label=lowcode-faas.instance=${config.instance}`])).split('\n').filter(Boolean);
	const nodes: string[] = [];
	for (const service of services) {
		const out = await docker(['service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}', '--', service]);
		for (const line of out.split('\n').filter(Boolean)) if (line.includes(' Running')) nodes.push(line.split(' ')[0]!);
	}
	return nodes;
}

/** Whether a plain container on this engine's bridge (a host outside the swarm) can open a TCP connection to ip:port. */
async function outsiderConnects(ip: string, port: number): Promise<boolean> {
	// biome-ignore format: docker flags stay paired with their values
	const { exitCode } = await execa('docker', ['run', '--rm', '--label', 'lowcode-faas.test=swarm-multinode', '--network', 'bridge', '--user', '65534',
		'lowcode-faas/python:3.11', 'python3', '-c', 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)', ip, String(port)], { reject: false });
	return exitCode === 0;
}

interface Node {
	name: string;
	id: string;
	ip: string;
	/** `docker` inside the node. */
	inside(args: string[], reject?: boolean): ReturnType<typeof execa>;
}

/** Starts a node container, waits for its engine, and joins it to the swarm as a worker. */
async function startNode(name: string, gateway: string, token: string): Promise<Node> {
	const inside = (args: string[], reject = true) => execa('docker', ['exec', name, 'docker', ...args], { reject });
	// biome-ignore format: docker flags stay paired with their values
	await execa('docker', ['run', '-d', '--name', name, '--hostname', name, '--label', 'lowcode-faas.test=swarm-multinode',
		// --privileged fails on a host whose bounding set lacks CAP_SYS_RESOURCE; this is the rest of it.
		'--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE', '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined',
		'--cgroupns=private', '--tmpfs', '/run', '-v', '/var/lib/docker',
		IMAGE, 'sh', '-c', NODE_INIT]);
	await eventually(
		`${name}'s engine to answer`,
		async () => (await inside(['info', '--format', '{{.ServerVersion}}'], false)).exitCode,
		(code) => code === 0,
		30_000,
	).catch(async (err: Error) => {
		throw new Error(`${err.message}\nits log: ${(await execa('docker', ['logs', '--tail', '20', name], { reject: false, all: true })).all}`);
	});
	await inside(['swarm', 'join', '--token', token, `${gateway}:2377`]);
	const id = String((await inside(['info', '--format', '{{.Swarm.NodeID}}'])).stdout).trim();
	await eventually(
		`${name} to be ready`,
		() => docker(['node', 'inspect', '--format', '{{.Status.State}}', id]),
		(s) => s === 'ready',
		30_000,
	);
	const ip = await docker(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', name]);
	return { name, id, ip, inside };
}

const multi = suite('swarm: two more nodes, Docker engines in containers, joined as workers');

multi('greet on the workers: it runs there; a node killed under load, calls move to the other; both gone, a clear error', async () => {
	if (process.getuid?.() !== 0) {
		console.log('  (skipped: needs root, for a nested Docker engine)');
		return;
	}
	if (!(await cgroupV1())) {
		// A cgroup2-only host needs dind's entrypoint dance (moving its own processes out of the root before enabling controllers): not done here.
		console.log('  (skipped: a cgroup2-only host; the node image knows cgroup v1 only)');
		return;
	}
	const cgroupsBefore = await readFile('/proc/self/cgroup', 'utf8');
	const hierarchiesBefore = await readdir('/sys/fs/cgroup');
	await ensureImage();

	const tag = randomBytes(4).toString('hex');
	const names = [`lcf-swarm-node-${tag}-1`, `lcf-swarm-node-${tag}-2`];
	let made = false;
	let nodes: Node[] = [];
	let platform: Platform | undefined;
	const started = Date.now();
	try {
		const gateway = await docker(['network', 'inspect', 'bridge', '--format', '{{(index .IPAM.Config 0).Gateway}}']);
		const [state, addr] = (await docker(['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.NodeAddr}}'])).split(' ');
		if (state !== 'active') {
			await docker(['swarm', 'init', '--advertise-addr', gateway!]);
			made = true;
		} else {
			assert.is(addr, gateway, `this engine is already in a swarm advertising ${addr}, which a node in a container cannot reach (it must be docker0's ${gateway})`);
		}
		const token = await docker(['swarm', 'join-token', '-q', 'worker']);
		// Each start is kept, so that the finally below removes whichever got made.
		const starting = names.map((name) => startNode(name, gateway!, token));
		const settled = await Promise.allSettled(starting);
		nodes = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
		for (const s of settled) if (s.status === 'rejected') throw s.reason;
		const loading = Date.now();
		await Promise.all(nodes.map((n) => execa('bash', ['scripts/swarm-images.sh', n.id, `exec:${n.name}`])));
		console.log(`  (two nodes up, joined and their images loaded in ${Math.round((Date.now() - started) / 1000)} s, of which loading ${Math.round((Date.now() - loading) / 1000)} s)`);

		platform = await startPlatform(SWARM, { 'greet.py': await fixture('../../data/functions/greet.py') });
		const ready = await platform.request('GET', '/readyz');
		assert.is(ready.status, 200, JSON.stringify(ready.body));
		assert.equal(ready.body.nodes_without_images, [], 'both workers are labelled as holding the images');
		assert.equal(ready.body.nodes_down, [], 'no node is down');

		const asked = Date.now();
		const { result: r, tasks } = await watchTasks(platform.config, invoke(platform, 'greet', { input: { name: 'worker' }, timeout_ms: 60_000 }));
		const took = Date.now() - asked;
		assert.ok(took < BOUND_MS, `the answer took ${took} ms`);
		assert.ok(tasks.length > 0, 'a task was seen');
		// A task Swarm has not placed yet has no node.
		for (const t of tasks.filter((t) => t.node)) assert.ok(names.includes(t.node), `every task was placed on a worker: ${JSON.stringify(tasks)}`);
		if (r.status !== 'success') {
			// The worker's refusal, as its engine put it, must be what the result says.
			const refused = tasks.find((t) => t.error);
			assert.ok(refused, `the result is ${r.status} but no task carries an error: ${JSON.stringify({ r, tasks })}`);
			assert.is(r.status, 'failed', JSON.stringify(r));
			assert.ok(r.error_message.includes(refused.error), `the refusal "${refused.error}" is in the result's message: ${r.error_message}`);
			assert.match(r.error_message, /could not be started by Swarm/);
			console.log(`  (what failed: the nested worker refused the function's task, after ${took} ms: ${refused.error})`);
			return;
		}
		assert.equal(r.output, { message: 'Hello, worker' }, JSON.stringify(r));
		const [hostName] = await runningOn(platform.config);
		const host = nodes.find((n) => n.name === hostName)!;
		console.log(`  (greet ran on the nested worker ${host.name}; cold start ${took} ms)`);

		// The limits hold there: the memory cgroup the worker's engine made for it says so.
		const [container] = String((await host.inside(['ps', '-q', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`])).stdout).split('\n');
		const limit = String((await host.inside(['exec', container!, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes'])).stdout).trim();
		assert.is(Number(limit), platform.config.sandbox.memoryMb * 1024 * 1024, "the function's memory limit is enforced on the worker");

		// The README's firewall rules, on the node: a host outside the swarm reaches the task's port before them, not after; the manager still does.
		const port = Number(String((await host.inside(['ps', '--format', '{{.Ports}}', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`])).stdout).match(/:(\d+)->/)?.[1]);
		assert.ok(port >= 31000 && port <= 31099, `the task is published on a port of the range: ${port}`);
		assert.ok(await outsiderConnects(host.ip, port), 'without the rules, a host outside the swarm reaches the function around the API');
		for (const rule of firewallRules(gateway!)) await execa('docker', ['exec', host.name, 'iptables', ...rule]);
		assert.not.ok(await outsiderConnects(host.ip, port), 'with them, it does not');
		const direct = await fetch(`http://${host.ip}:${port}/`, { method: 'POST', body: '{"name":"manager"}', signal: AbortSignal.timeout(5_000) });
		assert.is(direct.status, 200, 'the manager still opens connections to it');
		assert.is((await invoke(platform, 'greet', { input: { name: 'again' } })).status, 'success');

		// Failover: a node that runs greet dies under load; calls caught on it fail saying so (or as its connection is reset), then run on the other.
		const failover = await killUnderLoad(
			platform,
			'kill',
			(running) => running[0]!,
			(after) => after.filter((o) => o.status === 'success').length >= 5,
			'calls begun after the kill to succeed',
		);
		const survivor = nodes.find((n) => n.name !== failover.victim)!;
		for (const o of [...failover.caught, ...failover.after]) {
			if (o.status === 'success') continue;
			assert.is(o.status, 'failed', `a call caught on the dead node fails before its deadline: ${JSON.stringify(o)}`);
			assert.ok(lostWith(failover.victim).test(o.message) || RESET.test(o.message), `it says why: ${JSON.stringify(o)}`);
		}
		const recovered = failover.after.find((o) => o.status === 'success')!;
		console.log(`  (first call to succeed after the kill: begun at +${Math.round((recovered.startedAt - failover.killedAt) / 1000)} s, answered at +${Math.round((recovered.startedAt + recovered.ms - failover.killedAt) / 1000)} s)`);
		const now = await runningOn(platform.config);
		assert.ok(now.length > 0 && now.every((n) => n === survivor.name), `greet runs on ${survivor.name} only: ${now}`);

		// The other one falls silent (paused: no connection is reset, no heartbeat is sent, as a machine cut off
		// from the network): the calls caught on it end once Swarm marks it down, saying so; then, with no node
		// left, Swarm's reason comes at once rather than after the whole allowance.
		const none = await killUnderLoad(
			platform,
			'pause',
			() => survivor.name,
			(after) => after.some((o) => NO_NODE.test(o.message)),
			"a call begun after the node fell silent to fail with Swarm's reason",
		);
		assert.ok(none.caught.length > 0, 'calls were in flight');
		for (const o of none.caught) assert.match(o.message, lostWith(survivor.name), `a call caught on the silent node fails saying so: ${JSON.stringify(o)}`);
		for (const o of none.after) {
			assert.is.not(o.status, 'success', `no node may run greet once both workers are gone: ${JSON.stringify(o)}`);
			assert.ok(o.ms < BOUND_MS, `each call is bounded: ${JSON.stringify(o)}`);
			assert.ok(lostWith(survivor.name).test(o.message) || NO_NODE.test(o.message), `it fails saying why: ${JSON.stringify(o)}`);
		}
		// Swarm has marked both down by now: /readyz names them (the manager, which holds the images, keeps it 200).
		const after = await platform.request('GET', '/readyz');
		assert.equal([...after.body.nodes_down].sort(), nodes.map((n) => `${n.name} (down: heartbeat failure)`).sort(), JSON.stringify(after.body));
	} finally {
		const left: string[] = [];
		if (platform) {
			await platform.close();
			left.push(...Object.values(await swarmObjectsOf(platform.config)).flat());
			// What its start installed as root: the guard of its port range and of this node's swarm bridge.
			await unguardSwarm(platform.config);
		}
		for (const n of nodes) await execa('docker', ['node', 'rm', '--force', n.id], { reject: false });
		await execa('docker', ['rm', '-f', '-v', ...names], { reject: false });
		if (made) await leaveSwarm();
		assert.equal(left, [], 'no service, config or secret is left');
		assert.is(await readFile('/proc/self/cgroup', 'utf8'), cgroupsBefore, "this process's cgroups are unchanged");
		assert.equal(await readdir('/sys/fs/cgroup'), hierarchiesBefore, "the host's cgroup hierarchies are unchanged");
	}
});

multi.run();
