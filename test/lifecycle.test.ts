import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { apiAt, containersOf, deploy, eventually, fixture, invoke, request, spawnServer, startPlatform } from './helpers.js';

async function warmUp(url: string, name: string) {
	await deploy(apiAt(url), name, 'echo.py');
	const r = await invoke(apiAt(url), name, {});
	assert.is(r.status, 'success', r.error_message);
}

const life = suite('lifecycle: restarts and signals');
let dataDir: string;
life.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-life-'));
});
life.after.each(async () => {
	await rm(dataDir, { recursive: true, force: true });
});

life('SIGTERM removes every container and exits 0', async () => {
	const { child, url } = await spawnServer(dataDir);
	await warmUp(url, 'echo');
	const config = loadConfig({ LOWCODE_FAAS_DATA: dataDir });
	assert.is((await containersOf(config)).length, 1);
	child.kill('SIGTERM');
	const result = await child;
	assert.is(result.exitCode, 0);
	assert.equal(await containersOf(config), [], 'no container is left after SIGTERM');
});

life('after kill -9, a restart removes the orphans of the previous run', async () => {
	const { child, url } = await spawnServer(dataDir);
	await warmUp(url, 'echo');
	// No `docker run` in flight at the kill (the stem cell that replaced the claimed one): one would
	// create its container after the restart had looked, and outlive this test.
	const full = (cells: { python?: number; deno?: number } | undefined) => cells?.python === 2 && cells?.deno === 2;
	await eventually('both stem pools refilled', async () => (await request(url, 'GET', '/readyz')).body?.stem_cells, full, 30_000);
	child.kill('SIGKILL');
	await child;
	const config = loadConfig({ LOWCODE_FAAS_DATA: dataDir });
	assert.is((await containersOf(config)).length, 1, 'kill -9 leaves the warm container behind');
	const restarted = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
	try {
		assert.equal(await containersOf(config), [], 'the restart removed it before serving');
		const r = (await restarted.request('POST', '/functions/echo/invoke', {})).body;
		assert.is(r.status, 'success', r.error_message);
	} finally {
		await restarted.close();
	}
});

life("another instance's containers (another data folder) are never touched", async () => {
	const mine = await startPlatform({}, { 'echo.py': await fixture('echo.py') });
	try {
		assert.is((await mine.request('POST', '/functions/echo/invoke', {})).body.status, 'success');
		const [before] = await containersOf(mine.config);
		const other = await startPlatform({ LOWCODE_FAAS_DATA: dataDir }, { 'echo.py': await fixture('echo.py') });
		assert.is((await other.request('POST', '/functions/echo/invoke', {})).body.status, 'success');
		await other.close();
		assert.equal(await containersOf(mine.config), [before], 'the other instance started and stopped without touching mine');
		const r = (await mine.request('POST', '/functions/echo/invoke', {})).body;
		assert.is(r.cold_start, false, 'and it is still warm');
	} finally {
		await mine.close();
	}
});

life.run();
