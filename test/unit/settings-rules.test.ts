import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { ApiError } from '../../src/errors.js';
import { createSettingsFiles, mergeSettings, timeoutFor, warmTargets } from '../../src/settings.js';

// The rules of src/settings.ts on their own: no server, no Docker.

async function rejects(promise: Promise<unknown>) {
	const outcome = await promise.then(
		() => 'resolved',
		() => 'rejected',
	);
	assert.is(outcome, 'rejected');
}

const warm = suite('settings.warmTargets');

warm('min_warm alone: the functions that asked, with their count', () => {
	const targets = warmTargets(
		[
			['a', { min_warm: 2 }],
			['b', {}],
			['c', { min_warm: 0 }],
		],
		[],
		['a', 'b', 'c'],
	);
	assert.equal([...targets], [['a', 2]]);
});

warm('a prewarm list keeps each named function at least one warm, and never lowers min_warm', () => {
	const targets = warmTargets([['a', { min_warm: 3 }]], ['a', 'b'], []);
	assert.equal(Object.fromEntries(targets), { a: 3, b: 1 });
});

warm('prewarm all: every function named, min_warm kept above one', () => {
	const targets = warmTargets([['a', { min_warm: 2 }]], 'all', ['a', 'b', 'c']);
	assert.equal(Object.fromEntries(targets), { a: 2, b: 1, c: 1 });
});

warm.run();

const timeout = suite('settings.timeoutFor');

timeout('the request, else the function, else the default; never past the maximum', () => {
	assert.is(timeoutFor({}), 5_000);
	assert.is(timeoutFor({ timeout_ms: 7000 }), 7000);
	assert.is(timeoutFor({ timeout_ms: 7000 }, 100), 100);
	assert.is(timeoutFor({}, 100), 100);
	assert.is(timeoutFor({}, 10_000_000), 300_000);
	assert.is(timeoutFor({ timeout_ms: 10_000_000 }), 300_000);
});

timeout.run();

const merge = suite('settings.mergeSettings');

merge('null resets a field, undefined leaves it, a value sets it', () => {
	assert.equal(mergeSettings({ timeout_ms: 7000, cpus: 1 }, { timeout_ms: null, cpus: undefined, memory_mb: 128 }, 4), { cpus: 1, memory_mb: 128 });
});

merge('min_warm is checked against the resulting max_replicas, else the platform cap', () => {
	assert.equal(mergeSettings({ max_replicas: 3 }, { min_warm: 3 }, 1), { max_replicas: 3, min_warm: 3 });
	for (const [current, patch, cap] of [
		[{ max_replicas: 2 }, { min_warm: 3 }, 4],
		[{}, { min_warm: 5 }, 4],
		[{ min_warm: 2 }, { max_replicas: 1 }, 4],
	] as const) {
		try {
			mergeSettings(current, patch, cap);
			assert.unreachable(JSON.stringify({ current, patch, cap }));
		} catch (err) {
			assert.instance(err, ApiError);
			assert.is((err as ApiError).code, 'invalid_min_warm');
		}
	}
});

merge.run();

const files = suite('settings files');
let dataDir = '';
files.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lcf-settings-'));
});
files.after.each(async () => {
	await rm(dataDir, { recursive: true, force: true });
});

files('a write is read back by a fresh reader, private, and its stamp changes with it', async () => {
	const config = loadConfig({ LOWCODE_FAAS_DATA: dataDir });
	const settings = createSettingsFiles(config);
	await settings.init();
	const before = await settings.read('f');
	assert.equal(before.settings, {});
	assert.equal(await settings.write('f', { timeout_ms: 7000, env: { A: '1' } }), { timeout_ms: 7000, env: { A: '1' } });
	const after = settings.cached('f')!;
	assert.is.not(after.stamp, before.stamp);
	assert.is((await stat(join(dataDir, 'settings', 'f.json'))).mode & 0o777, 0o600);
	const again = createSettingsFiles(config);
	await again.init();
	assert.equal(again.cached('f'), after, 'read at init, same stamp');
	assert.equal([...again.entries()], [['f', { timeout_ms: 7000, env: { A: '1' } }]]);
	await again.drop('f');
	assert.is(again.cached('f'), undefined);
	await rejects(readFile(join(dataDir, 'settings', 'f.json')));
});

files('a hand-edited file is bounded to the caps; a broken one means defaults', async () => {
	const config = loadConfig({ LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_MAX_MEMORY_MB: '512' });
	const settings = createSettingsFiles(config);
	await settings.init();
	await writeFile(join(dataDir, 'settings', 'big.json'), JSON.stringify({ memory_mb: 4096, timeout_ms: 1e9, unknown: 1 }));
	await writeFile(join(dataDir, 'settings', 'broken.json'), '{not json');
	assert.equal((await settings.read('big')).settings, { memory_mb: 512, timeout_ms: 300_000 });
	assert.equal((await settings.read('broken')).settings, {});
});

files('a write that clashes is refused and writes nothing', async () => {
	const settings = createSettingsFiles(loadConfig({ LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_MAX_REPLICAS: '2' }));
	await settings.init();
	await rejects(settings.write('f', { min_warm: 3 }));
	await rejects(readFile(join(dataDir, 'settings', 'f.json')));
	assert.equal(await settings.write('f', { min_warm: 2 }), { min_warm: 2 });
});

files.run();
