import { setTimeout as sleep } from 'node:timers/promises';
import { HttpError } from './errors.js';
import { log } from './log.js';
import type { Runner } from './run.js';
import type { RunRecord, Runs } from './runs.js';
import type { Store } from './store.js';

// Async runs waiting for room in the pool try again this often.
const RETRY_MS = 1_000;

export type Background = ReturnType<typeof createBackground>;

/**
 * Executes async runs: `concurrency` at a time, each under the same pool, caps and deadline as a sync
 * invocation. Their state is kept by `runs`, so queued ones survive a restart. No broker needed.
 */
export function createBackground(runner: Runner, store: Store, runs: Runs, concurrency: number) {
	const waiting: RunRecord[] = [];
	const active = new Set<Promise<void>>();
	let closed = false;
	const never = new AbortController().signal;

	function enqueue(record: RunRecord) {
		waiting.push(record);
		next();
	}

	function next() {
		while (!closed && active.size < concurrency && waiting.length > 0) {
			const record = waiting.shift()!;
			const done = execute(record).catch((err) => log('error', 'async run failed', { run: record.run_id, error: String(err) }));
			active.add(done);
			void done.finally(() => {
				active.delete(done);
				next();
			});
		}
	}

	async function execute(record: RunRecord) {
		const finish = (result: Partial<RunRecord>) => runs.save({ ...record, ...result, input: undefined, timeout_ms: undefined, finished_at: new Date().toISOString() }, true);
		const ref = await store.locate(record.function);
		if (!ref) return finish({ status: 'failed', error_message: 'The function was deleted before the run started.' });
		await runs.save({ ...record, status: 'running' });
		for (;;) {
			try {
				const result = await runner.run(ref, record.function_id, record.input, record.timeout_ms ?? 5_000, never, record.run_id);
				return finish(result);
			} catch (err) {
				// The pool is full: an async run waits for room instead of failing.
				if (err instanceof HttpError && err.status === 429 && !closed) {
					await sleep(RETRY_MS);
					continue;
				}
				throw err;
			}
		}
	}

	/** Runs left by the previous process: queued ones run now, interrupted ones are recorded as failed. */
	async function resume(pending: RunRecord[]) {
		for (const record of pending) {
			if (record.status === 'queued') enqueue(record);
			else await runs.save({ ...record, status: 'failed', error_message: 'The run was interrupted by a restart of the platform.', input: undefined, timeout_ms: undefined, finished_at: new Date().toISOString() }, true);
		}
	}

	/** Stops starting runs and waits (bounded) for those in progress; queued ones stay queued on disk. */
	async function close(waitMs: number) {
		closed = true;
		await Promise.race([Promise.allSettled([...active]), sleep(waitMs)]);
	}

	return { enqueue, resume, close };
}
