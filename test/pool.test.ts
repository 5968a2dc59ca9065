import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOfFunction, createFunction, deploy, eventually, fixture, invoke, logged, orphans, startPlatform, uniqueName } from './helpers.js';

let platform: Platform;

/** A Python function that answers with a fixed word, to tell versions apart. */
const saying = async (word: string) => (await fixture('saying.py')).replace('WORD = "default"', `WORD = ${JSON.stringify(word)}`);

function lifecycle(name: string, env: Record<string, string> = {}) {
	const s = suite(name);
	s.before(async () => {
		platform = await startPlatform(env);
	});
	s.after.each(async () => {
		assert.equal(await orphans(platform), [], 'the platform lost track of a container');
	});
	s.after(async () => {
		await platform.close();
	});
	return s;
}

const warm = lifecycle('pool: warm containers');

warm('the second invocation reuses the container and is much faster', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	const first = await invoke(platform, name, { input: 1 });
	const second = await invoke(platform, name, { input: 2 });
	assert.is(first.status, 'success', first.error_message);
	assert.is(second.status, 'success', second.error_message);
	assert.is(first.cold_start, true);
	assert.is(second.cold_start, false);
	assert.is(second.output.body, 2);
	assert.is((await containersOfFunction(platform.config, name)).length, 1, 'one container served both');
	assert.ok(second.duration_ms * 3 < first.duration_ms, `warm ${second.duration_ms} ms vs cold ${first.duration_ms} ms`);
});

warm('an update through the API is served on the next call; the old container goes', async () => {
	const name = uniqueName('ver');
	await createFunction(platform, name, 'python', await saying('v1'));
	assert.is((await invoke(platform, name)).output, 'v1');
	await createFunction(platform, name, 'python', await saying('v2'));
	const r = await invoke(platform, name);
	assert.is(r.output, 'v2');
	assert.is(r.cold_start, true);
	await eventually(
		'only the new version running',
		() => containersOfFunction(platform.config, name),
		(ids) => ids.length === 1,
	);
});

warm('a file edited on disk is served on the next call', async () => {
	const name = uniqueName('ver');
	await createFunction(platform, name, 'python', await saying('v1'));
	assert.is((await invoke(platform, name)).output, 'v1');
	await writeFile(join(platform.dataDir, `functions/${name}.py`), await saying('edited by hand'));
	assert.is((await invoke(platform, name)).output, 'edited by hand');
});

warm('a file deleted by hand is 404 and its containers go', async () => {
	const name = uniqueName('ver');
	await createFunction(platform, name, 'python', await saying('v1'));
	assert.is((await invoke(platform, name)).output, 'v1');
	await rm(join(platform.dataDir, `functions/${name}.py`));
	assert.is((await platform.request('POST', `/functions/${name}/invoke`, {})).status, 404);
	await eventually(
		'no container of the deleted function',
		() => containersOfFunction(platform.config, name),
		(ids) => ids.length === 0,
	);
});

warm('concurrent invocations of a cold function start one container', async () => {
	const name = uniqueName('burst');
	await deploy(platform, name, 'slow.py');
	const results = await Promise.all(Array.from({ length: 8 }, () => invoke(platform, name, { input: { seconds: 0.2 } })));
	for (const r of results) assert.is(r.status, 'success', r.error_message);
	assert.ok(
		results.every((r) => r.cold_start),
		'all of them waited for the one start',
	);
	assert.is(new Set(results.map((r) => r.output.host)).size, 1, 'one container answered them all');
	assert.is((await containersOfFunction(platform.config, name)).length, 1);
});

warm('a warm container removed behind the platform’s back is replaced without a failed invocation', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	await invoke(platform, name);
	const before = await invoke(platform, name, { input: 'a' });
	assert.is(before.cold_start, false);
	const [id] = await containersOfFunction(platform.config, name);
	await execa('docker', ['rm', '-f', id!]);
	const after = await invoke(platform, name, { input: 'b' });
	assert.is(after.status, 'success', after.error_message);
	assert.is(after.output.body, 'b');
	assert.is(after.cold_start, true);
	const now = await containersOfFunction(platform.config, name);
	assert.is(now.length, 1);
	assert.is.not(now[0], id);
});

warm('a hung request times out and its container is replaced', async () => {
	const name = uniqueName('slow');
	await deploy(platform, name, 'slow.py');
	const warmUp = await invoke(platform, name, { input: { seconds: 0 } });
	const hung = await invoke(platform, name, { input: { hang: true }, timeout_ms: 1_000 });
	assert.is(hung.status, 'timeout');
	const next = await invoke(platform, name, { input: { seconds: 0 } });
	assert.is(next.status, 'success', next.error_message);
	assert.is(next.cold_start, true, 'a fresh container answered');
	assert.is.not(next.output.host, warmUp.output.host);
	await eventually(
		'the timed-out container gone, one left',
		() => containersOfFunction(platform.config, name),
		(ids) => ids.length === 1,
	);
});

warm.run();

const idle = lifecycle('pool: scale to zero', { LOWCODE_FAAS_IDLE_S: '1' });

idle('a container idle past LOWCODE_FAAS_IDLE_S is removed', async () => {
	await deploy(platform, 'echo', 'echo.py');
	assert.is((await invoke(platform, 'echo')).status, 'success');
	assert.is((await containersOfFunction(platform.config, 'echo')).length, 1);
	await eventually(
		'the idle container removed',
		() => containersOfFunction(platform.config, 'echo'),
		(ids) => ids.length === 0,
		6_000,
	);
	const again = await invoke(platform, 'echo');
	assert.is(again.cold_start, true);
});

idle.run();

const caps = lifecycle('pool: replicas, total cap and the queue', {
	LOWCODE_FAAS_CONCURRENCY: '1',
	LOWCODE_FAAS_MAX_REPLICAS: '2',
	LOWCODE_FAAS_MAX_CONTAINERS: '2',
	LOWCODE_FAAS_MAX_QUEUE: '2',
});

caps('past the caps invocations queue, and a full queue gets 429 with Retry-After', async () => {
	await deploy(platform, 'slowa', 'slow.py');
	await deploy(platform, 'slowb', 'slow.py');
	const slow = { input: { seconds: 1.5 }, timeout_ms: 20_000 };
	let peak = 0;
	let watching = true;
	const watcher = (async () => {
		while (watching) {
			peak = Math.max(peak, platform.app.scheduler.snapshot().length);
			// Sampling, not waiting: how many containers exist at any moment.
			await new Promise((r) => setTimeout(r, 20));
		}
	})();
	const a = [invoke(platform, 'slowa', slow), invoke(platform, 'slowa', slow), invoke(platform, 'slowa', slow)];
	await eventually(
		'one invocation queued',
		async () => platform.app.scheduler.queueDepth(),
		(depth) => depth === 1,
		5_000,
	);
	const b = invoke(platform, 'slowb', slow);
	await eventually(
		'two invocations queued',
		async () => platform.app.scheduler.queueDepth(),
		(depth) => depth === 2,
		5_000,
	);
	const rejected = await platform.request('POST', '/functions/slowa/invoke', slow);
	assert.is(rejected.status, 429);
	assert.is(rejected.body.error.code, 'too_many_invocations');
	assert.ok(rejected.headers.get('retry-after'), 'a 429 says when to retry');
	const results = await Promise.all([...a, b]);
	watching = false;
	await watcher;
	for (const r of results) assert.is(r.status, 'success', r.error_message);
	assert.ok(peak <= 2, `at most LOWCODE_FAAS_MAX_CONTAINERS containers at once (saw ${peak})`);
	assert.ok((await containersOfFunction(platform.config, 'slowa')).length <= 2);
});

caps('a queued invocation still times out within its own deadline', async () => {
	const [a, b] = [uniqueName('slowa'), uniqueName('slowb')];
	await deploy(platform, a, 'slow.py');
	await deploy(platform, b, 'slow.py');
	const busy = [invoke(platform, a, { input: { seconds: 2 } }), invoke(platform, b, { input: { seconds: 2 } })];
	await eventually(
		'both containers busy',
		async () => platform.app.scheduler.snapshot().filter((c) => c.used > 0).length,
		(n) => n === 2,
		5_000,
	);
	const started = Date.now();
	const queued = await invoke(platform, a, { input: { seconds: 0 }, timeout_ms: 500 });
	assert.is(queued.status, 'timeout');
	assert.ok(Date.now() - started < 1_000);
	await Promise.all(busy);
});

caps('an invocation queued while its function changes runs with the new settings', async () => {
	await deploy(platform, 'swap', 'saying.py', { max_replicas: 1, env: { WORD: 'old' } });
	const first = invoke(platform, 'swap', { input: 1.5, timeout_ms: 20_000 });
	await logged(platform, 'swap', 'saying got a request');
	const queued = invoke(platform, 'swap', { input: 0, timeout_ms: 20_000 });
	await eventually(
		'the second invocation queued',
		async () => platform.app.scheduler.queueDepth(),
		(depth) => depth === 1,
	);
	await platform.request('PATCH', '/functions/swap', { env: { WORD: 'new' } });
	assert.is((await first).output, 'old', 'the request already sent finishes on the old container');
	assert.is((await queued).output, 'new', 'the queued one runs with the new settings');
});

caps.run();

const prewarm = suite('pool: prewarm');

prewarm('a prewarmed function is warm before its first invocation', async () => {
	platform = await startPlatform({ LOWCODE_FAAS_PREWARM: 'early' }, { 'early.py': await fixture('echo.py'), 'late.py': await fixture('echo.py') });
	try {
		await eventually(
			'the prewarmed container ready',
			async () => platform.app.scheduler.snapshot().map((c) => `${c.fn}:${c.state}`),
			(all) => all.includes('early:ready'),
		);
		assert.equal(await containersOfFunction(platform.config, 'late'), [], 'only the listed function is prewarmed');
		const r = await invoke(platform, 'early');
		assert.is(r.status, 'success', r.error_message);
		assert.is(r.cold_start, false);
	} finally {
		await platform.close();
	}
});

prewarm.run();
