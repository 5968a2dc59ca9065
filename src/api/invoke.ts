import type { Pool } from '../pool.js';
import type { Runner } from '../run.js';
import type { Handler } from '../server.js';
import type { Store } from '../store.js';
import { DEFAULT_TIMEOUT_MS, checkInvoke, checkName } from '../validate.js';
import { functionNotFound } from './functions.js';

/** POST /functions/{name}/invoke: runs the function; 200 with a RunResult whenever it was run. */
export function invokeFunction(store: Store, pool: Pool, runner: Runner): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const { input, timeoutMs } = checkInvoke(await req.json({ optional: true }));
		const ref = await store.locate(name);
		if (!ref) {
			// Deleted by hand: its warm containers go too.
			pool.retireFunction(name);
			throw functionNotFound(name);
		}
		const functionId = await store.functionId(ref);
		return { status: 200, body: await runner.run(ref, functionId, input, timeoutMs ?? ref.settings.timeout_ms ?? DEFAULT_TIMEOUT_MS, req.signal) };
	};
}
