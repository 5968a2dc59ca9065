import { randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { glob } from 'tinyglobby';
import type { Config, Language } from './config.js';
import { isValidName } from './validate.js';

/** A function as the API shows it. */
export interface FunctionRecord {
	id: string;
	name: string;
	language: Language;
	source_code: string;
	created_at: string;
}

/** Where a function's source lies; what an invocation needs, without reading the source. */
export interface SourceRef {
	name: string;
	language: Language;
	path: string;
	file: string;
	/** Changes whenever the file is replaced or edited: a container runs exactly one version. */
	version: string;
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
 * hand is a function. Ids and creation times live in `meta/NAME.json`, made on first sight.
 */
export function createStore(config: Config) {
	const functionsDir = join(config.dataDir, 'functions');
	const metaDir = join(config.dataDir, 'meta');
	const locks = new Map<string, Promise<unknown>>();
	// Ids change only through this store, so invocations read them from memory, not from disk.
	const metas = new Map<string, Meta>();

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
		await mkdir(functionsDir, { recursive: true });
		await mkdir(metaDir, { recursive: true });
		// Temp files of writes cut short by a crash: never functions, safe to drop.
		for (const dir of [functionsDir, metaDir]) {
			for (const file of await glob('.*.tmp', { cwd: dir, dot: true, onlyFiles: true })) await rm(join(dir, file), { force: true });
		}
	}

	async function locate(name: string): Promise<SourceRef | null> {
		if (!isValidName(name)) return null;
		for (const language of LOOKUP_ORDER) {
			const file = name + EXTENSIONS[language];
			const path = join(functionsDir, file);
			// Sync on purpose: on the warm path this stat is the only disk work, and a threadpool
			// round trip (plus an ENOENT error object for a Deno function) costs more than the stat.
			const info = statSync(path, { bigint: true, throwIfNoEntry: false });
			if (info?.isFile()) return { name, language, path, file, version: `${language}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}` };
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
		const meta = await ensureMeta(ref.name, async () => (await stat(ref.path)).mtime);
		return { id: meta.id, name: ref.name, language: ref.language, source_code: source, created_at: meta.created_at };
	}

	async function get(name: string): Promise<FunctionRecord | null> {
		const ref = await locate(name);
		return ref && load(ref);
	}

	async function functionId(ref: SourceRef): Promise<string> {
		return (await ensureMeta(ref.name, async () => (await stat(ref.path)).mtime)).id;
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

	async function save(name: string, language: Language, source: string): Promise<FunctionRecord> {
		return withLock(name, async () => {
			const previous = await locate(name);
			const file = name + EXTENSIONS[language];
			const temp = await writeTemp(functionsDir, file, source);
			await rename(temp, join(functionsDir, file));
			// One name, one source: the other language's file goes once the new one is in place.
			for (const other of LOOKUP_ORDER) {
				if (other !== language) await rm(join(functionsDir, name + EXTENSIONS[other]), { force: true });
			}
			await syncDir(functionsDir);
			// A replaced function keeps its id; a new one drops whatever a hand-deleted namesake left.
			if (!previous) await dropMeta(name);
			const meta = await ensureMeta(name, async () => new Date());
			return { id: meta.id, name, language, source_code: source, created_at: meta.created_at };
		});
	}

	async function remove(name: string): Promise<boolean> {
		return withLock(name, async () => {
			const ref = await locate(name);
			if (!ref) return false;
			for (const language of LOOKUP_ORDER) await rm(join(functionsDir, name + EXTENSIONS[language]), { force: true });
			await dropMeta(name);
			await syncDir(functionsDir);
			return true;
		});
	}

	return { init, locate, get, functionId, names, list, save, remove, functionsDir };
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
async function syncDir(dir: string) {
	const handle = await open(dir, 'r');
	try {
		await handle.sync();
	} finally {
		await handle.close();
	}
}
