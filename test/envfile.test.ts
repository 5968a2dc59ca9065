import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOfFunction, deploy, fixture, orphans, startPlatform } from './helpers.js';

const ENV_TOTAL = 1024 * 1024;
const MARKER = `marker-${randomBytes(8).toString('hex')}`;
const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const filler = (bytes: number) =>
	randomBytes(Math.ceil(bytes / 2))
		.toString('hex')
		.slice(0, bytes);

/** 64 variables, two of the largest size, filling exactly the largest total (names and values). */
function largestEnv(): Record<string, string> {
	const env: Record<string, string> = { V00: filler(32 * 1024), V01: filler(32 * 1024) };
	let left = ENV_TOTAL - 2 * (3 + 32 * 1024);
	for (let i = 2; i < 64; i++) {
		const size = Math.floor(left / (64 - i)) - 3;
		env[`V${String(i).padStart(2, '0')}`] = filler(size);
		left -= 3 + size;
	}
	return env;
}

let platform: Platform;

const envFile = suite('env: through a private file, never the command line');
envFile.before(async () => {
	// Leftovers of a crash, in a folder that is not private yet: both put right at start.
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-envfile-'));
	await mkdir(join(dataDir, '.run'), { mode: 0o755 });
	await writeFile(join(dataDir, '.run', 'lcf-old.env'), `TOKEN=${MARKER}\n`);
	await mkdir(join(dataDir, 'settings'));
	await writeFile(join(dataDir, 'settings', 'broken.json'), JSON.stringify({ env: { GOOD: 'yes', BAD: 'line one\nINJECTED=1' } }));
	// The env file is the classic path's: stem cells (whose env goes by their handoff) would start around it.
	platform = await startPlatform({ LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_STEM_CELLS: '0' }, { 'broken.py': await fixture('env.py') });
});
envFile.after.each(async () => {
	assert.equal(await orphans(platform), []);
});
envFile.after(async () => {
	await platform.close();
});

envFile('the run folder is private and emptied at start', async () => {
	const run = join(platform.dataDir, '.run');
	assert.is((await stat(run)).mode & 0o777, 0o700);
	assert.equal(await readdir(run), []);
});

envFile('the largest environment validation allows reaches the function whole', async () => {
	const env = largestEnv();
	assert.is(
		Object.entries(env).reduce((sum, [k, v]) => sum + k.length + v.length, 0),
		ENV_TOTAL,
	);
	const res = await platform.request('POST', '/functions', { name: 'big', language: 'python', source_code: await fixture('env.py'), env });
	assert.is(res.status, 201, JSON.stringify(res.body).slice(0, 300));
	const r = (await platform.request('POST', '/functions/big/invoke', { input: ['V00', 'V01', 'V37', 'V63'] })).body;
	assert.is(r.status, 'success', r.error_message);
	for (const key of ['V00', 'V01', 'V37', 'V63']) {
		assert.is(r.output[key]?.length, env[key]!.length, key);
		assert.is(sha(r.output[key] ?? ''), sha(env[key]!), key);
	}
	const over = await platform.request('PATCH', '/functions/big', { env: { ...env, V63: env.V63 + 'x' } });
	assert.is(over.status, 400);
	assert.is(over.body.error.code, 'invalid_env');
	assert.match(over.body.error.message, /1 MiB/);
	await platform.request('DELETE', '/functions/big');
});

envFile('a value with a line break is refused: the env file holds one variable a line', async () => {
	for (const value of ['a\nB=1', 'a\r\nb', 'trailing\r']) {
		const created = await platform.request('POST', '/functions', { name: 'nl', language: 'python', source_code: await fixture('env.py'), env: { A: value } });
		assert.is(created.status, 400, JSON.stringify(value));
		assert.is(created.body.error.code, 'invalid_env');
		assert.match(created.body.error.message, /line break/);
	}
});

envFile('stored settings the env file cannot hold fail that start, clearly', async () => {
	const r = (await platform.request('POST', '/functions/broken/invoke', { input: ['GOOD', 'INJECTED'] })).body;
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /env BAD.*line break/);
	assert.equal(await containersOfFunction(platform.config, 'broken'), []);
});

envFile('during docker run no command line holds a value; the env file is gone once it ran', async () => {
	await deploy(platform, 'marked', 'env.py', { env: { MARK: MARKER } });
	let watching = true;
	let runs = 0;
	const leaks: string[] = [];
	const watcher = (async () => {
		while (watching) {
			const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
			await Promise.all(
				pids.map(async (pid) => {
					const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
					if (cmdline.includes(MARKER)) leaks.push(cmdline.slice(0, 200));
					if (/docker run .*lowcode-faas\.instance=/.test(cmdline) && cmdline.includes(platform.config.instance)) runs++;
				}),
			);
		}
	})();
	try {
		const r = (await platform.request('POST', '/functions/marked/invoke', { input: ['MARK'] })).body;
		assert.is(r.output?.MARK, MARKER, r.error_message);
	} finally {
		watching = false;
		await watcher;
	}
	assert.ok(runs > 0, 'the watcher saw docker run');
	assert.equal(leaks, []);
	assert.equal(await readdir(join(platform.dataDir, '.run')), []);
	const [id] = await containersOfFunction(platform.config, 'marked');
	const { stdout } = await execa('docker', ['inspect', '--format', '{{json .Path}} {{json .Args}} {{json .Config.Cmd}}', '--', id!]);
	assert.not.ok(stdout.includes(MARKER));
});

envFile.run();
