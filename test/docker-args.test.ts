import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { runArgs } from '../src/docker.js';

const spec = (env: Record<string, string> = {}) => ({
	name: 'lcf-x',
	image: 'img',
	labels: { 'lowcode-faas': 'function' },
	env: { PORT: '8080' },
	publish: { host: '127.0.0.1', hostPort: 40000, containerPort: 8080 },
	mounts: [{ source: '/data/functions/a,b.py', target: '/app/a,b.py', readonly: true }],
	command: ['python3', '-u', '/app/a,b.py'],
	sandbox: loadConfig(env).sandbox,
});

const args = suite('docker run arguments');

const pairs = (list: string[]) => list.map((item, i) => `${item} ${list[i + 1] ?? ''}`);

args('the defaults confine the container', () => {
	const list = runArgs(spec());
	const joined = pairs(list);
	for (const expected of ['--cap-drop ALL', '--security-opt no-new-privileges', '--user 65534:65534', '--pids-limit 128', '--memory 256m', '--memory-swap 256m', '--cpus 1', '--ulimit nofile=1024:1024', '--network lowcode-faas', '--log-driver json-file', '--publish 127.0.0.1:40000:8080/tcp']) {
		assert.ok(joined.includes(expected), expected);
	}
	assert.ok(list.includes('--read-only') && list.includes('--init'));
	assert.ok(joined.some((p) => /^--tmpfs \/tmp:.*noexec.*size=64m.*nr_inodes=/.test(p)));
	assert.not.ok(list.join(' ').includes('docker.sock'), 'never the Docker socket');
	assert.equal(list.slice(-4), ['img', 'python3', '-u', '/app/a,b.py'], 'image and command come last');
});

args('without a published port (the bridge address is used) no --publish is given', () => {
	const list = runArgs({ ...spec(), publish: null });
	assert.not.ok(list.some((arg) => arg.startsWith('--publish') || arg === '-p'));
	assert.ok(pairs(list).includes('--network lowcode-faas'));
});

args('a path with a comma is quoted for --mount', () => {
	assert.ok(runArgs(spec()).includes('type=bind,"source=/data/functions/a,b.py","target=/app/a,b.py",readonly'));
});

args('each default can be loosened from the environment', () => {
	const list = runArgs(spec({ LOWCODE_FAAS_READ_ONLY: '0', LOWCODE_FAAS_MEMORY_MB: '1024', LOWCODE_FAAS_CPUS: '0.5', LOWCODE_FAAS_PIDS_LIMIT: '512', LOWCODE_FAAS_USER: '1000:1000' }));
	const joined = pairs(list);
	assert.not.ok(list.includes('--read-only'));
	for (const expected of ['--memory 1024m', '--cpus 0.5', '--pids-limit 512', '--user 1000:1000']) assert.ok(joined.includes(expected), expected);
});

args.run();
