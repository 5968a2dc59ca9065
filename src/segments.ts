import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FOLDER_MODE, PRIVATE_MODE, syncDir, unsafeReason } from './files.js';
import { readLines } from './lines.js';
import { log } from './log.js';
import type { RunRecord } from './result.js';

/** Run history segments: JSON lines, one record each, starting with its run id. */

export const FUNCTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A function's history folder, made private like privateDir but never through a link: the platform
 * makes none there, and a chmod or an append through one would reach whatever it points at.
 */
export async function functionDir(path: string) {
	await mkdir(path, { recursive: true, mode: FOLDER_MODE });
	const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
	try {
		await handle.chmod(FOLDER_MODE);
	} finally {
		await handle.close();
	}
}

// 'a+' without following a link, and without waiting for a FIFO's reader.
const APPEND = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Appends `text` to a segment made 0600, on a fresh line if the file ends in a torn one (a crash or a
 * full disk mid-append): glued to the fragment, the first record would be lost. With `durable` it is
 * on the disk when this resolves. Returns the file's new size.
 */
export async function appendLines(path: string, text: string, durable: boolean): Promise<number> {
	// The folder swapped for a link since it was made would take the append elsewhere.
	if (!(await lstat(dirname(path))).isDirectory()) throw new Error(`${dirname(path)} is not a folder`);
	const handle = await open(path, APPEND, PRIVATE_MODE);
	let size: number;
	let created = false;
	try {
		const info = await handle.stat();
		const unsafe = unsafeReason(info);
		if (unsafe) throw new Error(`${path} ${unsafe}`);
		size = info.size;
		created = size === 0;
		let data = text;
		if (size === 0) await handle.chmod(PRIVATE_MODE);
		else {
			const last = Buffer.alloc(1);
			await handle.read(last, 0, 1, size - 1);
			if (last[0] !== 0x0a) data = '\n' + text;
		}
		await handle.writeFile(data);
		if (durable) await handle.datasync();
		size += Buffer.byteLength(data);
	} finally {
		await handle.close();
	}
	// A new file's name must reach the disk too.
	if (durable && created) await syncDir(dirname(path));
	return size;
}

const ID_AT = '{"run_id":"'.length;

/** The run id a line starts with, read without parsing the line (which may be long); null if it does not. */
export function runIdOf(line: string): string | null {
	return line.startsWith('{"run_id":"') && line[ID_AT + 36] === '"' ? line.slice(ID_AT, ID_AT + 36) : null;
}

/** A record, or null for a torn or foreign line. */
export function parseRecord(line: string): RunRecord | null {
	try {
		const record = JSON.parse(line) as RunRecord | null;
		return typeof record?.run_id === 'string' && typeof record.function === 'string' ? record : null;
	} catch {
		return null;
	}
}

/**
 * A record as one line. One that cannot be serialized (too deep, say) becomes a note saying so: it
 * must not cost the other records of its batch their place on disk.
 */
export function serializeRecord(record: RunRecord): string {
	try {
		return JSON.stringify(record) + '\n';
	} catch (err) {
		const unfinished = record.status === 'queued' || record.status === 'running';
		const note: RunRecord = {
			run_id: record.run_id,
			function_id: record.function_id,
			version: typeof record.version === 'number' ? record.version : null,
			status: unfinished ? 'failed' : record.status,
			http_status_code: typeof record.http_status_code === 'number' ? record.http_status_code : null,
			http_headers: {},
			output: null,
			error_message: `The run's record could not be recorded: ${(err as Error).message}.`,
			duration_ms: typeof record.duration_ms === 'number' ? record.duration_ms : 0,
			cold_start: record.cold_start === true,
			function: record.function,
			created_at: record.created_at,
			finished_at: record.finished_at ?? new Date().toISOString(),
		};
		return JSON.stringify(note) + '\n';
	}
}

/** The latest record of each `wanted` run in one segment, read line by line. */
export async function readLatest(path: string, wanted: Set<string>, maxLine: number): Promise<Map<string, RunRecord>> {
	const last = new Map<string, string>();
	try {
		for await (const line of readLines(path, maxLine)) {
			const id = runIdOf(line) ?? parseRecord(line)?.run_id;
			// A torn line does not end its object: the complete one before it stays the latest.
			if (id !== undefined && id !== null && wanted.has(id) && line.endsWith('}')) last.set(id, line);
		}
	} catch (err) {
		// One unreadable segment costs its own runs, not the whole answer.
		log('warn', 'cannot read run history', { file: path, error: String(err) });
	}
	const records = new Map<string, RunRecord>();
	for (const [id, line] of last) {
		const record = parseRecord(line);
		if (record) records.set(id, record);
	}
	return records;
}

/** History kept before function ids (`runs/NAME/`) moves to its function id's folder, named in its records. */
export async function migrate(dir: string, name: string, maxLine: number): Promise<void> {
	const old = join(dir, name);
	const files = (await readdir(old).catch(() => [] as string[])).filter((f) => /^\d{10}\.jsonl$/.test(f)).sort();
	let id: string | undefined;
	try {
		for await (const line of readLines(join(old, files[0] ?? 'none'), maxLine)) if ((id = parseRecord(line)?.function_id)) break;
	} catch {
		id = undefined; // a link or a FIFO: left aside below
	}
	if (id && FUNCTION_ID.test(id) && !(await stat(join(dir, id)).catch(() => null))) await rename(old, join(dir, id));
	else log('warn', 'run history in an old layout left aside', { folder: old });
}
