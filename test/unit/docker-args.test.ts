import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { envFileText, runArgs } from '../../src/docker.js';

const MARKER = 'marker-5b1f0c-never-on-a-command-line';
const ENV_FILE = '/data/.run/lcf-x.env';

const spec = (env: Record<string, string> = {}) => ({
	name: 'lcf-x',
	image: 'img',
	labels: { 'lowcode-faas': 'function' },
	env: { PORT: '8080', SECRET: MARKER },
	envDir: '/data/.run',
	publish: { host: '127.0.0.1', hostPort: 40000, containerPort: 8080 },
	mounts: [{ source: '/data/functions/a,b.py', target: '/app/a,b.py', readonly: true }],
	command: ['python3', '-u', '/app/a,b.py'],
	sandbox: loadConfig(env).sandbox,
});

const args = suite('docker run arguments');

const pairs = (list: string[]) => list.map((item, i) => `${item} ${list[i + 1] ?? ''}`);

args('the defaults confine the container', () => {
	const list = runArgs(spec(), ENV_FILE);
	const joined = pairs(list);
	for (const expected of [
		'--cap-drop ALL',
		'--security-opt no-new-privileges',
		'--user 2000000000:2000000000',
		'--pids-limit 128',
		'--memory 256m',
		'--memory-swap 256m',
		'--cpus 1',
		'--ulimit nofile=1024:1024',
		'--network lowcode-faas',
		'--log-driver json-file',
		'--publish 127.0.0.1:40000:8080/tcp',
	]) {
		assert.ok(joined.includes(expected), expected);
	}
	assert.ok(list.includes('--read-only') && list.includes('--init'));
	assert.ok(joined.some((p) => /^--tmpfs \/tmp:.*noexec.*size=64m.*nr_inodes=/.test(p)));
	assert.not.ok(list.join(' ').includes('docker.sock'), 'never the Docker socket');
	assert.equal(list.slice(-5), ['--', 'img', 'python3', '-u', '/app/a,b.py'], 'image and command come last, after the end of options');
});

args('the environment goes through the env file, never on the command line', () => {
	const list = runArgs(spec(), ENV_FILE);
	assert.ok(pairs(list).includes(`--env-file ${ENV_FILE}`));
	assert.not.ok(
		list.some((arg) => arg === '--env' || arg === '-e' || arg.startsWith('--env=')),
		'no --env',
	);
	assert.not.ok(list.join(' ').includes(MARKER), 'no value of the environment');
});

args('the env file holds one VAR=VALUE a line; what it cannot hold is refused', () => {
	assert.is(envFileText({ A: '1', B: 'x=y "z" \\ #', C: '' }), 'A=1\nB=x=y "z" \\ #\nC=\n');
	for (const env of <Record<string, string>[]>[{ A: 'a\nB=1' }, { A: 'a\r' }, { A: 'a\0' }, { 'A B': '1' }, { 'A=B': '1' }, { '#A': '1' }, { '': '1' }]) {
		assert.throws(() => envFileText(env), /env/, JSON.stringify(env));
	}
});

args('without a published port (the bridge address is used) no --publish is given', () => {
	const list = runArgs({ ...spec(), publish: null }, ENV_FILE);
	assert.not.ok(list.some((arg) => arg.startsWith('--publish') || arg === '-p'));
	assert.ok(pairs(list).includes('--network lowcode-faas'));
});

args('a path with a comma is quoted for --mount', () => {
	assert.ok(runArgs(spec(), ENV_FILE).includes('type=bind,"source=/data/functions/a,b.py","target=/app/a,b.py",readonly'));
});

args('each default can be loosened from the environment', () => {
	const list = runArgs(spec({ LOWCODE_FAAS_READ_ONLY: '0', LOWCODE_FAAS_MEMORY_MB: '1024', LOWCODE_FAAS_CPUS: '0.5', LOWCODE_FAAS_PIDS_LIMIT: '512', LOWCODE_FAAS_USER: '1000:1000' }), ENV_FILE);
	const joined = pairs(list);
	assert.not.ok(list.includes('--read-only'));
	for (const expected of ['--memory 1024m', '--cpus 0.5', '--pids-limit 512', '--user 1000:1000']) assert.ok(joined.includes(expected), expected);
});

args.run();
