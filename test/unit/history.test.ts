import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { createHistory, isRunId, newRunId } from '../../src/history.js';
import type { RunRecord } from '../../src/result.js';

/** Run history on a temporary folder: no Docker, no server. */
const history = suite('history (unit)');

const FN = '0b7a4d1e-2f0c-4c1a-9d7e-5a6b7c8d9e0f';
const OTHER = '1c8b5e2f-3a1d-4d2b-8e8f-6b7c8d9e0f1a';

// Run ids made within one millisecond sort at random: these sort in the order they are made.
let made = 0;
const nextId = () => `01890f3e-0000-7000-8000-${String(++made).padStart(12, '0')}`;

function record(fn = FN, name = 'echo', extra: Partial<RunRecord> = {}): RunRecord {
	const now = new Date().toISOString();
	return { run_id: nextId(), function_id: fn, function: name, status: 'success', http_status_code: 200, http_headers: {}, output: 'ok', error_message: '', duration_ms: 1, cold_start: false, created_at: now, finished_at: now, ...extra };
}

async function withFolder(test: (dataDir: string) => Promise<void>) {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-history-unit-'));
	try {
		await test(dataDir);
	} finally {
		await rm(dataDir, { recursive: true, force: true });
	}
}

const open = async (dataDir: string, keep = 100) => {
	const h = createHistory(loadConfig({ LOWCODE_FAAS_DATA: dataDir }), keep);
	return { h, pending: await h.init() };
};

history('run ids are time-ordered UUIDv7s', () => {
	const ids = Array.from({ length: 50 }, () => newRunId());
	assert.ok(ids.every(isRunId));
	assert.ok(!isRunId('not-a-run-id') && !isRunId(FN), 'other UUIDs are not run ids');
	const millis = (id: string) => id.replaceAll('-', '').slice(0, 12);
	assert.ok(millis(ids[0]!) <= millis(ids.at(-1)!), 'their time part sorts as they were made');
	assert.is(Number.parseInt(millis(newRunId()), 16) <= Date.now(), true);
});

history('a saved run is found at once, and after a restart; files are private', () =>
	withFolder(async (dataDir) => {
		const { h } = await open(dataDir);
		const run = record();
		await h.save(run, true);
		assert.equal((await h.get(run.run_id))?.output, 'ok');
		await h.drain();
		const { h: again } = await open(dataDir);
		assert.equal(await again.get(run.run_id), run);
		const [segment] = await readdir(join(dataDir, 'runs', FN));
		assert.is((await stat(join(dataDir, 'runs', FN, segment!))).mode & 0o777, 0o600);
	}),
);

history('the last record of a run wins; listing is newest first and per function', () =>
	withFolder(async (dataDir) => {
		const { h } = await open(dataDir);
		const first = record();
		const second = record();
		const elsewhere = record(OTHER, 'other');
		await h.save({ ...first, status: 'queued', finished_at: null }, true);
		await h.save(second);
		await h.save(elsewhere);
		await h.save({ ...first, status: 'failed', error_message: 'boom' });
		await h.drain();
		assert.is((await h.get(first.run_id))?.status, 'failed');
		assert.equal(
			(await h.list({ id: FN }, 10)).map((r) => r.run_id),
			[second.run_id, first.run_id],
		);
		assert.equal(
			(await h.list(null, 10)).map((r) => r.run_id),
			[elsewhere.run_id, second.run_id, first.run_id],
		);
		assert.equal(
			(await h.list({ id: FN }, 1)).map((r) => r.run_id),
			[second.run_id],
			'the limit keeps the newest',
		);
	}),
);

history('a restart hands back the runs left queued; removing a function takes its history along', () =>
	withFolder(async (dataDir) => {
		const { h } = await open(dataDir);
		const queued = record(FN, 'echo', { status: 'queued', finished_at: null, input: { n: 1 } });
		const kept = record(OTHER, 'other');
		const done = record();
		await h.save(done, true);
		await h.save(queued, true);
		await h.save(kept, true);
		const { h: again, pending } = await open(dataDir);
		assert.equal(
			pending.map((r) => r.run_id),
			[queued.run_id],
		);
		assert.equal((await again.get(queued.run_id))?.input, { n: 1 });
		await again.remove(FN);
		const told = await again.get(queued.run_id);
		assert.is(told?.status, 'failed', 'a queued run of a deleted function is recorded as failed, for whoever polls it');
		assert.match(told!.error_message, /deleted before the run started/);
		assert.is(told!.input, undefined, 'its input is not kept');
		assert.is(await again.get(done.run_id), null, 'its finished runs are gone');
		assert.ok(await again.get(kept.run_id), "another function's history stays");
	}),
);

history('about `keep` runs per function are kept: whole old segments go', () =>
	withFolder(async (dataDir) => {
		const { h } = await open(dataDir, 8);
		const runs = Array.from({ length: 40 }, () => record());
		for (const run of runs) await h.save(run, true);
		await h.drain();
		const listed = await h.list({ id: FN }, 100);
		assert.ok(listed.length >= 8 && listed.length <= 8 + 2, `kept ${listed.length}`);
		assert.is(listed[0]!.run_id, runs.at(-1)!.run_id, 'the newest is kept');
		assert.is(await h.get(runs[0]!.run_id), null, 'the oldest is gone');
	}),
);

history.run();
