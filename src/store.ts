import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { glob } from 'tinyglobby';
import type { Config, Language } from './config.js';
import { badRequest } from './errors.js';
import { log } from './log.js';
import { type Settings, type SettingsPatch, boundSettings, isValidName } from './validate.js';

/** A function as the API shows it. */
export interface FunctionRecord {
	id: string;
	name: string;
	language: Language;
	source_code: string;
	created_at: string;
	settings: Settings;
}

/** Where a function's source lies; what an invocation needs, without reading the source. */
export interface SourceRef {
	name: string;
	language: Language;
	path: string;
	file: string;
	/** Changes whenever the file is replaced or edited, or its settings change: a container runs exactly one version. */
	version: string;
	settings: Settings;
}

interface Meta {
	id: string;
	created_at: string;
}

export const EXTENSIONS: Readonly<Record<Language, string>> = { python: '.py', deno: '.ts' };
// Python first: when both files lie there, the Python one runs, as in the original system.
const LOOKUP_ORDER: readonly Language[] = ['python', 'deno'];

export type Store = ReturnType<typeof createStore>;

/**
 * Function sources live as `functions/NAME.py|.ts` and nothing else lives there, so a file dropped by
 * hand is a function. Ids and creation times live in `meta/NAME.json`, made on first sight; settings
 * in `settings/NAME.json`.
 */
export function createStore(config: Config) {
	const functionsDir = join(config.dataDir, 'functions');
	const metaDir = join(config.dataDir, 'meta');
	const settingsDir = join(config.dataDir, 'settings');
	const locks = new Map<string, Promise<unknown>>();
	// Ids and settings change only through this store, so invocations read them from memory, not disk.
	const metas = new Map<string, Meta>();
	const settingsCache = new Map<string, { settings: Settings; stamp: string }>();

	/** Runs `task` after every earlier task on the same name: writes of one name never interleave. */
	function withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
		const previous = locks.get(name) ?? Promise.resolve();
		const run = previous.then(task, task);
		const settled = run.catch(() => {});
		locks.set(name, settled);
		void settled.then(() => locks.get(name) === settled && locks.delete(name));
		return run;
	}

	async function init() {
		for (const dir of [functionsDir, metaDir, settingsDir]) {
			await mkdir(dir, { recursive: true });
			// Temp files of writes cut short by a crash: never functions, safe to drop.
			for (const file of await glob('.*.tmp', { cwd: dir, dot: true, onlyFiles: true })) await rm(join(dir, file), { force: true });
		}
		// A language change cut short by a crash: the new source is in place, the old one goes now.
		for (const file of await glob('*.replacing', { cwd: metaDir, onlyFiles: true })) {
			const name = file.slice(0, -'.replacing'.length);
			const language = (await readFile(join(metaDir, file), 'utf8').catch(() => '')).trim() as Language;
			if (language in EXTENSIONS && statSync(join(functionsDir, name + EXTENSIONS[language]), { throwIfNoEntry: false })) {
				for (const other of LOOKUP_ORDER) if (other !== language) await rm(join(functionsDir, name + EXTENSIONS[other]), { force: true });
			}
			await rm(join(metaDir, file), { force: true });
		}
		for (const file of await glob('*.json', { cwd: settingsDir, onlyFiles: true })) await readSettings(file.slice(0, -5));
	}

	async function readSettings(name: string): Promise<{ settings: Settings; stamp: string }> {
		const cached = settingsCache.get(name);
		if (cached) return cached;
		let text = '{}';
		try {
			text = await readFile(join(settingsDir, `${name}.json`), 'utf8');
		} catch {}
		let stored: unknown = {};
		try {
			stored = JSON.parse(text);
		} catch {
			log('warn', 'unreadable settings file, using defaults', { function: name });
		}
		const { settings, changed } = boundSettings(stored, config);
		if (changed.length > 0) log('warn', 'settings file outside the operator caps; using bounded values', { function: name, fields: changed });
		const entry = { settings, stamp: createHash('sha256').update(text).digest('hex').slice(0, 12) };
		settingsCache.set(name, entry);
		return entry;
	}

	/** The settings a change results in; null fields go back to the default. Throws a 400 if they clash. */
	function merge(current: Settings, patch: SettingsPatch): Settings {
		const next: Record<string, unknown> = { ...current };
		for (const [key, value] of Object.entries(patch)) {
			if (value === null) delete next[key];
			else if (value !== undefined) next[key] = value;
		}
		// Checked on the result, not the patch: min_warm may meet a max_replicas set earlier, or the default.
		const own = next.max_replicas as number | undefined;
		const replicas = own ?? config.maxReplicas;
		if (((next.min_warm as number | undefined) ?? 0) > replicas) {
			throw badRequest('invalid_min_warm', `min_warm cannot exceed max_replicas (${replicas}${own === undefined ? ', LOWCODE_FAAS_MAX_REPLICAS' : ''}).`);
		}
		return next as Settings;
	}

	/** Applies a settings change durably. */
	async function writeSettings(name: string, patch: SettingsPatch): Promise<Settings> {
		const next = merge((await readSettings(name)).settings, patch);
		const text = JSON.stringify(next) + '\n';
		const temp = await writeTemp(settingsDir, `${name}.json`, text);
		await rename(temp, join(settingsDir, `${name}.json`));
		await syncDir(settingsDir);
		settingsCache.set(name, { settings: next, stamp: createHash('sha256').update(text).digest('hex').slice(0, 12) });
		return next;
	}

	async function dropSettings(name: string) {
		settingsCache.delete(name);
		await rm(join(settingsDir, `${name}.json`), { force: true });
	}

	/** Functions that asked to be kept warm (min_warm > 0), with how many containers. */
	function warmTargets(): Map<string, number> {
		const targets = new Map<string, number>();
		for (const [name, { settings }] of settingsCache) if (settings.min_warm) targets.set(name, settings.min_warm);
		return targets;
	}

	async function locate(name: string): Promise<SourceRef | null> {
		if (!isValidName(name)) return null;
		for (const language of LOOKUP_ORDER) {
			const file = name + EXTENSIONS[language];
			const path = join(functionsDir, file);
			// Sync on purpose: on the warm path this stat is the only disk work, and a threadpool
			// round trip (plus an ENOENT error object for a Deno function) costs more than the stat.
			const info = statSync(path, { bigint: true, throwIfNoEntry: false });
			if (info?.isFile()) {
				const { settings, stamp } = settingsCache.get(name) ?? (await readSettings(name));
				return { name, language, path, file, settings, version: `${language}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}:${stamp}` };
			}
		}
		return null;
	}

	async function readMeta(name: string): Promise<Meta | null> {
		const cached = metas.get(name);
		if (cached) return cached;
		try {
			const meta = JSON.parse(await readFile(join(metaDir, `${name}.json`), 'utf8')) as Meta;
			if (typeof meta.id !== 'string' || typeof meta.created_at !== 'string') return null;
			metas.set(name, meta);
			return meta;
		} catch {
			return null;
		}
	}

	async function dropMeta(name: string) {
		metas.delete(name);
		await rm(join(metaDir, `${name}.json`), { force: true });
	}

	/** The function's id and creation time, made and kept the first time its source is seen. */
	async function ensureMeta(name: string, createdAt: () => Promise<Date>): Promise<Meta> {
		const existing = await readMeta(name);
		if (existing) return existing;
		const meta: Meta = { id: randomUUID(), created_at: (await createdAt()).toISOString() };
		// link() fails when the name exists, so two first sightings agree on one id.
		const temp = await writeTemp(metaDir, `${name}.json`, JSON.stringify(meta) + '\n');
		try {
			await link(temp, join(metaDir, `${name}.json`));
			await syncDir(metaDir);
			metas.set(name, meta);
			return meta;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
			return (await readMeta(name)) ?? meta;
		} finally {
			await unlink(temp).catch(() => {});
		}
	}

	async function load(ref: SourceRef): Promise<FunctionRecord | null> {
		let source: string;
		try {
			source = await readFile(ref.path, 'utf8');
		} catch {
			return null; // removed between locate and read
		}
		const meta = await ensureMeta(ref.name, () => firstSeen(ref.path));
		return { id: meta.id, name: ref.name, language: ref.language, source_code: source, created_at: meta.created_at, settings: ref.settings };
	}

	async function get(name: string): Promise<FunctionRecord | null> {
		const ref = await locate(name);
		return ref && load(ref);
	}

	async function functionId(ref: SourceRef): Promise<string> {
		return (await ensureMeta(ref.name, () => firstSeen(ref.path))).id;
	}

	/** Names of every function in the folder, sorted. */
	async function names(): Promise<string[]> {
		const files = await glob(['*.py', '*.ts'], { cwd: functionsDir, onlyFiles: true });
		return [...new Set(files.map((file) => file.slice(0, -3)))].filter(isValidName).sort();
	}

	async function list(): Promise<FunctionRecord[]> {
		const records = await Promise.all((await names()).map((name) => get(name)));
		return records.filter((record): record is FunctionRecord => record !== null);
	}

	/**
	 * Creates or replaces a function. Everything but the source is written first, so that a failure
	 * (a full disk) changes nothing visible and a reader never sees the new source with an old id.
	 */
	async function save(name: string, language: Language, source: string, patch: SettingsPatch = {}): Promise<FunctionRecord> {
		return withLock(name, async () => {
			const previous = await locate(name);
			// Refused before anything is written.
			merge(previous ? (await readSettings(name)).settings : {}, patch);
			// A replaced function keeps its id and settings; a new one drops what a hand-deleted namesake left.
			if (!previous) {
				await dropMeta(name);
				await dropSettings(name);
			}
			const meta = await ensureMeta(name, async () => new Date());
			const file = name + EXTENSIONS[language];
			const others = LOOKUP_ORDER.filter((other) => other !== language && statSync(join(functionsDir, name + EXTENSIONS[other]), { throwIfNoEntry: false }));
			const temp = await writeTemp(functionsDir, file, source);
			let settings: Settings;
			try {
				// After the source is safely in its temp file: a full disk here still changes nothing.
				settings = Object.keys(patch).length > 0 ? await writeSettings(name, patch) : (await readSettings(name)).settings;
			} catch (err) {
				await unlink(temp).catch(() => {});
				throw err;
			}
			// One name, one source: if a crash falls between the rename and the removal of the other
			// language's file, this note tells the next start which one stays.
			const intent = join(metaDir, `${name}.replacing`);
			if (others.length > 0) {
				await rename(await writeTemp(metaDir, `${name}.replacing`, language), intent);
				await syncDir(metaDir);
			}
			await rename(temp, join(functionsDir, file));
			for (const other of others) await rm(join(functionsDir, name + EXTENSIONS[other]), { force: true });
			await syncDir(functionsDir);
			if (others.length > 0) await rm(intent, { force: true });
			return { id: meta.id, name, language, source_code: source, created_at: meta.created_at, settings };
		});
	}

	/** Changes a function's settings; null when there is no such function. */
	async function updateSettings(name: string, patch: SettingsPatch): Promise<FunctionRecord | null> {
		return withLock(name, async () => {
			if (!(await locate(name))) return null;
			await writeSettings(name, patch);
			return get(name);
		});
	}

	async function remove(name: string): Promise<boolean> {
		return withLock(name, async () => {
			const ref = await locate(name);
			if (!ref) return false;
			for (const language of LOOKUP_ORDER) await rm(join(functionsDir, name + EXTENSIONS[language]), { force: true });
			await dropMeta(name);
			await dropSettings(name);
			await syncDir(functionsDir);
			return true;
		});
	}

	return { init, locate, get, functionId, names, list, save, updateSettings, remove, warmTargets };
}

/** When a hand-dropped file was first seen: its modification time, or now if it just vanished. */
async function firstSeen(path: string): Promise<Date> {
	return (await stat(path).catch(() => null))?.mtime ?? new Date();
}

/** Writes `data` to a fresh dotfile beside `file` and flushes it; the caller renames or links it. */
async function writeTemp(dir: string, file: string, data: string): Promise<string> {
	const temp = join(dir, `.${file}.${randomBytes(6).toString('hex')}.tmp`);
	const handle = await open(temp, 'wx', 0o644);
	try {
		await handle.writeFile(data);
		await handle.sync();
	} catch (err) {
		await handle.close();
		await unlink(temp).catch(() => {});
		throw err;
	}
	await handle.close();
	return temp;
}

/** Makes a rename or unlink in `dir` durable. */
export async function syncDir(dir: string) {
	const handle = await open(dir, 'r');
	try {
		await handle.sync();
	} finally {
		await handle.close();
	}
}
