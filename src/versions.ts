import { lstatSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, Language } from './config.js';
import { ApiError } from './errors.js';
import { FOLDER_MODE, PRIVATE_MODE, dropTemps, privateDir, readRegular, syncDir, unsafeReason, writeTemp } from './files.js';
import { createKeyedLock } from './locks.js';
import { isValidName } from './validate.js';

/** One kept version of a function's source, as the API lists it. */
export interface VersionInfo {
	version: number;
	created_at: string;
	size: number;
	language: Language;
}

/** A version with its source, byte for byte. */
export interface VersionSource extends VersionInfo {
	source: Buffer;
}

const EXTENSIONS: Readonly<Record<Language, string>> = { python: '.py', deno: '.ts' };
// A version's file: its number (no leading zero, a safe integer) and its language's extension.
const VERSION_FILE = /^([1-9]\d{0,14})\.(py|ts)$/;

interface Entry {
	version: number;
	language: Language;
	file: string;
}

/** The version files among `files`, newest first. */
export function versionEntries(files: readonly string[]): Entry[] {
	const entries: Entry[] = [];
	for (const file of files) {
		const match = VERSION_FILE.exec(file);
		if (match) entries.push({ version: Number(match[1]), language: match[2] === 'py' ? 'python' : 'deno', file });
	}
	return entries.sort((a, b) => b.version - a.version);
}

/** The entries that go so that at most `keep` remain: the oldest; the newest (current) never. */
export function prunable<T extends { version: number }>(newestFirst: readonly T[], keep: number): T[] {
	return newestFirst.slice(Math.max(1, keep));
}

export type Versions = ReturnType<typeof createVersions>;

/**
 * Numbered versions of each function's source in `versions/NAME/N.py|.ts` (1, 2, 3...; the newest is
 * the current source), at most `versionsKeep` a function. A version is only ever added or pruned,
 * never rewritten: a rollback adds the old source as a new version. Each file's mtime is when it was
 * recorded. Which version a source file on disk is, is remembered by its stat key, so the warm path
 * reads nothing.
 */
export function createVersions(config: Pick<Config, 'dataDir' | 'versionsKeep' | 'maxSourceBytes'>) {
	const dir = join(config.dataDir, 'versions');
	// Runs each task after every earlier one on the same name: two sightings of one edit make one version.
	const withLock = createKeyedLock();
	/** Per function: the stat key of its source file last seen, and which version that is (null: none, too large to keep). */
	const seen = new Map<string, { key: string; version: number | null }>();

	async function init() {
		await privateDir(dir);
		for (const entry of await readdir(dir, { withFileTypes: true })) if (entry.isDirectory() && isValidName(entry.name)) await dropTemps(join(dir, entry.name));
	}

	/** The function's folder; only for a valid name, so nothing from a request reaches the path unchecked. */
	function folderOf(name: string): string {
		if (!isValidName(name)) throw new Error(`not a function name: ${JSON.stringify(name)}`);
		return join(dir, name);
	}

	/** Whether the function's folder is a plain folder of ours (a link there would lead outside data/). */
	function folderState(folder: string): 'missing' | 'ok' | 'unsafe' {
		const info = lstatSync(folder, { throwIfNoEntry: false });
		if (!info) return 'missing';
		return info.isDirectory() ? 'ok' : 'unsafe';
	}

	async function entries(name: string): Promise<Entry[]> {
		const folder = folderOf(name);
		if (folderState(folder) !== 'ok') return [];
		return versionEntries(await readdir(folder));
	}

	/** The folder to write a version in, made if missing; refused when something else than a folder lies there. */
	async function writableFolder(name: string): Promise<string> {
		const folder = folderOf(name);
		const state = folderState(folder);
		if (state === 'unsafe') throw new ApiError('unsafe_function_file', `versions/${name} is not a folder (a link?); nothing is written through it. Remove it by hand, or delete the function.`);
		if (state === 'missing') {
			await mkdir(folder, { mode: FOLDER_MODE }).catch((err: NodeJS.ErrnoException) => {
				if (err.code !== 'EEXIST') throw err;
			});
			// mkdir's mode is masked by the umask.
			await privateDir(folder);
		}
		return folder;
	}

	/** The bytes of a kept version, or null when it is gone or not a plain file. */
	async function bytesOf(folder: string, entry: Entry): Promise<Buffer | null> {
		const read = await readRegular(join(folder, entry.file), config.maxSourceBytes);
		return read.kind === 'ok' ? read.data : null;
	}

	/**
	 * Records `data` as the function's newest version, unless the newest already is that source (same
	 * language, same bytes); returns the version's number. `place` (the store putting the source file in
	 * place) runs after the version's bytes are safely in a temp file and before it is published: a full
	 * disk changes nothing, and a crash in between leaves a source that the next sighting records.
	 */
	function record(name: string, language: Language, data: Buffer, place: () => Promise<void> = async () => {}): Promise<number> {
		return withLock(name, async () => {
			const folder = folderOf(name);
			const kept = await entries(name);
			const top = kept[0];
			if (top && top.language === language && (await bytesOf(folder, top))?.equals(data)) {
				await place();
				return top.version;
			}
			const version = (top?.version ?? 0) + 1;
			const file = `${version}${EXTENSIONS[language]}`;
			const temp = await writeTemp(await writableFolder(name), file, data, PRIVATE_MODE);
			try {
				await place();
			} catch (err) {
				await unlink(temp).catch(() => {});
				throw err;
			}
			await rename(temp, join(folder, file));
			await syncDir(folder);
			// Pruned once the new one is durable: a crash never leaves fewer than were there.
			for (const old of prunable([{ version, language, file }, ...kept], config.versionsKeep)) await rm(join(folder, old.file), { force: true });
			return version;
		});
	}

	/** The versions kept, newest first, each with its size and when it was recorded. */
	async function list(name: string): Promise<VersionInfo[]> {
		const folder = folderOf(name);
		const infos: VersionInfo[] = [];
		for (const entry of await entries(name)) {
			const info = await lstat(join(folder, entry.file)).catch(() => null);
			if (!info || unsafeReason(info)) continue;
			infos.push({ version: entry.version, created_at: info.mtime.toISOString(), size: info.size, language: entry.language });
		}
		return infos;
	}

	/** One kept version with its source; null when it is not kept (pruned, never made, or tampered with). */
	async function read(name: string, version: number): Promise<VersionSource | null> {
		const folder = folderOf(name);
		const entry = (await entries(name)).find((e) => e.version === version);
		if (!entry) return null;
		const info = await lstat(join(folder, entry.file)).catch(() => null);
		const source = await bytesOf(folder, entry);
		if (!info || !source) return null;
		return { version, created_at: info.mtime.toISOString(), size: source.length, language: entry.language, source };
	}

	/** Forgets every version of a function (deleted): a namesake starts again at 1. */
	function drop(name: string): Promise<void> {
		return withLock(name, async () => {
			seen.delete(name);
			// rm removes a link there, never its target.
			await rm(folderOf(name), { recursive: true, force: true });
		});
	}

	/** Which version the source file with stat key `key` is, when known; undefined when it must be read. */
	function known(name: string, key: string): number | null | undefined {
		const last = seen.get(name);
		return last?.key === key ? last.version : undefined;
	}

	function remember(name: string, key: string, version: number | null) {
		seen.set(name, { key, version });
	}

	return { dir, init, record, list, read, drop, known, remember };
}
