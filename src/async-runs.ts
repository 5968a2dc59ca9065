import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_ASYNC_WAITING } from './config.js';
import { FUNCTION_DELETED, type History } from './history.js';
import { log } from './log.js';
import type { RunRecord } from './result.js';
import type { Runner } from './runner.js';
import { PoolFull } from './scheduler.js';
import { timeoutFor } from './settings.js';
import { type Store, UnsafeFile } from './store.js';

// Async runs waiting for room in the pool try again this often.
const RETRY_MS = 1_000;

export type AsyncRuns = ReturnType<typeof createAsyncRuns>;

/**
 * Executes async runs: `concurrency` at a time, each under the same pool, caps and deadline as a sync
 * invocation. Their state is kept by `history`, so queued ones survive a restart. No broker needed.
 */
export function createAsyncRuns(runner: Runner, store: Store, history: History, concurrency: number) {
	const waiting: string[] = [];
	const active = new Set<Promise<void>>();
	let closed = false;
	const never = new AbortController().signal;

	function full() {
		return waiting.length >= MAX_ASYNC_WAITING;
	}

	function enqueue(runId: string) {
		waiting.push(runId);
		next();
	}

	function next() {
		while (!closed && active.size < concurrency && waiting.length > 0) {
			const runId = waiting.shift()!;
			const done = execute(runId).catch((err) => log('error', 'async run failed', { run: runId, error: String(err) }));
			active.add(done);
			void done.finally(() => {
				active.delete(done);
				next();
			});
		}
	}

	async function execute(runId: string) {
		const record = await history.get(runId);
		if (record?.status !== 'queued') return;
		const finish = (result: Partial<RunRecord>) => history.save({ ...record, ...result, input: undefined, timeout_ms: undefined, finished_at: new Date().toISOString() }, true);
		// On disk before it starts: a crash from here on records it as interrupted, never runs it twice
		// (so its input need not be kept again).
		await history.save({ ...record, status: 'running', input: undefined, timeout_ms: undefined }, true);
		for (;;) {
			// Looked up at each attempt: the function may have changed while this run waited for room.
			const ref = await store.locate(record.function).catch((err: unknown) => {
				if (err instanceof UnsafeFile) return err;
				throw err;
			});
			// Its file was replaced by a link (or the like) while the run waited.
			if (ref instanceof UnsafeFile) return finish({ status: 'failed', error_message: ref.message });
			// A namesake created since is another function: it never runs this one's input.
			if (!ref || (await store.functionId(ref)) !== record.function_id) return finish({ status: 'failed', error_message: FUNCTION_DELETED });
			try {
				const result = await runner.run(ref, record.function_id, record.input, timeoutFor(ref.settings, record.timeout_ms), never, record.run_id);
				return finish(result);
			} catch (err) {
				// The pool is full: an async run waits for room instead of failing.
				if (err instanceof PoolFull && !closed) {
					await sleep(RETRY_MS);
					continue;
				}
				return finish({ status: 'failed', error_message: `The run could not be started: ${(err as Error).message}` });
			}
		}
	}

	/** Runs left by the previous process: queued ones run now, interrupted ones are recorded as failed. */
	async function resume(pending: RunRecord[]) {
		for (const record of pending) {
			if (record.status === 'queued') enqueue(record.run_id);
			else await history.save({ ...record, status: 'failed', error_message: 'The run was interrupted by a restart of the platform.', input: undefined, timeout_ms: undefined, finished_at: new Date().toISOString() }, true);
		}
	}

	/** Stops starting runs and waits (bounded) for those in progress; queued ones stay queued on disk. */
	async function close(waitMs: number) {
		closed = true;
		await Promise.race([Promise.allSettled([...active]), sleep(waitMs)]);
	}

	return { enqueue, full, resume, close };
}
