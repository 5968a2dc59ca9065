import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { type Platform, allContainersOf, apiAt, containersOfFunction, deploy, eventually, invoke, orphans, spawnServer, startPlatform, stemCellsOf, uniqueName } from './helpers.js';

/** A sample's value in the /metrics text; 0 when it is absent. */
async function metric(platform: Platform, sample: string): Promise<number> {
	const text = (await platform.request('GET', '/metrics')).body as string;
	const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
	return line ? Number(line.slice(sample.length + 1)) : 0;
}

const stemStarts = (platform: Platform) => metric(platform, 'lowcode_faas_instance_starts_total{path="stem"}');
const classicStarts = (platform: Platform) => metric(platform, 'lowcode_faas_instance_starts_total{path="classic"}');

/** Waits until each language has `count` stem cells ready, by /readyz. */
function readyCells(platform: Pick<Platform, 'request'>, count: number) {
	return eventually(
		`${count} stem cells ready per language`,
		async () => (await platform.request('GET', '/readyz')).body,
		(body) => body.stem_cells?.python === count && body.stem_cells?.deno === count,
		20_000,
	);
}

/** The docker label of the container serving `fn`: which stem language it was started as ('' if none). */
async function stemLabelOf(platform: Platform, fn: string): Promise<string> {
	const [id] = await containersOfFunction(platform.config, fn);
	assert.ok(id, `${fn} has a container`);
	const { stdout } = await execa('docker', ['inspect', '--format', '{{index .Config.Labels "lowcode-faas.stem"}}', '--', id!]);
	return stdout.trim();
}

const stem = suite('stem cells: a cold start claims a pre-started runtime container');
let platform: Platform;
stem.before(async () => {
	platform = await startPlatform();
	await readyCells(platform, 2);
});
stem.after(async () => {
	assert.equal(await orphans(platform), [], 'no container the platform does not know');
	await platform.close();
});

stem('the first invocation is served by a stem cell, and the pool refills', async () => {
	const fn = uniqueName('marker');
	await deploy(platform, fn, 'marker.py', { env: { SECRET: 'alpha' } });
	const before = await stemStarts(platform);
	const r = await invoke(platform, fn, {});
	assert.is(r.status, 'success', r.error_message);
	assert.is(r.cold_start, true);
	assert.is(await stemStarts(platform), before + 1, 'counted as a stem start');
	assert.is(await classicStarts(platform), 0, 'no classic start');
	assert.is(await stemLabelOf(platform, fn), 'python', 'the container was a stem cell');
	// Run as a script would be: __main__, its own file name, argv[0].
	assert.equal([r.output.main, r.output.file, r.output.argv0], ['__main__', `/app/${fn}.py`, `/app/${fn}.py`]);
	await readyCells(platform, 2);
	const again = await invoke(platform, fn, {});
	assert.is(again.cold_start, false, 'then it is warm like any instance');
});

stem("env and PORT are the function's; the stem cell's key is not visible", async () => {
	const fn = uniqueName('marker');
	await deploy(platform, fn, 'marker.py', { env: { SECRET: 'bravo' } });
	const r = await invoke(platform, fn, {});
	assert.is(r.status, 'success', r.error_message);
	assert.equal([r.output.secret, r.output.port, r.output.key], ['bravo', '8080', null]);
	const ts = uniqueName('marker-ts');
	await deploy(platform, ts, 'marker.ts', { env: { SECRET: 'charlie' } });
	const d = await invoke(platform, ts, {});
	assert.is(d.status, 'success', d.error_message);
	assert.is(d.cold_start, true);
	assert.equal(d.output, { secret: 'charlie', port: '8080', key: null });
	assert.is(await stemLabelOf(platform, ts), 'deno', 'a Deno stem cell served it');
	const logs = await eventually(
		`${ts}'s logs`,
		async () => (await platform.request('GET', `/functions/${ts}/logs`)).body,
		(text) => String(text).includes('marker.ts loading'),
	);
	assert.ok(String(logs).includes('marker.ts loading'), 'what the function prints reaches its logs');
});

stem('a Deno module that serves only as the main module takes the classic path, and serves', async () => {
	const fn = uniqueName('main-only');
	await deploy(platform, fn, 'main_only.ts');
	const r = await invoke(platform, fn, {});
	assert.is(r.status, 'success', r.error_message);
	assert.equal(r.output, { main: true });
	assert.is(await stemLabelOf(platform, fn), '', 'a container of its own');
});

stem('two functions never share a container: no file, no env of one is seen by the next', async () => {
	const first = uniqueName('marker');
	const second = uniqueName('marker');
	await deploy(platform, first, 'marker.py', { env: { SECRET: 'delta' } });
	await deploy(platform, second, 'marker.py', { env: { SECRET: 'echo' } });
	await readyCells(platform, 2);
	const a = await invoke(platform, first, {});
	const b = await invoke(platform, second, {});
	assert.is(a.status, 'success', a.error_message);
	assert.is(b.status, 'success', b.error_message);
	assert.is(b.output.secret, 'echo');
	assert.not.ok(
		b.output.tmp_at_start.some((f: string) => f.startsWith('marker-')),
		`the second sees no marker: ${b.output.tmp_at_start}`,
	);
	assert.is.not(a.output.host, b.output.host, 'two containers');
	assert.is(await stemLabelOf(platform, first), 'python');
	assert.is(await stemLabelOf(platform, second), 'python');
});

stem('a function that fails at import fails fast, with its message', async () => {
	const fn = uniqueName('import-error');
	await deploy(platform, fn, 'import_error.py');
	const started = Date.now();
	const r = await invoke(platform, fn, { timeout_ms: 20_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /exited with code 1/);
	assert.match(r.error_message, /boom at import/);
	assert.match(r.error_message, /starting up/);
	assert.not.match(r.error_message, /loader/, 'the loader is not in the traceback');
	assert.ok(Date.now() - started < 3_000, `it failed in ${Date.now() - started} ms`);
	const exit = uniqueName('crash');
	await deploy(platform, exit, 'crash.py');
	const c = await invoke(platform, exit, { timeout_ms: 20_000 });
	assert.match(c.error_message, /exited with code 3/);
	assert.match(c.error_message, /the model file is missing/);
});

stem("a function's own memory and CPU limits take effect in the claimed container", async () => {
	const fn = uniqueName('limits');
	await deploy(platform, fn, 'limits.py', { memory_mb: 96, cpus: 0.5 });
	await readyCells(platform, 2);
	const before = await stemStarts(platform);
	const r = await invoke(platform, fn, {});
	assert.is(r.status, 'success', r.error_message);
	assert.equal(r.output, { memory: 96 * 1024 * 1024, cpus: 0.5 }, 'the limits read inside the container');
	assert.is(await stemStarts(platform), before + 1, 'a stem cell served it');
});

stem.run();

const off = suite('LOWCODE_FAAS_STEM_CELLS=0: no stem cell, the classic path');
off('no stem container ever exists, and invocations start containers the classic way', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_STEM_CELLS: '0' });
	try {
		const fn = uniqueName('marker');
		await deploy(p, fn, 'marker.py');
		const r = await invoke(p, fn, {});
		assert.is(r.status, 'success', r.error_message);
		assert.is(r.cold_start, true);
		assert.equal(await stemCellsOf(p.config), []);
		assert.is(await stemLabelOf(p, fn), '', 'a container of its own');
		assert.equal((await p.request('GET', '/readyz')).body, { status: 'ready' });
		assert.not.ok(String((await p.request('GET', '/metrics')).body).includes('instance_starts_total'));
	} finally {
		await p.close();
	}
});
off.run();

const cap = suite('stem cells count against LOWCODE_FAAS_MAX_CONTAINERS');
cap('the pool fills only under the cap, and a classic start makes room', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_MAX_CONTAINERS: '2' });
	try {
		const ready = async () => (await p.request('GET', '/readyz')).body.stem_cells;
		assert.equal(await eventually('two python stem cells', ready, (cells) => cells.python === 2, 20_000), { python: 2, deno: 0 }, 'python fills first, up to the cap');
		assert.is((await stemCellsOf(p.config)).length, 2);
		const ts = uniqueName('marker-ts');
		await deploy(p, ts, 'marker.ts');
		const r = await invoke(p, ts, {});
		assert.is(r.status, 'success', r.error_message);
		assert.ok((await allContainersOf(p.config)).length <= 2, 'never more than the cap');
	} finally {
		await p.close();
	}
});
cap.run();

const life = suite('stem cells: shutdown and kill -9');
let dataDir: string;
life.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-stem-'));
});
life.after.each(async () => {
	await rm(dataDir, { recursive: true, force: true });
});

life('SIGTERM removes the stem cells', async () => {
	const { child, url } = await spawnServer(dataDir);
	const config = loadConfig({ LOWCODE_FAAS_DATA: dataDir });
	await readyCells(apiAt(url), 2);
	assert.is((await invoke(apiAt(url), (await deploy(apiAt(url), 'm', 'marker.py')).name, {})).status, 'success');
	child.kill('SIGTERM');
	assert.is((await child).exitCode, 0);
	assert.equal(await allContainersOf(config), [], 'no container is left after SIGTERM');
});

life('after kill -9, a restart removes the stem cells of the previous run', async () => {
	const { child, url } = await spawnServer(dataDir);
	const config = loadConfig({ LOWCODE_FAAS_DATA: dataDir });
	// Ready, not only listed: a `docker run` still in flight at the kill could create its container after the restart looked.
	await readyCells(apiAt(url), 2);
	const left = await stemCellsOf(config);
	assert.is(left.length, 4);
	child.kill('SIGKILL');
	await child;
	assert.equal((await stemCellsOf(config)).sort(), left.sort(), 'kill -9 leaves them behind');
	const restarted = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
	try {
		const now = await stemCellsOf(config);
		assert.equal(
			now.filter((name) => left.includes(name)),
			[],
			'the restart removed them before serving',
		);
	} finally {
		await restarted.close();
	}
});
life.run();
