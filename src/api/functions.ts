import type { Config } from '../config.js';
import { notFound } from '../errors.js';
import type { Pool } from '../pool.js';
import type { Handler } from '../server.js';
import type { Store } from '../store.js';
import { checkCreate, checkName } from '../validate.js';

const missing = (name: string) => notFound('function_not_found', `No function named "${name}".`);

/** POST /functions: creates a function, or replaces the source of an existing one. */
export function createFunction(config: Config, store: Store, pool: Pool): Handler {
	return async (req) => {
		const body = checkCreate(await req.json(), config.maxSourceBytes);
		const record = await store.save(body.name, body.language, body.source_code);
		// New code wins: containers of the old source take no new requests.
		pool.retireFunction(body.name);
		return { status: 201, body: record };
	};
}

/** GET /functions: every function in the folder, read anew so files dropped by hand show up. */
export function listFunctions(store: Store): Handler {
	return async () => ({ status: 200, body: await store.list() });
}

/** GET /functions/{name} */
export function getFunction(store: Store): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const record = await store.get(name);
		if (!record) throw missing(name);
		return { status: 200, body: record };
	};
}

/** DELETE /functions/{name} */
export function deleteFunction(store: Store, pool: Pool): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const removed = await store.remove(name);
		pool.retireFunction(name);
		if (!removed) throw missing(name);
		return { status: 204 };
	};
}

export { missing as functionNotFound };
