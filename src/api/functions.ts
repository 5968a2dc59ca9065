import type { Config } from '../config.js';
import type { ContainerLogs } from '../container-logs.js';
import { ApiError } from '../errors.js';
import type { History } from '../history.js';
import type { Scheduler } from '../scheduler.js';
import type { Handler } from '../server.js';
import type { Settings } from '../settings.js';
import type { Store } from '../store.js';
import { checkCreate, checkName, checkPatch, isValidName } from '../validate.js';

const missing = (name: string) => new ApiError('function_not_found', `No function named "${name}".`);

/** A function as the API shows it: environment values only as their names unless asked for. */
function present<T extends object>(record: T, showEnv = false): T {
	const settings = (record as { settings?: Settings }).settings;
	if (!settings?.env) return record;
	const { env, ...rest } = settings;
	return { ...record, settings: { ...rest, env: showEnv ? env : Object.keys(env) } };
}

const wantsEnv = (query: URLSearchParams) => query.get('show_env') === 'true';

/** POST /functions: creates a function, or replaces the source of an existing one. */
export function createFunction(config: Config, store: Store, scheduler: Scheduler): Handler {
	return async (req) => {
		const body = checkCreate(await req.json(), config);
		const record = await store.save(body.name, body.language, body.source_code, body.settings);
		// New code wins: instances of the old source take no new requests, nor do its queued invocations.
		scheduler.retireFunction(body.name, await store.locate(body.name).catch(() => null));
		return { status: 201, body: present(record) };
	};
}

/** PATCH /functions/{name}: changes settings; they apply from the next container on. */
export function patchFunction(config: Config, store: Store, scheduler: Scheduler): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const patch = checkPatch(await req.json(), config);
		const record = await store.updateSettings(name, patch);
		if (!record) throw missing(name);
		scheduler.retireFunction(name, await store.locate(name).catch(() => null));
		return { status: 200, body: present(record, wantsEnv(req.query)) };
	};
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/**
 * GET /functions?limit=100&after=NAME: a page of functions sorted by name, without their sources, read
 * anew so files dropped by hand show up. The next page is `after` the last name shown; a `Link: <...>;
 * rel="next"` header gives it when there is one.
 */
export function listFunctions(store: Store): Handler {
	return async (req) => {
		const raw = req.query.get('limit') ?? String(DEFAULT_LIMIT);
		const limit = Number(raw);
		if (!/^\d+$/.test(raw) || limit < 1 || limit > MAX_LIMIT) throw new ApiError('invalid_limit', `limit must be an integer from 1 to ${MAX_LIMIT}.`);
		const after = req.query.get('after');
		if (after !== null && !isValidName(after)) throw new ApiError('invalid_cursor', 'after must be a function name, as the last one of the previous page.');
		const { functions, next } = await store.list(after, limit);
		const headers: Record<string, string> = {};
		if (next !== null) {
			const query = new URLSearchParams(req.query);
			query.set('limit', String(limit));
			query.set('after', next);
			headers.link = `</functions?${query}>; rel="next"`;
		}
		return { status: 200, headers, body: functions.map((f) => present(f, wantsEnv(req.query))) };
	};
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
export function deleteFunction(store: Store, scheduler: Scheduler, logs: ContainerLogs, history: History): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const removed = await store.remove(name);
		// Its instances go, and so does the output kept from removed ones.
		scheduler.retireFunction(name);
		logs.forget(name);
		if (!removed) throw missing(name);
		// Its run history goes with it; its queued runs fail.
		if (removed.id) await history.remove(removed.id);
		return { status: 204 };
	};
}

/** GET /functions/{name}/logs?tail=200: what its containers printed, as text. */
export function functionLogs(store: Store, scheduler: Scheduler, logs: ContainerLogs): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const raw = req.query.get('tail') ?? '200';
		const tail = Number(raw);
		if (!/^\d+$/.test(raw) || tail < 1 || tail > 10_000) throw new ApiError('invalid_tail', 'tail must be an integer from 1 to 10000.');
		// Logs of a function whose file is unsafe to use are still shown: they are not read from it.
		if (!store.exists(name)) throw missing(name);
		// The text is what functions printed: never to be sniffed into something a browser would render.
		return { status: 200, headers: { 'x-content-type-options': 'nosniff' }, text: await logs.render(name, scheduler.liveNames(name), tail) };
	};
}

export { missing as functionNotFound, present };
