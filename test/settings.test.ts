import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOfFunction, eventually, fixture, orphans, request, spawnServer, startPlatform } from './helpers.js';

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

settings('settings given at create are shown, env values only as names unless asked', async () => {
	const res = await platform.request('POST', '/functions', { name: 'env', language: 'python', source_code: await fixture('env.py'), env: { GREETING: 'hello', TOKEN: SECRET }, timeout_ms: 7000, memory_mb: 128, cpus: 0.5, max_replicas: 2, min_warm: 0 });
	assert.is(res.status, 201, JSON.stringify(res.body));
	assert.equal(res.body.settings, { env: ['GREETING', 'TOKEN'], timeout_ms: 7000, memory_mb: 128, cpus: 0.5, max_replicas: 2, min_warm: 0 });
	assert.not.ok(JSON.stringify(res.body).includes(SECRET));
	assert.equal((await platform.request('GET', '/functions/env')).body.settings.env, ['GREETING', 'TOKEN']);
	assert.equal((await platform.request('GET', '/functions/env?show_env=true')).body.settings.env, { GREETING: 'hello', TOKEN: SECRET });
	assert.not.ok(JSON.stringify((await platform.request('GET', '/functions')).body).includes(SECRET));
});

settings('env reaches the function; memory and cpus reach its container', async () => {
	const r = (await platform.request('POST', '/functions/env/invoke', { input: ['GREETING', 'TOKEN', 'PORT'] })).body;
	assert.is(r.status, 'success', r.error_message);
	assert.equal(r.output, { GREETING: 'hello', TOKEN: SECRET, PORT: '8080' });
	const [id] = await containersOfFunction(platform.config, 'env');
	const { stdout } = await execa('docker', ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}', id!]);
	assert.is(stdout.trim(), `${128 * 1024 * 1024} 500000000`);
});

settings('PATCH changes settings; the next invocation runs a new container with them', async () => {
	const res = await platform.request('PATCH', '/functions/env', { env: { GREETING: 'bonjour' }, memory_mb: null });
	assert.is(res.status, 200, JSON.stringify(res.body));
	assert.equal(res.body.settings, { env: ['GREETING'], timeout_ms: 7000, cpus: 0.5, max_replicas: 2, min_warm: 0 });
	const r = (await platform.request('POST', '/functions/env/invoke', { input: ['GREETING', 'TOKEN'] })).body;
	assert.equal(r.output, { GREETING: 'bonjour', TOKEN: null });
	assert.is(r.cold_start, true);
	await eventually('the old container gone', () => containersOfFunction(platform.config, 'env'), (ids) => ids.length === 1);
});

settings('timeout_ms is the default deadline of the function', async () => {
	await platform.request('POST', '/functions', { name: 'slow', language: 'python', source_code: await fixture('slow.py'), timeout_ms: 1500 });
	assert.is((await platform.request('POST', '/functions/slow/invoke', { input: { seconds: 0 } })).body.status, 'success');
	const started = Date.now();
	const r = (await platform.request('POST', '/functions/slow/invoke', { input: { seconds: 5 } })).body;
	assert.is(r.status, 'timeout');
	assert.match(r.error_message, /1500 ms/);
	assert.ok(Date.now() - started < 2_500);
	const longer = (await platform.request('POST', '/functions/slow/invoke', { input: { seconds: 2 }, timeout_ms: 10_000 })).body;
	assert.is(longer.status, 'success', 'an explicit timeout_ms wins');
});

settings('bad settings are 400 with a clear code; PATCH of an unknown function is 404', async () => {
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
		const res = await platform.request('PATCH', '/functions/env', body);
		assert.is(res.status, 400, JSON.stringify(body));
		assert.is(res.body.error.code, code);
	}
	assert.is((await platform.request('PATCH', '/functions/ghost', { timeout_ms: 5 })).status, 404);
});

settings('min_warm keeps containers up without an invocation', async () => {
	await platform.request('POST', '/functions', { name: 'warmed', language: 'python', source_code: await fixture('echo.py'), min_warm: 2 });
	await eventually('two warm containers', () => containersOfFunction(platform.config, 'warmed'), (list) => list.length === 2, 12_000);
	await platform.request('PATCH', '/functions/warmed', { min_warm: null });
});

settings('a deleted function loses its settings; a new one of that name starts from the defaults', async () => {
	await platform.request('DELETE', '/functions/env');
	const res = await platform.request('POST', '/functions', { name: 'env', language: 'python', source_code: await fixture('env.py') });
	assert.equal(res.body.settings, {});
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
