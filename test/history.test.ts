import { constants } from 'node:fs';
import { appendFile, mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { createHistory } from '../src/history.js';
import type { RunRecord } from '../src/result.js';
import { type Platform, deploy, eventually, invoke, orphans, startPlatform, uniqueName } from './helpers.js';

/** Every history segment file under the data folder (or of one function id), with its size. */
async function segments(dataDir: string, functionId = ''): Promise<{ path: string; size: number }[]> {
	const root = join(dataDir, 'runs', functionId);
	const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
	const files = entries.filter((e) => e.isFile() && e.name.endsWith('.jsonl')).map((e) => join(e.parentPath ?? e.path, e.name));
	return Promise.all(files.sort().map(async (path) => ({ path, size: (await stat(path)).size })));
}

const runDone = (platform: Platform, id: string, timeoutMs = 15_000) =>
	eventually(
		`run ${id} to finish`,
		async () => (await platform.request('GET', `/runs/${id}`)).body,
		(r) => r?.status === 'success' || r?.status === 'failed',
		timeoutMs,
	);

const fakeId = (n: number) => `01890f3e-0000-7000-8000-${String(n).padStart(12, '0')}`;
const FN_ID = '0b7a4d1e-2f0c-4c1a-9d7e-5a6b7c8d9e0f';

function legacyRecord(runId: string, output: unknown): RunRecord {
	return {
		run_id: runId,
		function_id: FN_ID,
		status: 'success',
		http_status_code: 200,
		http_headers: {},
		output,
		error_message: '',
		duration_ms: 1,
		cold_start: false,
		function: 'bulky',
		created_at: new Date().toISOString(),
		finished_at: new Date().toISOString(),
	};
}

const size = suite('history: bounded size');
let platform: Platform;
size.before(async () => {
	platform = await startPlatform();
});
size.after(async () => {
	assert.equal(await orphans(platform), []);
	await platform.close();
});

size('1 MiB of control bytes: the reply has it all, history keeps 64 KiB of it, marked output_truncated', async () => {
	const name = uniqueName('bulky');
	const { id } = await deploy(platform, name, 'bulky.py');
	const res = await platform.request('POST', `/functions/${name}/invoke`, { input: { control: 1 << 20 } });
	assert.is(res.status, 200);
	assert.is(res.body.output.length, 1 << 20, 'the caller gets the whole output');
	assert.is(res.body.output_truncated, undefined);
	const kept = await eventually(
		'the run in history',
		async () => (await platform.request('GET', `/runs/${res.body.run_id}`)).body,
		(r) => r?.run_id === res.body.run_id,
	);
	assert.is(kept.output_truncated, true);
	assert.ok(typeof kept.output === 'string' && kept.output.length > 1000 && JSON.stringify(kept.output).length <= 64 * 1024, `${JSON.stringify(kept.output).length} characters kept`);
	assert.ok(kept.output.startsWith('\x01\x01'));
	await eventually(
		'a history segment on disk',
		() => segments(platform.dataDir, id),
		(s) => s.length > 0,
	);
	for (const s of await segments(platform.dataDir, id)) assert.ok(s.size < 70 * 1024, `${s.path} is ${s.size} bytes`);
	const small = await platform.request('POST', `/functions/${name}/invoke`, { input: { size: 10 } });
	const shown = await eventually(
		'the small run in history',
		async () => (await platform.request('GET', `/runs/${small.body.run_id}`)).body,
		(r) => r?.run_id === small.body.run_id,
	);
	assert.equal(shown.output, { x: 'y'.repeat(10) });
	assert.is(shown.output_truncated, undefined, 'small outputs are kept whole');
});

size('segments rotate by size as well as by count', async () => {
	const name = uniqueName('bulky');
	const { id } = await deploy(platform, name, 'bulky.py');
	for (let i = 0; i < 100; i++) await invoke(platform, name, { input: { size: 60_000 } });
	const all = await eventually(
		'all 100 runs listed',
		async () => (await platform.request('GET', `/runs?function=${name}&limit=1000`)).body,
		(l) => l.length >= 100,
	);
	assert.is(all.length, 100);
	const files = await segments(platform.dataDir, id);
	assert.ok(files.length >= 2, `${files.length} segments`);
	for (const s of files) assert.ok(s.size <= 4 * 1024 * 1024 + 70 * 1024, `${s.path} is ${s.size} bytes`);
});

size.run();

const inputs = suite('history: big inputs of async runs');

inputs('history stops at LOWCODE_FAAS_RUNS_KEEP x 256 KiB on disk, give or take a segment (4 MiB inputs: 16 MB before)', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_RUNS_KEEP: '8' });
	try {
		await deploy(p, 'echo', 'echo.py');
		let last = '';
		for (let i = 0; i < 12; i++) {
			last = (await p.request('POST', '/functions/echo/invoke?async=true', { input: 'x'.repeat(4 << 20) })).body.run_id;
			assert.is((await runDone(p, last)).status, 'success');
		}
		const total = (await segments(p.dataDir)).reduce((sum, s) => sum + s.size, 0);
		assert.ok(total < 8 * 1024 * 1024, `${total} bytes of history`);
		assert.is((await p.request('GET', `/runs/${last}`)).body.status, 'success', 'the newest run is kept');
	} finally {
		await p.close();
	}
});

inputs.run();

const huge = suite('history: a segment past the string limit');

huge('a 580 MB segment with an 80 MiB line: the platform starts, GET /runs and GET /runs/{id} answer', async () => {
	const base = await mkdtemp(join(tmpdir(), 'lowcode-faas-huge-'));
	await execa('mount', ['-t', 'tmpfs', '-o', 'size=700m', 'tmpfs', base]);
	try {
		const dataDir = join(base, 'data');
		const dir = join(dataDir, 'runs', FN_ID);
		await mkdir(dir, { recursive: true });
		// What 16+ runs answering 1 MiB of control bytes each left before history was bounded: 6.3 MB lines.
		const line = JSON.stringify(legacyRecord(fakeId(1), '\x01'.repeat(1 << 20))) + '\n';
		const block = Buffer.from(line.repeat(10));
		const handle = await open(join(dir, '0000000001.jsonl'), 'w');
		try {
			for (let i = 0; i < 4; i++) await handle.write(block);
			await handle.write(Buffer.alloc(80 << 20, 'x'));
			await handle.write('\n');
			for (let i = 0; i < 4; i++) await handle.write(block);
			await handle.write(JSON.stringify(legacyRecord(fakeId(2), { small: true })) + '\n');
		} finally {
			await handle.close();
		}
		assert.ok((await stat(join(dir, '0000000001.jsonl'))).size > 540 * 1024 * 1024);
		const started = Date.now();
		const restarted = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
		try {
			const list = await restarted.request('GET', '/runs?limit=1');
			assert.is(list.status, 200);
			assert.equal(
				list.body.map((r: RunRecord) => r.run_id),
				[fakeId(2)],
			);
			const one = await restarted.request('GET', `/runs/${fakeId(2)}`);
			assert.is(one.status, 200);
			assert.equal(one.body.output, { small: true });
			const old = await restarted.request('GET', `/runs/${fakeId(1)}`);
			assert.is(old.body.output_truncated, true, 'an old record is shown bounded too');
			assert.ok(JSON.stringify(old.body).length < 70 * 1024);
			assert.ok(Date.now() - started < 60_000, `${Date.now() - started} ms`);
		} finally {
			await restarted.close();
		}
	} finally {
		await execa('umount', [base]);
		await rm(base, { recursive: true, force: true });
	}
});

huge.run();

const torn = suite('history: a torn last line');

torn('a fragment left at the end of a segment: the next async run runs and is found, also after a restart', async () => {
	const first = await startPlatform();
	const dataDir = first.dataDir;
	let second: Platform | undefined;
	try {
		await deploy(first, 'echo', 'echo.py');
		const sync = await first.request('POST', '/functions/echo/invoke', { input: 1 });
		await eventually(
			'a history segment on disk',
			() => segments(dataDir),
			(s) => s.length > 0,
		);
		const tear = async () => appendFile((await segments(dataDir)).at(-1)!.path, `{"run_id":"${fakeId(9)}","function_id":"x","sta`);
		await tear();
		const queued = await first.request('POST', '/functions/echo/invoke?async=true', { input: { n: 2 } });
		assert.is(queued.status, 202);
		const done = await runDone(first, queued.body.run_id);
		assert.is(done.status, 'success', JSON.stringify(done));
		assert.equal(done.output.body, { n: 2 });
		await tear();
		await first.app.close();
		second = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
		assert.is((await second.request('GET', `/runs/${queued.body.run_id}`)).body.status, 'success');
		assert.is((await second.request('GET', `/runs/${sync.body.run_id}`)).status, 200);
		const after = await second.request('POST', '/functions/echo/invoke?async=true', { input: { n: 3 } });
		assert.is((await runDone(second, after.body.run_id)).status, 'success');
		const listed = (await second.request('GET', '/runs?function=echo')).body.map((r: RunRecord) => r.run_id);
		assert.equal(listed, [after.body.run_id, queued.body.run_id, sync.body.run_id]);
	} finally {
		if (second) await second.close();
		else {
			await first.app.close();
			await rm(dataDir, { recursive: true, force: true });
		}
	}
});

torn.run();

const deep = suite('history: JSON of untrusted depth');
deep.before(async () => {
	platform = await startPlatform();
	await deploy(platform, 'bulky', 'bulky.py');
});
deep.after(async () => {
	assert.equal(await orphans(platform), []);
	await platform.close();
});

deep('input nested 20,000 deep is 400 invalid_input, sync and async; the warm container stays', async () => {
	const warm = await platform.request('POST', '/functions/bulky/invoke', { input: { size: 1 } });
	assert.is(warm.status, 200);
	const before = platform.app.scheduler.snapshot().map((c) => c.name);
	const body = `{"input":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
	for (const path of ['/functions/bulky/invoke', '/functions/bulky/invoke?async=true']) {
		const res = await platform.request('POST', path, body);
		assert.is(res.status, 400, `${path}: ${JSON.stringify(res.body).slice(0, 200)}`);
		assert.is(res.body.error.code, 'invalid_input');
		assert.match(res.body.error.message, /64 levels/);
	}
	const again = await platform.request('POST', '/functions/bulky/invoke', { input: { size: 1 } });
	assert.is(again.status, 200);
	assert.is(again.body.cold_start, false, 'the warm container was kept');
	assert.equal(
		platform.app.scheduler.snapshot().map((c) => c.name),
		before,
	);
	const ok = `{"input":${'['.repeat(64)}${']'.repeat(64)}}`;
	assert.is((await platform.request('POST', '/functions/bulky/invoke', ok)).status, 200, '64 levels are fine');
});

deep('output nested 100,000 deep is kept as text: 200, sync and async', async () => {
	const res = await platform.request('POST', '/functions/bulky/invoke', { input: { deep: 100_000 } });
	assert.is(res.status, 200, JSON.stringify(res.body).slice(0, 200));
	assert.is(res.body.status, 'success');
	assert.is(res.body.output, '['.repeat(100_000) + ']'.repeat(100_000));
	const queued = await platform.request('POST', '/functions/bulky/invoke?async=true', { input: { deep: 100_000 } });
	assert.is(queued.status, 202);
	const done = await runDone(platform, queued.body.run_id);
	assert.is(done.status, 'success');
	assert.is(typeof done.output, 'string');
	const shallow = await platform.request('POST', '/functions/bulky/invoke', { input: { deep: 3 } });
	assert.equal(shallow.body.output, [[[]]], 'shallow JSON is still parsed');
});

deep('one record that cannot be serialized: the others of its batch are written, it is replaced by a note', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-runs-unit-'));
	try {
		const runs = createHistory(loadConfig({ LOWCODE_FAAS_DATA: dataDir }), 100);
		await runs.init();
		const circular: Record<string, unknown> = {};
		circular.self = circular;
		const records = [1, 2, 3].map((n) => ({ ...legacyRecord(fakeId(n), n), input: n === 2 ? circular : undefined }));
		for (const r of records) void runs.save(r).catch(() => {});
		await runs.drain();
		const again = createHistory(loadConfig({ LOWCODE_FAAS_DATA: dataDir }), 100);
		await again.init();
		assert.equal((await again.get(fakeId(1)))?.output, 1);
		assert.equal((await again.get(fakeId(3)))?.output, 3);
		const bad = await again.get(fakeId(2));
		assert.is(bad?.status, 'success', 'a finished run keeps its status');
		assert.is(bad?.output, null);
		assert.match(bad!.error_message, /could not be recorded/);
	} finally {
		await rm(dataDir, { recursive: true, force: true });
	}
});

deep.run();

const owner = suite('history: belongs to its function');

owner('a deleted function takes its history along; its queued runs fail and never run on a namesake', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_ASYNC_CONCURRENCY: '1' });
	try {
		await deploy(p, 'slow', 'slow.py');
		const old = await p.request('POST', '/functions/slow/invoke', { input: { seconds: 0 } });
		const busy = await p.request('POST', '/functions/slow/invoke?async=true', { input: { seconds: 2 } });
		const queued = await p.request('POST', '/functions/slow/invoke?async=true', { input: { seconds: 0 } });
		await eventually(
			'the busy run running',
			async () => (await p.request('GET', `/runs/${busy.body.run_id}`)).body.status,
			(s) => s === 'running',
		);
		assert.is((await p.request('DELETE', '/functions/slow')).status, 204);
		await deploy(p, 'slow', 'echo.py');
		const failed = await runDone(p, queued.body.run_id);
		assert.is(failed.status, 'failed', JSON.stringify(failed));
		assert.is(failed.error_message, 'The function was deleted before the run started.');
		assert.is((await p.request('GET', `/runs/${old.body.run_id}`)).status, 404, "the old function's runs are gone");
		const fresh = await p.request('POST', '/functions/slow/invoke', { input: { n: 1 } });
		const listed = await eventually(
			'the fresh run listed',
			async () => (await p.request('GET', '/runs?function=slow')).body,
			(l) => l.some((r: RunRecord) => r.run_id === fresh.body.run_id),
		);
		assert.equal(
			listed.map((r: RunRecord) => r.run_id),
			[fresh.body.run_id],
			"only the new function's runs are listed under its name",
		);
		assert.equal(listed[0].output.body, { n: 1 });
		assert.ok(['success', 'failed'].includes((await runDone(p, busy.body.run_id)).status), 'the run under way when its function went is still found');
	} finally {
		await p.close();
	}
});

owner('a function deleted by hand and created again: its queued run does not run the new one', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_ASYNC_CONCURRENCY: '1' });
	try {
		await deploy(p, 'slow', 'slow.py');
		const busy = await p.request('POST', '/functions/slow/invoke?async=true', { input: { seconds: 2 } });
		const queued = await p.request('POST', '/functions/slow/invoke?async=true', { input: { seconds: 0 } });
		await eventually(
			'the busy run running',
			async () => (await p.request('GET', `/runs/${busy.body.run_id}`)).body.status,
			(s) => s === 'running',
		);
		await rm(join(p.dataDir, 'functions/slow.py'));
		await deploy(p, 'slow', 'echo.py');
		const failed = await runDone(p, queued.body.run_id);
		assert.is(failed.status, 'failed', JSON.stringify(failed));
		assert.is(failed.error_message, 'The function was deleted before the run started.');
		await runDone(p, busy.body.run_id);
	} finally {
		await p.close();
	}
});

owner.run();

const index = suite('history: listing reads only what it returns');

index('GET /runs?limit=2 answers without touching older segments', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_RUNS_KEEP: '8' });
	let fifo = '';
	try {
		await deploy(p, 'echo', 'echo.py');
		const ids: string[] = [];
		for (let i = 0; i < 6; i++) ids.push((await p.request('POST', '/functions/echo/invoke', { input: i })).body.run_id);
		await eventually(
			'three history segments',
			() => segments(p.dataDir),
			(s) => s.length >= 3,
		);
		await eventually(
			'the newest run in history',
			async () => (await p.request('GET', `/runs/${ids[5]}`)).status,
			(s) => s === 200,
		);
		// A reader of the oldest segment would hang on this pipe.
		fifo = (await segments(p.dataDir))[0]!.path;
		await rm(fifo);
		await execa('mkfifo', [fifo]);
		const res = await fetch(`${p.app.url}/runs?limit=2`, { signal: AbortSignal.timeout(5_000) });
		assert.equal(
			((await res.json()) as RunRecord[]).map((r) => r.run_id),
			[ids[5], ids[4]],
		);
		const one = await fetch(`${p.app.url}/runs/${ids[3]}`, { signal: AbortSignal.timeout(5_000) });
		assert.is(one.status, 200);
	} finally {
		if (fifo) {
			// Frees a reader blocked on the pipe, if any, then the pipe goes.
			const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => null);
			await writer?.close();
			await rm(fifo, { force: true });
		}
		await p.close();
	}
});

index.run();

const modes = suite('history: file modes');

for (const mask of [0o027, 0o000]) {
	modes(`folders 0700 and files 0600 under umask ${mask.toString(8).padStart(3, '0')}`, async () => {
		const previous = process.umask(mask);
		let p: Platform | undefined;
		try {
			p = await startPlatform();
			await deploy(p, 'echo', 'echo.py');
			await p.request('POST', '/functions/echo/invoke', { input: 1 });
			const queued = await p.request('POST', '/functions/echo/invoke?async=true', { input: 2 });
			await runDone(p, queued.body.run_id);
			await eventually(
				'a history segment on disk',
				() => segments(p!.dataDir),
				(s) => s.length > 0,
			);
			const root = join(p.dataDir, 'runs');
			assert.is((await stat(root)).mode & 0o777, 0o700, 'runs/');
			for (const dir of await readdir(root)) assert.is((await stat(join(root, dir))).mode & 0o777, 0o700, `runs/${dir}`);
			for (const s of await segments(p.dataDir)) assert.is((await stat(s.path)).mode & 0o777, 0o600, s.path);
		} finally {
			process.umask(previous);
			await p?.close();
		}
	});
}

modes.run();

const layout = suite('history: the layout before function ids');

layout('runs/NAME/ moves to runs/FUNCTION_ID/ at start; its queued runs are still resumed', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-runs-layout-'));
	try {
		await mkdir(join(dataDir, 'runs/bulky'), { recursive: true });
		const queued = { ...legacyRecord(fakeId(2), null), status: 'queued' as const, input: { n: 1 } };
		await appendFile(join(dataDir, 'runs/bulky/0000000001.jsonl'), `${JSON.stringify(legacyRecord(fakeId(1), 1))}\n${JSON.stringify(queued)}\n`);
		const runs = createHistory(loadConfig({ LOWCODE_FAAS_DATA: dataDir }), 100);
		const pending = await runs.init();
		assert.equal(
			pending.map((r) => r.run_id),
			[fakeId(2)],
		);
		assert.equal(await readdir(join(dataDir, 'runs')), [FN_ID]);
		assert.is((await runs.get(fakeId(1)))?.output, 1);
		assert.equal((await runs.get(fakeId(2)))?.input, { n: 1 }, 'the input is read back when the run starts');
		assert.equal(
			(await runs.list({ name: 'bulky' }, 10)).map((r) => r.run_id),
			[fakeId(2), fakeId(1)],
		);
	} finally {
		await rm(dataDir, { recursive: true, force: true });
	}
});

layout.run();
