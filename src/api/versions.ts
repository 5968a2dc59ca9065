import { ApiError } from '../errors.js';
import type { Scheduler } from '../scheduler.js';
import type { Handler } from '../server.js';
import { type Store, UnsafeFile, VersionNotFound } from '../store.js';
import { checkName } from '../validate.js';
import { functionNotFound, present } from './functions.js';

// A version number as the path or a body gives it: digits only, no sign, no leading zero, a safe integer.
const NUMBER = /^[1-9]\d{0,14}$/;

function invalid(): ApiError {
	return new ApiError('invalid_version', 'version must be a positive integer, as GET /functions/NAME/versions lists them.');
}

/** The version number in the path, parsed strictly: nothing else of it reaches the store. */
function pathVersion(raw: string | undefined): number {
	if (raw === undefined || !NUMBER.test(raw)) throw invalid();
	return Number(raw);
}

/** The current version of a function as the file on disk says (null: unsafe or too large to keep); throws 404 when there is none. */
async function currentVersion(store: Store, name: string): Promise<number | null> {
	if (!store.exists(name)) throw functionNotFound(name);
	// Brings the versions up to date with a file edited by hand since it was last seen.
	const ref = await store.locate(name).catch((err: unknown) => {
		if (err instanceof UnsafeFile) return null;
		throw err;
	});
	return ref?.versionNumber ?? null;
}

/** GET /functions/{name}/versions: the kept versions, newest first; `current` marks the one on disk now. */
export function listVersions(store: Store): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const current = await currentVersion(store, name);
		const versions = await store.versions.list(name);
		return { status: 200, body: versions.map((v) => ({ ...v, current: v.version === current })) };
	};
}

/** GET /functions/{name}/versions/{n}: one kept version with its source. */
export function getVersion(store: Store): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const version = pathVersion(req.params.version);
		const current = await currentVersion(store, name);
		const kept = await store.versions.read(name, version);
		if (!kept) throw new VersionNotFound(name, version);
		const { source, ...info } = kept;
		return { status: 200, body: { ...info, current: version === current, source_code: source.toString('utf8') } };
	};
}

/**
 * POST /functions/{name}/rollback {"version": N}: the source of version N becomes current, as a new
 * version (none when it is current already). Answers the function as GET /functions/{name} does.
 */
export function rollbackFunction(store: Store, scheduler: Scheduler): Handler {
	return async (req) => {
		const name = checkName(req.params.name);
		const body = await req.json();
		for (const key of Object.keys(body)) if (key !== 'version') throw new ApiError('unknown_field', `Unknown field "${key}"; allowed: version.`);
		const wanted = body.version;
		// The same rule as in the path: a number written as one.
		if (typeof wanted !== 'number' || !NUMBER.test(String(wanted))) throw invalid();
		const done = await store.rollback(name, wanted);
		if (!done) throw functionNotFound(name);
		// New code wins, as for POST /functions: the old source's instances take no new requests.
		if (done.changed) scheduler.retireFunction(name, await store.locate(name).catch(() => null));
		return { status: 200, body: present(done.record) };
	};
}
