import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, loadConfig } from '../../src/config.js';
import { type ServiceSpec, serviceArgs, swarmProblem } from '../../src/swarm.js';
import { imagesLabel } from '../../src/swarm-nodes.js';
import { describeTask, ended, noNode, replaced } from '../../src/swarm-spec.js';

const problem = suite('swarm: whether this engine can run services');

problem('an engine in no swarm, or a worker, is refused with the reason; a manager is not', () => {
	assert.match(swarmProblem({ LocalNodeState: 'inactive', ControlAvailable: false }) ?? '', /not in a swarm \(state: inactive\); run: docker swarm init/);
	assert.match(swarmProblem({ LocalNodeState: '' }) ?? '', /not in a swarm/);
	assert.match(swarmProblem({ LocalNodeState: 'error', Error: 'raft down' }) ?? '', /state: error, raft down/);
	assert.match(swarmProblem({ LocalNodeState: 'active', ControlAvailable: false }) ?? '', /a swarm worker, not a manager/);
	assert.is(swarmProblem({ LocalNodeState: 'active', ControlAvailable: true }), null);
});

problem('the node label follows the image ids: another build is another label', () => {
	assert.match(imagesLabel(['sha256:a', 'sha256:b']), /^lowcode-faas\.images\.[0-9a-f]{12}$/);
	assert.is.not(imagesLabel(['sha256:a', 'sha256:b']), imagesLabel(['sha256:a', 'sha256:c']));
});

const args = suite('swarm: docker service create arguments');

const spec = (): ServiceSpec => ({
	name: 'lcf-x-echo-1',
	image: 'img',
	labels: { 'lowcode-faas.instance': 'x' },
	env: { HOME: '/tmp' },
	port: { published: 30001, target: 8080 },
	network: 'lowcode-faas-swarm',
	configs: [{ name: 'lcf-x-src-1', target: '/app/echo.py' }],
	secret: 'lcf-x-env-1',
	command: ['python3', '-c', 'entry', '/app/echo.py'],
	constraints: ['node.labels.lowcode-faas.images.abc==1'],
	sandbox: loadConfig({ LOWCODE_FAAS_MEMORY_MB: '300' }).sandbox,
});

const pairs = (list: string[]) => list.map((item, i) => `${item} ${list[i + 1] ?? ''}`);

args('every sandbox flag Swarm has, one replica published in host mode, never a registry', () => {
	const joined = pairs(serviceArgs(spec()));
	for (const expected of [
		'--cap-drop ALL',
		'--user 2000000000:2000000000',
		'--limit-pids 128',
		'--limit-memory 300m',
		'--limit-cpu 1',
		'--ulimit nofile=1024:1024',
		'--replicas 1',
		'--restart-condition on-failure',
		'--publish mode=host,target=8080,published=30001,protocol=tcp',
		'--network lowcode-faas-swarm',
		'--mount type=tmpfs,target=/tmp,tmpfs-size=67108864',
		'--secret source=lcf-x-env-1,target=lowcode-faas-env,uid=2000000000,gid=2000000000,mode=0400',
		'--config source=lcf-x-src-1,target=/app/echo.py,mode=0444',
		'--constraint node.labels.lowcode-faas.images.abc==1',
		'--label lowcode-faas.instance=x',
		'--container-label lowcode-faas.instance=x',
		'--log-opt max-size=1024k',
	]) {
		assert.ok(joined.includes(expected), `missing ${expected}`);
	}
	const list = serviceArgs(spec());
	for (const flag of ['--read-only', '--init', '--no-resolve-image', '--detach']) assert.ok(list.includes(flag), flag);
	assert.equal(list.slice(list.indexOf('--')), ['--', 'img', 'python3', '-c', 'entry', '/app/echo.py'], 'the image and command after --');
});

args("only the platform's constants are --env: the function's variables travel in the secret", () => {
	const list = serviceArgs(spec());
	assert.equal(
		list.filter((_, i) => list[i - 1] === '--env'),
		['HOME=/tmp'],
	);
});

const config = suite('swarm: configuration');

config('LOWCODE_FAAS_BACKEND and the LOWCODE_FAAS_SWARM_* settings are checked', () => {
	const c = loadConfig({});
	assert.is(c.backend, 'docker');
	assert.equal(c.swarmPorts, { first: 30000, last: 30999 });
	assert.is(c.swarmParkMs, 3_600_000);
	const s = loadConfig({ LOWCODE_FAAS_BACKEND: 'swarm', LOWCODE_FAAS_SWARM_PORTS: '31000-31009', LOWCODE_FAAS_SWARM_PARK_S: '60' });
	assert.equal([s.backend, s.swarmPorts, s.swarmParkMs], ['swarm', { first: 31000, last: 31009 }, 60_000]);
	assert.equal(loadConfig({ LOWCODE_FAAS_SWARM_CONSTRAINTS: 'node.role==worker; node.labels.zone!=b' }).swarmConstraints, ['node.role==worker', 'node.labels.zone!=b']);
	for (const [key, value, message] of [
		['LOWCODE_FAAS_BACKEND', 'k8s', /LOWCODE_FAAS_BACKEND must be docker or swarm/],
		['LOWCODE_FAAS_SWARM_PORTS', '30999-30000', /FIRST-LAST/],
		['LOWCODE_FAAS_SWARM_PORTS', '80-90', /within 1024-65535/],
		['LOWCODE_FAAS_SWARM_PORTS', '30000', /FIRST-LAST/],
		['LOWCODE_FAAS_SWARM_PARK_S', '0', /LOWCODE_FAAS_SWARM_PARK_S must be an integer/],
		['LOWCODE_FAAS_SWARM_CONSTRAINTS', 'node.role=worker', /constraints like node.role==worker/],
		['LOWCODE_FAAS_SWARM_CONSTRAINTS', '--mount==x', /constraints like/],
	] as const) {
		assert.throws(
			() => loadConfig({ [key]: value }),
			(err: unknown) => err instanceof ConfigError && message.test(err.message),
			`${key}=${value}`,
		);
	}
});

const tasks = suite('swarm: what a task state means');

const task = (state: string, desiredState = 'running', error = '', exitCode = -1) => ({ id: 't', state, desiredState, error, exitCode, nodeId: 'n', port: 30001 });

tasks('a task is over when it ended, or when Swarm gave it up while its node still reports it running', () => {
	assert.not.ok(ended(task('running')));
	assert.not.ok(ended(task('pending')));
	for (const state of ['complete', 'failed', 'shutdown', 'rejected', 'orphaned', 'remove']) assert.ok(ended(task(state, 'shutdown')), state);
	assert.ok(ended(undefined), 'a task Swarm no longer has');
	assert.ok(ended(task('running', 'shutdown')), 'its node went down: Swarm replaces it');
	assert.ok(replaced(task('running', 'shutdown')));
	assert.not.ok(replaced(task('failed', 'shutdown')), 'a task that failed ended by itself');
	assert.not.ok(replaced(task('running')));
});

tasks('a task waits for a node: said at once, unless a port that frees itself is why', () => {
	assert.ok(noNode(task('pending', 'running', 'no suitable node (2 nodes not available for new tasks; scheduling constraints not satisfied on 1 node)')));
	assert.not.ok(noNode(task('pending', 'running', 'no suitable node (host-mode port already in use on 1 node)')));
	assert.not.ok(noNode(task('pending')));
	assert.not.ok(noNode(task('assigned', 'running', 'no suitable node (1 node not available for new tasks)')));
});

tasks('how a task ended, in words: a node lost, killed, refused, or its exit code with its output', () => {
	const lost = { node: 'worker-1', why: 'down: heartbeat failure' };
	assert.is(describeTask(task('running', 'shutdown'), 'ignored', 128, lost), 'was lost with its node worker-1 (down: heartbeat failure)');
	assert.is(describeTask(task('failed', 'shutdown', 'task: non-zero exit (3)', 3), 'a\nb', 128, lost), 'exited with code 3 (last output: a | b)', 'it ended before its node went');
	assert.match(describeTask(task('failed', 'shutdown', '', 137), '', 128), /^was killed \(SIGKILL\), most likely out of memory \(limit 128 MiB\)$/);
	assert.is(describeTask(task('rejected', 'shutdown', 'No such image'), '', 128), 'could not be started by Swarm (No such image)');
});

problem.run();
args.run();
config.run();
tasks.run();
