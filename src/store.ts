import { type BigIntStats, lstatSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { glob } from 'tinyglobby';
import type { Config, Language } from './config.js';
import { ApiError } from './errors.js';
import { FOLDER_MODE, PRIVATE_MODE, SOURCE_MODE, dropTemps, fixModeSync, privateDir, readRegular, syncDir, unsafeReason, writeTemp } from './files.js';
import { createIdFiles } from './ids.js';
import { createKeyedLock } from './locks.js';
import { log } from './log.js';
import { type Settings, type SettingsPatch, createSettingsFiles, mergeSettings, warmTargets } from './settings.js';
import { isValidName } from './validate.js';
import { createVersions } from './versions.js';

/** A function as the API shows it. */
export interface FunctionRecord {
	id: string;
	name: string;
	language: Language;
	source_code: string;
	created_at: string;
	settings: Settings;
	/** The number of its current source among its versions; null for a source too large to keep. */
	version: number | null;
}

/** A function as GET /functions lists it: no source; or, for a file the platform will not use, why. */
export type FunctionSummary = (Omit<FunctionRecord, 'source_code'> & { size: number; updated_at: string }) | { name: string; language: Language; error: { code: string; message: string } };

/** Where a function's source lies; what an invocation needs, without reading the source. */
export interface SourceRef {
	name: string;
	language: Language;
	path: string;
	file: string;
	size: number;
	mtime: Date;
	/** Changes whenever the file is replaced or edited, or its settings change: a container runs exactly one version. */
	version: string;
	/** Which numbered version of the source the file is (see versions.ts); null for one too large to keep. */
	versionNumber: number | null;
	settings: Settings;
}

const EXTENSIONS: Readonly<Record<Language, string>> = { python: '.py', deno: '.ts' };
// Python first: when both files lie there, the Python one runs, as in the original system.
const LOOKUP_ORDER: readonly Language[] = ['python', 'deno'];
// Bound on reading a note of a language change.
const NOTE_LIMIT = 64 * 1024;

/** A function file that is a link, a FIFO, a folder...: neither served nor run. */
export class UnsafeFile extends ApiError {
	constructor(file: string, reason: string) {
		super('unsafe_function_file', `functions/${file} ${reason}; only a regular file is served or run. Replace it with a plain file, or create the function again.`);
	}
}

/** A version not kept: pruned, or never made. */
export class VersionNotFound extends ApiError {
	constructor(name: string, version: number) {
		super('version_not_found', `Function "${name}" has no version ${version} (only the newest versions are kept: see GET /functions/${name}/versions).`);
	}
}

/** A source on disk past the size the platform reads (dropped there by hand). */
export class SourceTooLarge extends ApiError {
	constructor(file: string, size: number, limit: number) {
		super('source_too_large', `functions/${file} is ${size} bytes; sources are read up to ${limit} bytes.`);
	}
}

export type Store = ReturnType<typeof createStore>;

/**
 * Function sources live as `functions/NAME.py|.ts` and nothing else lives there, so a file dropped by
 * hand is a function. Ids and creation times live in `meta/NAME.json`, made on first sight; settings
 * in `settings/NAME.json`.
 */
export function createStore(config: Config) {
	const functionsDir = join(config.dataDir, 'functions');
	const ids = createIdFiles(config.dataDir);
	const settings = createSettingsFiles(config);
	const versions = createVersions(config);
	// Runs each task after every earlier one on the same name: writes of one name never interleave.
	const withLock = createKeyedLock();

	async function init() {
		// A data folder made here is the platform's alone; one the admin made keeps its mode (it may be shared), with a warning if others may write in it.
		if (await mkdir(config.dataDir, { recursive: true, mode: FOLDER_MODE })) await chmod(config.dataDir, FOLDER_MODE);
		else if (((await lstat(config.dataDir)).mode & 0o022) !== 0) log('warn', 'the data folder is writable by other users: they could replace functions', { path: config.dataDir });
		// Explicitly: mkdir's mode is masked by the umask, and an earlier version left it 0755.
		await privateDir(functionsDir);
		await dropTemps(functionsDir);
		await ids.init();
		// A language change cut short by a crash: the new source is in place, the old one goes now.
		for (const file of await glob('*.replacing', { cwd: ids.dir, onlyFiles: true, followSymbolicLinks: false })) {
			const name = file.slice(0, -'.replacing'.length);
			const read = await readRegular(join(ids.dir, file), NOTE_LIMIT);
			const language = (read.kind === 'ok' ? read.data.toString('utf8') : '').trim() as Language;
			if (language in EXTENSIONS && lstatSync(join(functionsDir, name + EXTENSIONS[language]), { throwIfNoEntry: false })) {
				for (const other of LOOKUP_ORDER) if (other !== language) await rm(join(functionsDir, name + EXTENSIONS[other]), { force: true });
			}
			await rm(join(ids.dir, file), { force: true });
		}
		await settings.init();
		await versions.init();
	}

	/** The file that is the function's source and its lstat, or null; whether it is safe is the caller's question. */
	function findFile(name: string): { language: Language; file: string; path: string; info: BigIntStats } | null {
		if (!isValidName(name)) return null;
		for (const language of LOOKUP_ORDER) {
			const file = name + EXTENSIONS[language];
			const path = join(functionsDir, file);
			// Sync on purpose: on the warm path this stat is the only disk work, and a threadpool
			// round trip (plus an ENOENT error object for a Deno function) costs more than the stat.
			// lstat: a link dropped there must not make the platform serve or mount its target.
			const info = lstatSync(path, { bigint: true, throwIfNoEntry: false });
			if (info) return { language, file, path, info };
		}
		return null;
	}

	/** Throws a 409 when a folder bears one of the function's file names: it can be neither replaced nor removed. */
	function refuseFolders(name: string) {
		for (const language of LOOKUP_ORDER) {
			const file = name + EXTENSIONS[language];
			if (lstatSync(join(functionsDir, file), { throwIfNoEntry: false })?.isDirectory()) throw new UnsafeFile(file, 'is a folder; remove it by hand');
		}
	}

	/** Whether a file named for the function lies there, safe or not. */
	function exists(name: string): boolean {
		return findFile(name) !== null;
	}

	/** The function's source, or null when there is none; throws a 409 for a file that is not a plain, singly linked one. */
	async function locate(name: string): Promise<SourceRef | null> {
		const found = findFile(name);
		if (!found) return null;
		const { language, file, path } = found;
		let { info } = found;
		const reason = unsafeReason(info);
		if (reason) throw new UnsafeFile(file, reason);
		// Dropped by hand, or written under a strict umask by an earlier version: the container's user could not read it.
		if ((info.mode & 0o444n) !== 0o444n) {
			fixModeSync(path, SOURCE_MODE, (mode) => (mode & 0o444) !== 0o444);
			info = lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? info;
		}
		const { settings: own, stamp } = settings.cached(name) ?? (await settings.read(name));
		const size = Number(info.size);
		const key = statKey(language, info);
		// The file is read only when its stat changed since it was last seen: edited by hand, or first seen.
		const known = versions.known(name, key);
		const versionNumber = known !== undefined ? known : await recordSeen(name, language, file, path, key);
		return { name, language, path, file, settings: own, size, mtime: info.mtime, version: `${key}:${stamp}`, versionNumber };
	}

	/** Records the source file as the function's newest version if it is not that already (a hand edit, a first sighting). */
	async function recordSeen(name: string, language: Language, file: string, path: string, key: string): Promise<number | null> {
		const read = await readRegular(path, config.maxSourceBytes);
		if (read.kind === 'unsafe') throw new UnsafeFile(file, read.reason);
		// Removed since the stat: nothing to record; too large: not kept, and the reader is told so by a null.
		if (read.kind === 'missing') return null;
		if (read.kind !== 'ok') {
			versions.remember(name, key, null);
			return null;
		}
		// Keeping a version is bookkeeping: a full disk (or a versions folder unsafe to use) must not stop
		// the function from being read or run. Not remembered, so the next lookup tries again.
		const version = await versions.record(name, language, read.data).catch((err: unknown) => {
			log('warn', 'cannot keep a version of a source edited by hand', { function: name, error: String(err) });
			return null;
		});
		if (version !== null) versions.remember(name, key, version);
		return version;
	}

	/** The function with its source; null when it was removed since `locate`. Never follows a link swapped in since. */
	async function load(ref: SourceRef): Promise<FunctionRecord | null> {
		const read = await readRegular(ref.path, config.maxSourceBytes);
		if (read.kind === 'missing') return null;
		if (read.kind === 'unsafe') throw new UnsafeFile(ref.file, read.reason);
		if (read.kind === 'too_large') throw new SourceTooLarge(ref.file, read.size, config.maxSourceBytes);
		const identity = await ids.ensure(ref.name, () => firstSeen(ref.path));
		return { id: identity.id, name: ref.name, language: ref.language, source_code: read.data.toString('utf8'), created_at: identity.created_at, settings: ref.settings, version: ref.versionNumber };
	}

	async function get(name: string): Promise<FunctionRecord | null> {
		const ref = await locate(name);
		return ref && load(ref);
	}

	async function functionId(ref: SourceRef): Promise<string> {
		return (await ids.ensure(ref.name, () => firstSeen(ref.path))).id;
	}

	/** Names of every function in the folder, sorted; files that are not safe to use included, so that they are listed with why. */
	async function names(): Promise<string[]> {
		const files = (await readdir(functionsDir)).filter((file) => file.endsWith('.py') || file.endsWith('.ts'));
		return [...new Set(files.map((file) => file.slice(0, -3)))].filter(isValidName).sort();
	}

	/** One page of functions, sorted by name, after the name `after`; no sources are read. `next`: where the next page starts, null on the last. */
	async function list(after: string | null, limit: number): Promise<{ functions: FunctionSummary[]; next: string | null }> {
		const following = (await names()).filter((name) => after === null || name > after);
		const page = following.slice(0, limit);
		const functions = await Promise.all(page.map((name) => summarize(name)));
		// The page's last name, even if that file vanished meanwhile: the next page must not repeat or skip.
		return { functions: functions.filter((f): f is FunctionSummary => f !== null), next: following.length > limit ? page.at(-1)! : null };
	}

	async function summarize(name: string): Promise<FunctionSummary | null> {
		let ref: SourceRef | null;
		try {
			ref = await locate(name);
		} catch (err) {
			if (!(err instanceof UnsafeFile)) throw err;
			return { name, language: findFile(name)?.language ?? 'python', error: { code: err.code, message: err.message } };
		}
		if (!ref) return null;
		const identity = await ids.ensure(name, () => firstSeen(ref.path));
		return { id: identity.id, name, language: ref.language, created_at: identity.created_at, updated_at: ref.mtime.toISOString(), size: ref.size, settings: ref.settings, version: ref.versionNumber };
	}

	/**
	 * Creates or replaces a function. Everything but the source is written first, so that a failure
	 * (a full disk) changes nothing visible and a reader never sees the new source with an old id.
	 */
	function save(name: string, language: Language, source: string, patch: SettingsPatch = {}): Promise<FunctionRecord> {
		return withLock(name, () => write(name, language, Buffer.from(source, 'utf8'), patch));
	}

	/** What `save` does, under the name's lock; the source as bytes, so that a rollback restores them exactly. */
	async function write(name: string, language: Language, source: Buffer, patch: SettingsPatch): Promise<FunctionRecord> {
		// A file there that is not safe to use is replaced all the same (the rename replaces a link, not its target).
		refuseFolders(name);
		const previous = exists(name);
		// Refused before anything is written.
		mergeSettings(previous ? (await settings.read(name)).settings : {}, patch, config.maxReplicas);
		// A replaced function keeps its id, settings and versions; a new one drops what a hand-deleted namesake left.
		if (!previous) {
			await ids.drop(name);
			await settings.drop(name);
			await versions.drop(name);
		}
		const identity = await ids.ensure(name, async () => new Date());
		const file = name + EXTENSIONS[language];
		const others = LOOKUP_ORDER.filter((other) => other !== language && lstatSync(join(functionsDir, name + EXTENSIONS[other]), { throwIfNoEntry: false }));
		const temp = await writeTemp(functionsDir, file, source, SOURCE_MODE);
		let own: Settings = {};
		let version: number;
		try {
			// The source goes in place once its version, too, is safely in a temp file; the same source as the newest version adds none.
			version = await versions.record(name, language, source, async () => {
				// After the source is safely in its temp file: a full disk here still changes nothing.
				own = Object.keys(patch).length > 0 ? await settings.write(name, patch) : (await settings.read(name)).settings;
				await publish(name, language, temp, others);
			});
		} catch (err) {
			await unlink(temp).catch(() => {});
			throw err;
		}
		return { id: identity.id, name, language, source_code: source.toString('utf8'), created_at: identity.created_at, settings: own, version };
	}

	/** Renames the new source into place and removes the other language's file, if any. */
	async function publish(name: string, language: Language, temp: string, others: Language[]) {
		// One name, one source: if a crash falls between the rename and the removal of the other
		// language's file, this note tells the next start which one stays.
		const intent = join(ids.dir, `${name}.replacing`);
		if (others.length > 0) {
			await rename(await writeTemp(ids.dir, `${name}.replacing`, language, PRIVATE_MODE), intent);
			await syncDir(ids.dir);
		}
		await rename(temp, join(functionsDir, name + EXTENSIONS[language]));
		for (const other of others) await rm(join(functionsDir, name + EXTENSIONS[other]), { force: true });
		await syncDir(functionsDir);
		if (others.length > 0) await rm(intent, { force: true });
	}

	/**
	 * Makes kept version `version` the current source, as a new version (history is never rewritten).
	 * Null when there is no such function; `changed` is false when that source is current already (nothing written).
	 */
	async function rollback(name: string, version: number): Promise<{ record: FunctionRecord; changed: boolean } | null> {
		return withLock(name, async () => {
			if (!exists(name)) return null;
			// Brings the versions up to date with the file (edited by hand?); a file unsafe to use is replaced all the same.
			const current = await locate(name).catch((err: unknown) => {
				if (err instanceof UnsafeFile) return null;
				throw err;
			});
			const kept = await versions.read(name, version);
			if (!kept) throw new VersionNotFound(name, version);
			if (current?.versionNumber != null) {
				const now = current.versionNumber === version ? kept : await versions.read(name, current.versionNumber);
				const record = now && now.language === kept.language && now.source.equals(kept.source) ? await load(current) : null;
				if (record) return { record, changed: false };
			}
			return { record: await write(name, kept.language, kept.source, {}), changed: true };
		});
	}

	/** Changes a function's settings; null when there is no such function. */
	async function updateSettings(name: string, patch: SettingsPatch): Promise<FunctionRecord | null> {
		return withLock(name, async () => {
			const ref = await locate(name);
			if (!ref) return null;
			// The answer carries the source: refused before the change, not after it was made.
			if (ref.size > config.maxSourceBytes) throw new SourceTooLarge(ref.file, ref.size, config.maxSourceBytes);
			await settings.write(name, patch);
			return get(name);
		});
	}

	/** Deletes a function; false when there is none, else its id (null if it never had one), for what goes with it. */
	async function remove(name: string): Promise<false | { id: string | null }> {
		return withLock(name, async () => {
			// A link or a FIFO there can be deleted too: rm removes the link, never its target.
			if (!exists(name)) return false;
			refuseFolders(name);
			const id = (await ids.read(name))?.id ?? null;
			for (const language of LOOKUP_ORDER) await rm(join(functionsDir, name + EXTENSIONS[language]), { force: true });
			await ids.drop(name);
			await settings.drop(name);
			await versions.drop(name);
			await syncDir(functionsDir);
			return { id };
		});
	}

	/** Functions to keep warm and how many containers each: read at every sweep, so later changes count. */
	async function keepWarm(): Promise<Map<string, number>> {
		return warmTargets(settings.entries(), config.prewarm, config.prewarm === 'all' ? await names() : []);
	}

	return { init, locate, exists, load, get, functionId, list, save, rollback, updateSettings, remove, keepWarm, versions };
}

/** What identifies one state of a source file without reading it: replaced or edited, it changes. */
function statKey(language: Language, info: BigIntStats): string {
	return `${language}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

/** When a hand-dropped file was first seen: its modification time, or now if it just vanished. */
async function firstSeen(path: string): Promise<Date> {
	return (await lstat(path).catch(() => null))?.mtime ?? new Date();
}
