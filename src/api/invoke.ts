import type { AsyncRuns } from '../async-runs.js';
import { ApiError } from '../errors.js';
import { type History, newRunId } from '../history.js';
import { type RunRecord, type RunResult, queuedRecord } from '../result.js';
import type { Runner } from '../runner.js';
import type { Scheduler } from '../scheduler.js';
import type { Handler } from '../server.js';
import { timeoutFor } from '../settings.js';
import type { Store } from '../store.js';
import { checkInvoke, checkName } from '../validate.js';
import { functionNotFound } from './functions.js';

/** A finished run as history keeps it. */
function recordOf(result: RunResult, fn: string, createdAt: Date): RunRecord {
	return { ...result, function: fn, created_at: createdAt.toISOString(), finished_at: new Date().toISOString() };
}

/**
 * POST /functions/{name}/invoke: runs the function; 200 with a RunResult whenever it was run.
 * With ?async=true: 202 with the run id at once, the run goes on in the background.
 */
export function invokeFunction(store: Store, scheduler: Scheduler, runner: Runner, history: History, asyncRuns: AsyncRuns): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const mode = req.query.get('async');
		if (mode !== null && mode !== 'true' && mode !== 'false') throw new ApiError('invalid_async', 'async must be true or false.');
		const { input, timeoutMs } = checkInvoke(await req.json({ optional: true }));
		const ref = await store.locate(name);
		if (!ref) {
			// Deleted by hand: its warm instances go too.
			scheduler.retireFunction(name);
			throw functionNotFound(name);
		}
		const functionId = await store.functionId(ref);
		const timeout = timeoutFor(ref.settings, timeoutMs);
		const createdAt = new Date();
		if (mode === 'true') {
			if (asyncRuns.full()) throw new ApiError('too_many_async_runs', 'Too many async runs are waiting; retry shortly.', { 'retry-after': '5' });
			const record = queuedRecord(newRunId(), functionId, name, input, timeout, createdAt);
			// On disk before it is acknowledged: a crash after the 202 still runs it.
			await history.save(record, true);
			asyncRuns.enqueue(record.run_id);
			return { status: 202, body: { run_id: record.run_id, status: 'queued' } };
		}
		const result = await runner.run(ref, functionId, input, timeout, req.signal);
		// History is written in a batch after the reply; only the record (with its output bounded) is made here.
		void history.save(recordOf(result, name, createdAt)).catch(() => {});
		return { status: 200, body: result };
	};
}
