import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, apiAt, deploy, eventually, invoke, orphans, request, spawnServer, startPlatform, uniqueName } from './helpers.js';

let platform: Platform;
const runs = suite('runs: async invocations and history');
runs.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_RUNS_KEEP: '8' });
});
runs.after(async () => {
	assert.equal(await orphans(platform), []);
	await platform.close();
});

runs('?async=true answers 202 at once; GET /runs/{id} shows it queued or running, then its result', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	const res = await platform.request('POST', `/functions/${name}/invoke?async=true`, { input: { n: 1 } });
	assert.is(res.status, 202);
	assert.equal(Object.keys(res.body).sort(), ['run_id', 'status']);
	assert.is(res.body.status, 'queued');
	const done = await eventually(
		'the async run to succeed',
		async () => (await platform.request('GET', `/runs/${res.body.run_id}`)).body,
		(r) => r.status === 'success',
		15_000,
	);
	assert.is(done.status, 'success', done.error_message);
	assert.equal(done.output.body, { n: 1 });
	assert.is(done.run_id, res.body.run_id);
	assert.is(done.function, name);
	assert.ok(done.created_at && done.finished_at);
	assert.is(done.input, undefined, 'the input is not shown');
});

runs('sync runs are kept too; GET /runs lists newest first, by function, with a limit', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	const ids: string[] = [];
	for (let i = 0; i < 3; i++) ids.push((await invoke(platform, name, { input: i })).run_id);
	const listed = await eventually(
		'the newest sync run listed first',
		async () => (await platform.request('GET', `/runs?function=${name}&limit=2`)).body,
		(list) => list[0]?.run_id === ids[2],
	);
	assert.equal(
		listed.map((r: { run_id: string }) => r.run_id),
		[ids[2], ids[1]],
	);
	assert.is((await platform.request('GET', `/runs/${ids[0]}`)).body.output.body, 0);
});

runs('retention keeps the newest LOWCODE_FAAS_RUNS_KEEP runs, give or take a segment', async () => {
	const name = uniqueName('echo');
	const { id: functionId } = await deploy(platform, name, 'echo.py');
	const ids: string[] = [];
	for (let i = 0; i < 30; i++) ids.push((await invoke(platform, name, { input: i })).run_id);
	// History is written and trimmed after the answers: wait until the newest is listed and the rest trimmed.
	const listed = await eventually(
		'retention to trim history to 8 runs, give or take a segment',
		async () => (await platform.request('GET', `/runs?function=${name}&limit=1000`)).body as { run_id: string }[],
		(list) => list[0]?.run_id === ids.at(-1) && list.length <= 8 + 2,
	);
	const kept = listed.map((r) => r.run_id);
	assert.ok(kept.length >= 8 && kept.length <= 8 + 2, `${kept.length} runs kept`);
	assert.equal(kept.slice(0, 8), ids.slice(-8).reverse(), 'the newest ones');
	assert.is((await platform.request('GET', `/runs/${ids[0]}`)).status, 404, 'the oldest is gone');
	await eventually(
		'whole segments deleted',
		() => readdir(join(platform.dataDir, 'runs', functionId)),
		(files) => files.length <= 5,
	);
});

runs('bad run ids, limits and async values are 400; unknown runs 404', async () => {
	assert.is((await platform.request('GET', '/runs/nope')).status, 400);
	assert.is((await platform.request('GET', '/runs/01890f3e-0000-7000-8000-000000000000')).status, 404);
	assert.is((await platform.request('GET', '/runs?limit=0')).status, 400);
	assert.is((await platform.request('GET', '/runs?function=../x')).status, 400);
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	assert.is((await platform.request('POST', `/functions/${name}/invoke?async=maybe`, {})).status, 400);
	assert.is((await platform.request('POST', '/functions/ghost/invoke?async=true', {})).status, 404);
});

runs.run();

const restart = suite('runs: through a crash');

restart('queued async runs left by kill -9 run after a restart; the interrupted one is failed', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-runs-'));
	try {
		const { child, url } = await spawnServer(dataDir, { LOWCODE_FAAS_ASYNC_CONCURRENCY: '1' });
		await deploy(apiAt(url), 'slow', 'slow.py');
		const first = (await request(url, 'POST', '/functions/slow/invoke?async=true', { input: { seconds: 30 }, timeout_ms: 60_000 })).body;
		const second = (await request(url, 'POST', '/functions/slow/invoke?async=true', { input: { seconds: 0 } })).body;
		await eventually(
			'the first run running',
			async () => (await request(url, 'GET', `/runs/${first.run_id}`)).body.status,
			(status) => status === 'running',
		);
		assert.is((await request(url, 'GET', `/runs/${second.run_id}`)).body.status, 'queued');
		child.kill('SIGKILL');
		await child;
		const restarted = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
		try {
			const done = await eventually(
				'the queued run to succeed after the restart',
				async () => (await restarted.request('GET', `/runs/${second.run_id}`)).body,
				(r) => r.status === 'success',
				20_000,
			);
			assert.is(done.status, 'success', done.error_message);
			const interrupted = (await restarted.request('GET', `/runs/${first.run_id}`)).body;
			assert.is(interrupted.status, 'failed');
			assert.match(interrupted.error_message, /interrupted by a restart/);
		} finally {
			await restarted.app.close();
		}
	} finally {
		await rm(dataDir, { recursive: true, force: true });
	}
});

restart.run();
