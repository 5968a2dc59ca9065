import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOfFunction, deploy, eventually, fixture, invoke, orphans, request, spawnServer, startPlatform, uniqueName } from './helpers.js';

let platform: Platform;
const SECRET = 's3cr3t-value-that-must-not-leak';

const settings = suite('per-function settings');
settings.before(async () => {
	platform = await startPlatform();
});
settings.after.each(async () => {
	assert.equal(await orphans(platform), []);
});
settings.after(async () => {
	await platform.close();
});

/** The settings most tests here start from; max_replicas 2 is what the min_warm case below exceeds. */
const SETTINGS = { env: { GREETING: 'hello', TOKEN: SECRET }, timeout_ms: 7000, memory_mb: 128, cpus: 0.5, max_replicas: 2, min_warm: 0 };

/** A function of its own for each test: env.py with SETTINGS. */
async function envFunction() {
	const name = uniqueName('env');
	return { name, created: await deploy(platform, name, 'env.py', SETTINGS) };
}

settings('settings given at create are shown, env values only as names unless asked', async () => {
	const { name, created } = await envFunction();
	assert.equal(created.settings, { env: ['GREETING', 'TOKEN'], timeout_ms: 7000, memory_mb: 128, cpus: 0.5, max_replicas: 2, min_warm: 0 });
	assert.not.ok(JSON.stringify(created).includes(SECRET));
	assert.equal((await platform.request('GET', `/functions/${name}`)).body.settings.env, ['GREETING', 'TOKEN']);
	assert.equal((await platform.request('GET', `/functions/${name}?show_env=true`)).body.settings.env, { GREETING: 'hello', TOKEN: SECRET });
	assert.not.ok(JSON.stringify((await platform.request('GET', '/functions')).body).includes(SECRET));
});

settings('env reaches the function; memory and cpus reach its container', async () => {
	const { name } = await envFunction();
	const r = await invoke(platform, name, { input: ['GREETING', 'TOKEN', 'PORT'] });
	assert.is(r.status, 'success', r.error_message);
	assert.equal(r.output, { GREETING: 'hello', TOKEN: SECRET, PORT: '8080' });
	const [id] = await containersOfFunction(platform.config, name);
	const { stdout } = await execa('docker', ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}', id!]);
	assert.is(stdout.trim(), `${128 * 1024 * 1024} 500000000`);
});

settings('PATCH changes settings; the next invocation runs a new container with them', async () => {
	const { name } = await envFunction();
	assert.is((await invoke(platform, name, { input: ['GREETING'] })).output.GREETING, 'hello');
	const res = await platform.request('PATCH', `/functions/${name}`, { env: { GREETING: 'bonjour' }, memory_mb: null });
	assert.is(res.status, 200, JSON.stringify(res.body));
	assert.equal(res.body.settings, { env: ['GREETING'], timeout_ms: 7000, cpus: 0.5, max_replicas: 2, min_warm: 0 });
	const r = await invoke(platform, name, { input: ['GREETING', 'TOKEN'] });
	assert.equal(r.output, { GREETING: 'bonjour', TOKEN: null });
	assert.is(r.cold_start, true);
	await eventually(
		'the old container gone',
		() => containersOfFunction(platform.config, name),
		(ids) => ids.length === 1,
	);
});

settings('timeout_ms is the default deadline of the function', async () => {
	const name = uniqueName('slow');
	await deploy(platform, name, 'slow.py', { timeout_ms: 1500 });
	assert.is((await invoke(platform, name, { input: { seconds: 0 } })).status, 'success');
	const started = Date.now();
	const r = await invoke(platform, name, { input: { seconds: 5 } });
	assert.is(r.status, 'timeout');
	assert.match(r.error_message, /1500 ms/);
	assert.ok(Date.now() - started < 2_500);
	const longer = await invoke(platform, name, { input: { seconds: 2 }, timeout_ms: 10_000 });
	assert.is(longer.status, 'success', 'an explicit timeout_ms wins');
});

settings('bad settings are 400 with a clear code; PATCH of an unknown function is 404', async () => {
	const { name } = await envFunction();
	const cases: [unknown, string][] = [
		[{ env: { PORT: '1' } }, 'invalid_env'],
		[{ env: 'A=1' }, 'invalid_env'],
		[{ timeout_ms: 0 }, 'invalid_timeout_ms'],
		[{ memory_mb: 8 }, 'invalid_memory_mb'],
		[{ cpus: 0 }, 'invalid_cpus'],
		[{ max_replicas: 1.5 }, 'invalid_max_replicas'],
		// Over the operator's default caps (2048 MiB, the host's CPUs, LOWCODE_FAAS_MAX_REPLICAS=4).
		[{ memory_mb: 65536 }, 'invalid_memory_mb'],
		[{ cpus: 64 }, 'invalid_cpus'],
		[{ max_replicas: 1000 }, 'invalid_max_replicas'],
		[{ env: { A: 'two\nlines' } }, 'invalid_env'],
		[{ min_warm: -1 }, 'invalid_min_warm'],
		[{ min_warm: 5 }, 'invalid_min_warm'], // above this function's max_replicas of 2
		[{ source_code: 'x' }, 'unknown_field'],
	];
	for (const [body, code] of cases) {
		const res = await platform.request('PATCH', `/functions/${name}`, body);
		assert.is(res.status, 400, JSON.stringify(body));
		assert.is(res.body.error.code, code);
	}
	assert.is((await platform.request('PATCH', '/functions/ghost', { timeout_ms: 5 })).status, 404);
});

settings('min_warm keeps containers up without an invocation', async () => {
	const name = uniqueName('warmed');
	await deploy(platform, name, 'echo.py', { min_warm: 2 });
	await eventually(
		'two warm containers',
		() => containersOfFunction(platform.config, name),
		(list) => list.length === 2,
		12_000,
	);
	await platform.request('PATCH', `/functions/${name}`, { min_warm: null });
});

settings('a deleted function loses its settings; a new one of that name starts from the defaults', async () => {
	const { name } = await envFunction();
	assert.is((await platform.request('DELETE', `/functions/${name}`)).status, 204);
	const created = await deploy(platform, name, 'env.py');
	assert.equal(created.settings, {});
});

settings.run();

const secrecy = suite('settings: secrecy');

secrecy('environment values never appear in the platform log', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-secret-'));
	const { child, url } = await spawnServer(dataDir, { LOWCODE_FAAS_LOG_LEVEL: 'debug' });
	let logged = '';
	child.stdout!.on('data', (chunk: Buffer) => (logged += chunk.toString()));
	try {
		await request(url, 'POST', '/functions', { name: 'env', language: 'python', source_code: await fixture('env.py'), env: { TOKEN: SECRET } });
		const r = (await request(url, 'POST', '/functions/env/invoke', { input: ['TOKEN'] })).body;
		assert.is(r.output.TOKEN, SECRET);
		await request(url, 'PATCH', '/functions/env', { env: { TOKEN: `${SECRET}-2` }, memory_mb: 99999999 });
		await request(url, 'POST', '/functions/env/invoke', { input: ['TOKEN'] });
	} finally {
		child.kill('SIGTERM');
		await child;
		await rm(dataDir, { recursive: true, force: true });
	}
	assert.ok(logged.includes('container started'), 'the log was captured');
	assert.not.ok(logged.includes(SECRET), 'no value of the function environment in the log');
});

secrecy.run();
