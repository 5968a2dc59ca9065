import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOfFunction, fixture, orphans, startPlatform } from './helpers.js';

const MiB = 1024 * 1024;
let platform: Platform;

const caps = suite('caps: the operator bounds every per-function setting');
caps.before(async () => {
	// Settings written by hand, or before the caps were lowered: far over every cap.
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-caps-'));
	await mkdir(join(dataDir, 'settings'), { recursive: true });
	await writeFile(join(dataDir, 'settings', 'big.json'), JSON.stringify({ memory_mb: 65536, cpus: 64, max_replicas: 1000, timeout_ms: 1e9 }));
	platform = await startPlatform(
		{ LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_MAX_MEMORY_MB: '96', LOWCODE_FAAS_MEMORY_MB: '64', LOWCODE_FAAS_MAX_CPUS: '0.5', LOWCODE_FAAS_CPUS: '0.25', LOWCODE_FAAS_MAX_REPLICAS: '4', LOWCODE_FAAS_MAX_CONTAINERS: '3' },
		{ 'big.py': await fixture('limits.py') },
	);
});
caps.after.each(async () => {
	assert.equal(await orphans(platform), []);
});
caps.after(async () => {
	await platform.close();
});

caps('a setting over its cap is 400 naming the cap and its variable', async () => {
	const source = await fixture('echo.py');
	const cases: [Record<string, unknown>, string, RegExp][] = [
		[{ memory_mb: 97 }, 'invalid_memory_mb', /96.*LOWCODE_FAAS_MAX_MEMORY_MB/],
		[{ memory_mb: 65536 }, 'invalid_memory_mb', /96.*LOWCODE_FAAS_MAX_MEMORY_MB/],
		[{ cpus: 0.51 }, 'invalid_cpus', /0\.5.*LOWCODE_FAAS_MAX_CPUS/],
		[{ cpus: 64 }, 'invalid_cpus', /0\.5.*LOWCODE_FAAS_MAX_CPUS/],
		[{ max_replicas: 5 }, 'invalid_max_replicas', /4.*LOWCODE_FAAS_MAX_REPLICAS/],
		[{ max_replicas: 1000 }, 'invalid_max_replicas', /4.*LOWCODE_FAAS_MAX_REPLICAS/],
		[{ min_warm: 4, max_replicas: 4 }, 'invalid_min_warm', /3.*LOWCODE_FAAS_MAX_CONTAINERS/],
	];
	for (const [settings, code, message] of cases) {
		const created = await platform.request('POST', '/functions', { name: 'capped', language: 'python', source_code: source, ...settings });
		assert.is(created.status, 400, JSON.stringify(settings));
		assert.is(created.body.error.code, code);
		assert.match(created.body.error.message, message);
	}
	const atCaps = await platform.request('POST', '/functions', { name: 'capped', language: 'python', source_code: source, memory_mb: 96, cpus: 0.5, max_replicas: 4, min_warm: 0 });
	assert.is(atCaps.status, 201, JSON.stringify(atCaps.body));
	for (const [settings, code] of cases) {
		const patched = await platform.request('PATCH', '/functions/capped', settings);
		assert.is(patched.status, 400, JSON.stringify(settings));
		assert.is(patched.body.error.code, code);
	}
	await platform.request('DELETE', '/functions/capped');
});

caps('settings on disk over the caps are clamped before they reach docker', async () => {
	assert.equal((await platform.request('GET', '/functions/big')).body.settings, { memory_mb: 96, cpus: 0.5, max_replicas: 4, timeout_ms: 300_000 });
	const r = (await platform.request('POST', '/functions/big/invoke', {})).body;
	assert.is(r.status, 'success', r.error_message);
	assert.equal(r.output, { memory: 96 * MiB, cpus: 0.5 }, 'the limits inside the container');
	const [id] = await containersOfFunction(platform.config, 'big');
	const { stdout } = await execa('docker', ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}', id!]);
	assert.is(stdout.trim(), `${96 * MiB} 500000000`);
});

caps.run();
