import type { Config } from '../config.js';
import { badRequest, notFound } from '../errors.js';
import type { Pool } from '../pool.js';
import type { Runs } from '../runs.js';
import type { Handler } from '../server.js';
import type { FunctionRecord, Store } from '../store.js';
import { checkCreate, checkName, checkPatch } from '../validate.js';

const missing = (name: string) => notFound('function_not_found', `No function named "${name}".`);

/** A function as the API shows it: environment values only as their names unless asked for. */
function present(record: FunctionRecord, showEnv = false) {
	const { env, ...rest } = record.settings;
	if (!env) return record;
	return { ...record, settings: { ...rest, env: showEnv ? env : Object.keys(env) } };
}

const wantsEnv = (query: URLSearchParams) => query.get('show_env') === 'true';

/** POST /functions: creates a function, or replaces the source of an existing one. */
export function createFunction(config: Config, store: Store, pool: Pool): Handler {
	return async (req) => {
		const body = checkCreate(await req.json(), config.maxSourceBytes);
		const record = await store.save(body.name, body.language, body.source_code, body.settings);
		// New code wins: containers of the old source take no new requests.
		pool.retireFunction(body.name);
		return { status: 201, body: present(record) };
	};
}

/** PATCH /functions/{name}: changes settings; they apply from the next container on. */
export function patchFunction(store: Store, pool: Pool): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const patch = checkPatch(await req.json());
		const record = await store.updateSettings(name, patch);
		if (!record) throw missing(name);
		pool.retireFunction(name);
		return { status: 200, body: present(record, wantsEnv(req.query)) };
	};
}

/** GET /functions: every function in the folder, read anew so files dropped by hand show up. */
export function listFunctions(store: Store): Handler {
	return async (req) => ({ status: 200, body: (await store.list()).map((record) => present(record, wantsEnv(req.query))) });
}

/** GET /functions/{name} */
export function getFunction(store: Store): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const record = await store.get(name);
		if (!record) throw missing(name);
		return { status: 200, body: present(record, wantsEnv(req.query)) };
	};
}

/** DELETE /functions/{name} */
export function deleteFunction(store: Store, pool: Pool, runs: Runs): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const ref = await store.locate(name);
		const id = ref && (await store.functionId(ref));
		const removed = await store.remove(name);
		pool.forget(name);
		if (!removed) throw missing(name);
		// Its run history goes with it; its queued runs fail.
		if (id) await runs.remove(id);
		return { status: 204 };
	};
}

/** GET /functions/{name}/logs?tail=200: what its containers printed, as text. */
export function functionLogs(store: Store, pool: Pool): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const raw = req.query.get('tail') ?? '200';
		const tail = Number(raw);
		if (!/^\d+$/.test(raw) || tail < 1 || tail > 10_000) throw badRequest('invalid_tail', 'tail must be an integer from 1 to 10000.');
		if (!(await store.locate(name))) throw missing(name);
		return { status: 200, text: await pool.logs(name, tail) };
	};
}

export { missing as functionNotFound };
