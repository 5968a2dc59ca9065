import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import { log } from './log.js';
import type { RunResult } from './result.js';
import { isValidName } from './validate.js';

/** A run as kept in history: a RunResult once done; before that, queued or running. */
export interface RunRecord extends Omit<RunResult, 'status'> {
	status: RunResult['status'] | 'queued' | 'running';
	function: string;
	created_at: string;
	finished_at: string | null;
	/** Kept until an async run has run, so that a restart can run it. */
	input?: unknown;
	timeout_ms?: number;
}

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A UUIDv7: time-ordered, so that file names sort oldest to newest. */
export function newRunId(): string {
	const bytes = randomBytes(16);
	bytes.writeUIntBE(Date.now(), 0, 6);
	bytes[6] = (bytes[6]! & 0x0f) | 0x70;
	bytes[8] = (bytes[8]! & 0x3f) | 0x80;
	const hex = bytes.toString('hex');
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const isRunId = (id: string) => RUN_ID.test(id);

export type Runs = ReturnType<typeof createRuns>;

/**
 * Run history under `data/runs/FUNCTION/RUN_ID.json`, newest `keep` per function. Records of sync runs
 * are written after the reply, off the invocation's path; an async run's queued record is flushed to
 * disk before it is acknowledged.
 */
export function createRuns(config: Config, keep: number) {
	const dir = join(config.dataDir, 'runs');
	/** run id → function, for GET /runs/{id} without a scan. */
	const index = new Map<string, string>();
	const counts = new Map<string, number>();
	let writing: Promise<void> = Promise.resolve();

	async function init(): Promise<RunRecord[]> {
		await mkdir(dir, { recursive: true });
		const pending: RunRecord[] = [];
		for (const fn of await readdir(dir).catch(() => [])) {
			if (!isValidName(fn)) continue;
			const files = (await readdir(join(dir, fn))).filter((f) => f.endsWith('.json') && isRunId(f.slice(0, -5)));
			counts.set(fn, files.length);
			for (const file of files) index.set(file.slice(0, -5), fn);
			for (const file of files.sort()) {
				const record = await read(fn, file.slice(0, -5));
				if (record && (record.status === 'queued' || record.status === 'running')) pending.push(record);
			}
			for (const file of await readdir(join(dir, fn))) if (file.endsWith('.tmp')) await rm(join(dir, fn, file), { force: true });
		}
		return pending;
	}

	async function read(fn: string, id: string): Promise<RunRecord | null> {
		try {
			return JSON.parse(await readFile(join(dir, fn, `${id}.json`), 'utf8')) as RunRecord;
		} catch {
			return null;
		}
	}

	async function write(record: RunRecord, durable: boolean) {
		const folder = join(dir, record.function);
		await mkdir(folder, { recursive: true });
		const target = join(folder, `${record.run_id}.json`);
		const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
		const handle = await open(temp, 'w', 0o600);
		try {
			await handle.writeFile(JSON.stringify(record));
			if (durable) await handle.sync();
		} finally {
			await handle.close();
		}
		await rename(temp, target);
		if (!index.has(record.run_id)) {
			index.set(record.run_id, record.function);
			const count = (counts.get(record.function) ?? 0) + 1;
			counts.set(record.function, count);
			// Trim in batches: one directory read per tenth of `keep` runs, not one per run.
			if (count > keep + Math.ceil(keep / 10)) await trim(record.function);
		}
	}

	async function trim(fn: string) {
		const files = (await readdir(join(dir, fn))).filter((f) => f.endsWith('.json')).sort();
		const excess = files.slice(0, Math.max(0, files.length - keep));
		for (const file of excess) {
			await rm(join(dir, fn, file), { force: true });
			index.delete(file.slice(0, -5));
		}
		counts.set(fn, files.length - excess.length);
	}

	/** Queues a write; writes happen one at a time, in order, so a later state never loses to an earlier one. */
	function save(record: RunRecord, durable = false): Promise<void> {
		const next = writing.then(() => write(record, durable));
		writing = next.catch((err) => log('warn', 'cannot write a run record', { run: record.run_id, error: String(err) }));
		return next;
	}

	async function get(id: string): Promise<RunRecord | null> {
		const fn = index.get(id);
		return fn ? read(fn, id) : null;
	}

	/** Newest first, from one function or from all. */
	async function list(fn: string | null, limit: number): Promise<RunRecord[]> {
		const functions = fn ? [fn] : [...counts.keys()];
		const ids: [string, string][] = [];
		for (const name of functions) {
			const files = await readdir(join(dir, name)).catch(() => [] as string[]);
			for (const file of files) if (file.endsWith('.json')) ids.push([file.slice(0, -5), name]);
		}
		ids.sort((a, b) => (a[0] < b[0] ? 1 : -1));
		const records = await Promise.all(ids.slice(0, limit).map(([id, name]) => read(name, id)));
		return records.filter((r): r is RunRecord => r !== null).map(({ input: _input, ...rest }) => rest as RunRecord);
	}

	/** Waits for queued writes: for shutdown and tests. */
	const flush = () => writing;

	return { init, save, get, list, flush };
}
