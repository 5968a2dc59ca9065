import { copyFile, mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, type Platform, spawnServer, startPlatform } from './helpers.js';

const TOKEN = 'cli-test-token-0123456789';
let platform: Platform;
let work: string;

const cli = (args: string[], input?: string) => execa('node', ['dist/src/cli.js', ...args], { reject: false, input, env: { LOWCODE_FAAS_URL: platform.app.url, LOWCODE_FAAS_TOKEN: TOKEN } });

const suiteCli = suite('the lowcode-faas command');
suiteCli.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_TOKEN: TOKEN });
	work = await mkdtemp(join(tmpdir(), 'lowcode-faas-cli-'));
	await copyFile(join(FIXTURES, 'env.py'), join(work, 'hello.py'));
	await copyFile(join(FIXTURES, 'crash.py'), join(work, 'crash.py'));
	await copyFile(join(FIXTURES, 'echo.py'), join(work, 'notes.txt'));
});
suiteCli.after(async () => {
	await rm(work, { recursive: true, force: true });
	await platform.close();
});

suiteCli('deploy, list, invoke (inline and from stdin), logs, runs, rm', async () => {
	const deployed = await cli(['deploy', join(work, 'hello.py'), '--env', 'GREETING=hi there', '--env', 'EMPTY=']);
	assert.is(deployed.exitCode, 0, deployed.stderr);
	assert.match(deployed.stdout, /^deployed hello \(python, id [0-9a-f-]{36}\)$/);
	assert.is((await cli(['deploy', join(work, 'crash.py'), '--name', 'boom'])).exitCode, 0);
	const list = await cli(['list']);
	assert.is(list.exitCode, 0);
	assert.match(list.stdout, /^boom\tpython\t.*\nhello\tpython\t/);
	const inline = await cli(['invoke', 'hello', '--input', '["GREETING", "EMPTY"]']);
	assert.is(inline.exitCode, 0, inline.stderr);
	assert.equal(JSON.parse(inline.stdout).output, { GREETING: 'hi there', EMPTY: '' });
	const piped = await cli(['invoke', 'hello', '--input', '-'], '["GREETING"]');
	assert.equal(JSON.parse(piped.stdout).output, { GREETING: 'hi there' });
	const logs = await cli(['logs', 'hello', '--tail', '5']);
	assert.is(logs.exitCode, 0);
	assert.match(logs.stdout, /==> lcf-/);
	const runs = await cli(['runs', 'hello']);
	assert.is(runs.exitCode, 0);
	assert.is(runs.stdout.trim().split('\n').length, 2, runs.stdout);
	assert.match(runs.stdout, /\tsuccess\t\d+ ms\t/);
	assert.is((await cli(['rm', 'hello'])).exitCode, 0);
	const gone = await cli(['invoke', 'hello']);
	assert.is(gone.exitCode, 1);
	assert.match(gone.stderr, /404/);
});

// Raw terminal controls: C0 but \n and \t, DEL, C1, and the bidi overrides.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

suiteCli('what a function printed or answered reaches the terminal with its control characters neutralised', async () => {
	await copyFile(join(FIXTURES, 'escapes.py'), join(work, 'escapes.py'));
	assert.is((await cli(['deploy', join(work, 'escapes.py')])).exitCode, 0);
	const invoked = await cli(['invoke', 'escapes']);
	assert.is(invoked.exitCode, 0, invoked.stderr);
	assert.not.match(invoked.stdout, CONTROLS, JSON.stringify(invoked.stdout));
	// Still JSON, and the same value once parsed.
	assert.ok(JSON.parse(invoked.stdout).output.said.startsWith('\x1b]0;pwned-title\x07'));
	const logs = await cli(['logs', 'escapes']);
	assert.is(logs.exitCode, 0, logs.stderr);
	assert.match(logs.stdout, /before /, logs.stdout);
	assert.not.match(logs.stdout, CONTROLS, JSON.stringify(logs.stdout));
	assert.ok(logs.stdout.includes('before \\u001b]0;pwned-title\\u0007\\u001b[2J'), JSON.stringify(logs.stdout));
	assert.ok(logs.stdout.includes('\\u009b31mc1'), 'C1 controls too');
	await cli(['rm', 'escapes']);
});

suiteCli('deploy refuses a file over 1 MiB, or one that is not a file, without reading it', async () => {
	await writeFile(join(work, 'big.py'), '');
	await truncate(join(work, 'big.py'), 1024 * 1024 * 1024);
	await mkdir(join(work, 'folder.py'));
	for (const file of ['big.py', 'folder.py']) {
		const res = await cli(['deploy', join(work, file)]);
		assert.is(res.exitCode, 2, res.stderr);
		assert.match(res.stderr, /1 MiB|not a file/);
	}
});

suiteCli('a failed or timed-out function exits 1', async () => {
	const failed = await cli(['invoke', 'boom']);
	assert.is(failed.exitCode, 1);
	assert.is(JSON.parse(failed.stdout).status, 'failed');
});

suiteCli('usage errors exit 2; --help exits 0', async () => {
	for (const args of [
		['frobnicate'],
		['deploy'],
		['deploy', join(work, 'notes.txt')],
		['invoke', 'x', '--input', '{bad'],
		['invoke', 'x', '--nope'],
		['invoke'],
		['list', 'extra'],
		['deploy', join(work, 'hello.py'), '--env', 'NOEQUALS'],
		['invoke', 'x', '--timeout', '0'],
		['runs', 'x', '--limit', '5000'],
	]) {
		const res = await cli(args);
		assert.is(res.exitCode, 2, `${args.join(' ')}: ${res.stderr}`);
		assert.match(res.stderr, /Usage: lowcode-faas/);
	}
	for (const args of [['--help'], ['deploy', '--help'], ['invoke', '--help'], ['list', '--help'], ['logs', '--help'], ['rm', '--help'], ['runs', '--help'], ['serve', '--help']]) {
		const res = await cli(args);
		assert.is(res.exitCode, 0, args.join(' '));
		assert.match(res.stdout, /^Usage: lowcode-faas/);
	}
});

suiteCli('without the token, or without a server, it says so and exits 1', async () => {
	const denied = await execa('node', ['dist/src/cli.js', 'list'], { reject: false, env: { LOWCODE_FAAS_URL: platform.app.url, LOWCODE_FAAS_TOKEN: '' } });
	assert.is(denied.exitCode, 1);
	assert.match(denied.stderr, /401/);
	const away = await execa('node', ['dist/src/cli.js', 'list'], { reject: false, env: { LOWCODE_FAAS_URL: 'http://127.0.0.1:9', LOWCODE_FAAS_TOKEN: TOKEN } });
	assert.is(away.exitCode, 1);
	assert.match(away.stderr, /cannot reach lowcode-faas/);
});

suiteCli('list follows the pages: more than the 1000 functions of one response', async () => {
	for (let i = 0; i < 1001; i++) await writeFile(join(platform.dataDir, 'functions', `many${String(i).padStart(4, '0')}.py`), 'print(1)\n');
	const res = await cli(['list']);
	assert.is(res.exitCode, 0, res.stderr);
	const names = res.stdout
		.split('\n')
		.map((line) => line.split('\t')[0]!)
		.filter((name) => name.startsWith('many'));
	assert.is(names.length, 1001);
	assert.is(new Set(names).size, 1001, 'no function twice');
});

suiteCli('with no command it runs the server', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-serve-'));
	const { child, url } = await spawnServer(dataDir, {}, 'dist/src/cli.js');
	try {
		assert.is((await fetch(`${url}/healthz`)).status, 200);
	} finally {
		child.kill('SIGTERM');
		assert.is((await child).exitCode, 0);
		await rm(dataDir, { recursive: true, force: true });
	}
});

suiteCli.run();
