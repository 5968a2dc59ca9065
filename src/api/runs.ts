import { ApiError } from '../errors.js';
import { type History, type RunFilter, isRunId } from '../history.js';
import { type RunRecord, keptOutput } from '../result.js';
import type { Handler } from '../server.js';
import type { Store } from '../store.js';
import { checkName } from '../validate.js';

/** A run as shown: never its input, and at most as much output as history keeps now (older records held more). */
function present({ input: _input, timeout_ms: _timeout, ...shown }: RunRecord): RunRecord {
	return shown.output_truncated ? shown : { ...shown, ...keptOutput(shown.output) };
}

/** GET /runs/{run_id}: the run, queued, running or done. */
export function getRun(history: History): Handler {
	return async (req) => {
		const id = req.params.run_id ?? '';
		if (!isRunId(id)) throw new ApiError('invalid_run_id', 'run_id must be a run id as returned by an invocation.');
		const record = await history.get(id);
		if (!record) throw new ApiError('run_not_found', `No run ${id}.`);
		return { status: 200, body: present(record) };
	};
}

/** GET /runs?function=NAME&limit=N: recent runs, newest first. */
export function listRuns(history: History, store: Store): Handler {
	return async (req) => {
		const fn = req.query.get('function');
		const raw = req.query.get('limit') ?? '50';
		const limit = Number(raw);
		if (!/^\d+$/.test(raw) || limit < 1 || limit > 1000) throw new ApiError('invalid_limit', 'limit must be an integer from 1 to 1000.');
		let filter: RunFilter = null;
		if (fn !== null) {
			// By the function's id: runs of an earlier function of the same name are not its own.
			const ref = await store.locate(checkName(fn));
			filter = ref ? { id: await store.functionId(ref) } : { name: fn };
		}
		return { status: 200, body: (await history.list(filter, limit)).map(present) };
	};
}
