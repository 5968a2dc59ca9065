import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type AsyncRuns, createAsyncRuns } from '../../src/async-runs.js';
import { type Config, loadConfig } from '../../src/config.js';
import { ApiError } from '../../src/errors.js';
import { type History, createHistory, newRunId } from '../../src/history.js';
import { type RunRecord, type RunResult, queuedRecord } from '../../src/result.js';
import type { Runner } from '../../src/runner.js';
import { PoolFull } from '../../src/scheduler.js';
import { type Store, createStore } from '../../src/store.js';
import { eventually } from '../helpers.js';

// Async runs against a real store and history in a temporary folder and a runner that is a script: no Docker.

type Outcome = RunResult | Error;

/** A runner that answers each call with the next outcome, and records the timeouts it was given. */
function scriptedRunner(outcomes: Outcome[]) {
	const timeouts: number[] = [];
	const run = async (_ref: unknown, functionId: string, _input: unknown, timeoutMs: number, _caller: AbortSignal, runId: string): Promise<RunResult> => {
		timeouts.push(timeoutMs);
		const next = outcomes.shift() ?? new Error('no more outcomes');
		if (next instanceof Error) throw next;
		return { ...next, run_id: runId, function_id: functionId };
	};
	return { runner: { run } as unknown as Runner, timeouts };
}

const success: RunResult = { run_id: '', function_id: '', version: 1, status: 'success', http_status_code: 200, http_headers: {}, output: 'ok', error_message: '', duration_ms: 1, cold_start: false };

const async = suite('async runs');
let dataDir = '';
let config: Config;
let store: Store;
let history: History;
let runs: AsyncRuns | undefined;
async.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lcf-async-'));
	config = loadConfig({ LOWCODE_FAAS_DATA: dataDir });
	store = createStore(config);
	await store.init();
	history = createHistory(config, 100);
	await history.init();
});
async.after.each(async () => {
	await runs?.close(1000);
	await history.drain();
	await rm(dataDir, { recursive: true, force: true });
});

/** Creates the function and queues one run of it, as POST /functions/f/invoke?async=true does. */
async function queue(timeoutMs: number | undefined, settings = {}): Promise<string> {
	const fn = await store.save('f', 'python', 'print(1)', settings);
	// Without a timeout_ms when asked: a record an older version queued.
	const record: RunRecord = { ...queuedRecord(newRunId(), fn.id, 'f', {}, 0, new Date()), timeout_ms: timeoutMs };
	await history.save(record, true);
	return record.run_id;
}

const finished = (id: string) =>
	eventually(
		`run ${id} finished`,
		() => history.get(id),
		(r) => r !== null && r.finished_at !== null,
		5_000,
	);

async('a full pool (PoolFull) makes the run wait and try again, not fail', async () => {
	const { runner, timeouts } = scriptedRunner([new PoolFull(), success]);
	runs = createAsyncRuns(runner, store, history, 1);
	const id = await queue(7000);
	runs.enqueue(id);
	const record = await finished(id);
	assert.is(record?.status, 'success', record?.error_message);
	assert.equal(timeouts, [7000, 7000]);
});

async('any other refusal fails the run at once, even one with status 429', async () => {
	const { runner, timeouts } = scriptedRunner([new ApiError('too_many_async_runs', 'not the pool'), success]);
	runs = createAsyncRuns(runner, store, history, 1);
	const id = await queue(7000);
	runs.enqueue(id);
	const record = await finished(id);
	assert.is(record?.status, 'failed');
	assert.match(record?.error_message ?? '', /could not be started: not the pool/);
	assert.is(timeouts.length, 1);
});

async("a run queued without a timeout gets the function's timeout_ms, else the default", async () => {
	const { runner, timeouts } = scriptedRunner([success, success]);
	runs = createAsyncRuns(runner, store, history, 1);
	const first = await queue(undefined);
	runs.enqueue(first);
	assert.is((await finished(first))?.status, 'success');
	const second = await queue(undefined, { timeout_ms: 9000 });
	runs.enqueue(second);
	assert.is((await finished(second))?.status, 'success');
	assert.equal(timeouts, [5_000, 9000]);
});

async.run();
