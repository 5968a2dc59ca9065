import { randomUUID } from 'node:crypto';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import { PRIVATE_MODE, fixModeSync, privateDir } from './files.js';
import { readLines } from './lines.js';
import { log } from './log.js';
import { type RunRecord, keptOutput } from './result.js';
import { FUNCTION_ID, appendLines, functionDir, migrate, parseRecord, readLatest, runIdOf, serializeRecord } from './segments.js';
import { isValidName } from './validate.js';

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Appends are gathered for this long, then written with one call per function.
const BATCH_MS = 50;
// Past this many records waiting to be written (a disk slower than the invocations), the oldest
// records of sync runs are dropped rather than letting memory grow.
const MAX_PENDING = 20_000;
// A function's history stays under `keep` times this on disk (plus a segment).
const HISTORY_BYTES_PER_RUN = 256 * 1024;
// A segment also ends at this size, whatever its number of runs.
const SEGMENT_BYTES = 4 * 1024 * 1024;
// Start-up parses lines this short; longer ones only when they may hold an unfinished run.
const PARSE_ALWAYS = 256 * 1024;
const UNFINISHED = /"status":"(?:queued|running)"/;
export const FUNCTION_DELETED = 'The function was deleted before the run started.';

/**
 * A UUIDv7: time-ordered, so that ids sort oldest to newest. The random part comes from randomUUID,
 * which draws from a cached pool: a randomBytes call per invocation cost 30 µs (measured).
 */
export function newRunId(): string {
	const random = randomUUID().replaceAll('-', '');
	const hex = Date.now().toString(16).padStart(12, '0') + '7' + random.slice(13);
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const isRunId = (id: string) => RUN_ID.test(id);
const unfinished = (r: RunRecord) => r.status === 'queued' || r.status === 'running';

/** One function's history; keyed by its id, so a namesake created later never sees it. */
interface FunctionHistory {
	id: string;
	/** The function's name in its newest record, for listing a function deleted by hand. */
	name: string;
	/** Segment numbers on disk, oldest first; the last one takes the appends. */
	segments: number[];
	/** Run ids in each segment: a segment is full with `segmentRuns` of them, or SEGMENT_BYTES. */
	ids: Map<number, Set<string>>;
	/** Size of the last segment. */
	bytes: number;
	/** Size of each segment. */
	sizes: Map<number, number>;
	/** Run ids on disk, oldest first (ids sort by time): listing takes the newest from here. */
	order: string[];
	/** Its folder exists with its mode set. */
	ready: boolean;
	pending: RunRecord[];
	/** The batch being written: still searchable until it is on disk. */
	inflight: RunRecord[];
	writing: Promise<void>;
}

/** Which runs GET /runs shows: one function's (by id, or by name once it is gone), or all. */
export type RunFilter = { id: string } | { name: string } | null;

export type History = ReturnType<typeof createHistory>;

/**
 * Run history, per function id, as append-only JSON-lines segments under `data/runs/FUNCTION_ID/`: a
 * record is appended at each change of a run's state, and the last line of a run wins. Appends are
 * batched, so a sync invocation costs no disk write of its own; an async run's queued record is
 * flushed to disk before it is acknowledged. Files are read line by line, never whole. Whole old
 * segments are deleted to keep about `keep` runs per function.
 */
export function createHistory(config: Config, keep: number) {
	const dir = join(config.dataDir, 'runs');
	const segmentRuns = Math.max(1, Math.ceil(keep / 4));
	// A queued run's line holds its input: up to the body limit, a few times that once re-escaped.
	const maxLine = Math.max(64 * 1024 * 1024, 8 * config.maxBodyBytes);
	// What one function's history may take on disk, give or take a segment: far more than `keep`
	// bounded results need; what it stops is async runs' big inputs filling the disk.
	const maxBytes = keep * HISTORY_BYTES_PER_RUN;
	const histories = new Map<string, FunctionHistory>();
	/** run id → function id and the segment of its latest record, for GET /runs/{id}. */
	const index = new Map<string, { fn: string; segment: number }>();
	let pendingCount = 0;
	let timer: NodeJS.Timeout | undefined;
	let dropped = 0;
	/** Async runs not finished yet, with their function id: never shed, and must reach the disk durably. */
	const asyncRuns = new Map<string, string>();
	/** Runs whose next record must be on the disk (fsync) before its save resolves. */
	const mustSync = new Set<string>();
	/** Functions deleted since start: late results of their sync runs are not kept. */
	const deleted = new Set<string>();

	const segmentPath = (fn: string, segment: number) => join(dir, fn, `${String(segment).padStart(10, '0')}.jsonl`);

	function historyOf(fn: string): FunctionHistory {
		let h = histories.get(fn);
		if (!h) histories.set(fn, (h = { id: fn, name: '', segments: [], ids: new Map(), bytes: 0, sizes: new Map(), order: [], ready: false, pending: [], inflight: [], writing: Promise.resolve() }));
		return h;
	}

	/** Adds a run to a history's order, which stays sorted (nearly always at the end). */
	function addToOrder(h: FunctionHistory, id: string) {
		let i = h.order.length;
		while (i > 0 && h.order[i - 1]! > id) i--;
		if (h.order[i - 1] !== id) h.order.splice(i, 0, id);
	}

	/** Indexes one segment at start-up; `open` ends with the latest record of each run not finished. */
	async function scan(h: FunctionHistory, segment: number, open: Map<string, RunRecord>) {
		const path = segmentPath(h.id, segment);
		const ids = new Set<string>();
		h.segments.push(segment);
		h.ids.set(segment, ids);
		try {
			fixModeSync(path, PRIVATE_MODE);
			h.bytes = (await lstat(path)).size;
			h.sizes.set(segment, h.bytes);
			for await (const line of readLines(path, maxLine)) {
				const quick = runIdOf(line);
				// Long lines are finished runs' old results, unless they say otherwise.
				const parse = quick === null || line.length <= PARSE_ALWAYS || !h.name || UNFINISHED.test(line);
				const record = parse ? parseRecord(line) : null;
				if (parse ? !record : !line.endsWith('}')) continue;
				const id = record?.run_id ?? quick!;
				if (!isRunId(id)) continue;
				if (record) h.name = record.function;
				ids.add(id);
				index.set(id, { fn: h.id, segment });
				if (record && unfinished(record)) open.set(id, { ...record, input: undefined });
				else open.delete(id);
			}
		} catch (err) {
			// The platform starts all the same: history is worth less than the service.
			log('warn', 'cannot read run history', { file: path, error: String(err) });
		}
	}

	/** Reads what is on disk; returns the async runs that were queued or running when the last process ended. */
	async function init(): Promise<RunRecord[]> {
		await privateDir(dir);
		for (const entry of await readdir(dir)) if (!FUNCTION_ID.test(entry) && isValidName(entry)) await migrate(dir, entry, maxLine);
		const open = new Map<string, RunRecord>();
		for (const fn of await readdir(dir)) {
			if (!FUNCTION_ID.test(fn)) continue;
			try {
				await functionDir(join(dir, fn));
			} catch (err) {
				log('warn', 'run history folder is not a folder of its own; left aside', { folder: join(dir, fn), error: String(err) });
				continue;
			}
			const h = historyOf(fn);
			h.ready = true;
			const files = (await readdir(join(dir, fn))).filter((f) => /^\d{10}\.jsonl$/.test(f)).sort();
			for (const file of files) await scan(h, Number(file.slice(0, 10)), open);
			h.order = [...new Set([...h.ids.values()].flatMap((ids) => [...ids]))].sort();
		}
		for (const r of open.values()) asyncRuns.set(r.run_id, r.function_id);
		return [...open.values()].sort((a, b) => (a.run_id < b.run_id ? -1 : 1));
	}

	/** Starts a new segment when the current one is full, and deletes the ones no longer needed. */
	async function rotate(h: FunctionHistory) {
		const current = h.segments.at(-1);
		if (current !== undefined && (h.ids.get(current)?.size ?? 0) < segmentRuns && h.bytes < SEGMENT_BYTES) return;
		const next = (current ?? 0) + 1;
		h.segments.push(next);
		h.ids.set(next, new Set());
		h.bytes = 0;
		h.sizes.set(next, 0);
		// The oldest segment goes while the newer ones hold `keep` runs, or while history is over its
		// size (big inputs of async runs), unless an unfinished run's latest state is there.
		const newer = () => h.segments.slice(1).reduce((sum, s) => sum + (h.ids.get(s)?.size ?? 0), 0);
		const total = () => [...h.sizes.values()].reduce((sum, size) => sum + size, 0);
		const holdsUnfinished = (segment: number) => [...(h.ids.get(segment) ?? [])].some((id) => asyncRuns.has(id) && index.get(id)?.segment === segment);
		while (h.segments.length > 1 && (newer() >= keep || (total() > maxBytes && !holdsUnfinished(h.segments[0]!)))) {
			const old = h.segments.shift()!;
			h.sizes.delete(old);
			const latestHere = new Set([...(h.ids.get(old) ?? [])].filter((id) => index.get(id)?.segment === old && index.get(id)?.fn === h.id));
			// A queued or running async run whose latest state is here moves forward, never out.
			const records = latestHere.size > 0 ? await readLatest(segmentPath(h.id, old), latestHere, maxLine) : new Map<string, RunRecord>();
			for (const id of latestHere) {
				const last = records.get(id);
				if (last && unfinished(last)) {
					h.pending.unshift(last);
					pendingCount++;
					mustSync.add(id);
				} else index.delete(id);
			}
			h.order = h.order.filter((id) => index.get(id)?.fn === h.id);
			h.ids.delete(old);
			await rm(segmentPath(h.id, old), { force: true });
		}
	}

	/** Writes what waits for one function, in order; `durable` also fsyncs it. */
	function writePending(fn: string, durable = false): Promise<void> {
		const h = historyOf(fn);
		const task = async () => {
			while (h.pending.length > 0) {
				if (!h.ready) {
					await functionDir(join(dir, fn));
					h.ready = true;
				}
				await rotate(h);
				const segment = h.segments.at(-1)!;
				const ids = h.ids.get(segment)!;
				// Up to the segment's share of runs and bytes; later states of runs already in it go along.
				let take = 0;
				let bytes = h.bytes;
				let text = '';
				const room = new Set(ids);
				while (take < h.pending.length && (take === 0 || bytes < SEGMENT_BYTES)) {
					const record = h.pending[take]!;
					if (room.size >= segmentRuns && !room.has(record.run_id)) break;
					const line = serializeRecord(record);
					text += line;
					bytes += Buffer.byteLength(line);
					room.add(record.run_id);
					take++;
				}
				const batch = h.pending.splice(0, take);
				h.inflight = batch;
				// Whoever writes a record that must be durable syncs it, be it a timer's batch.
				const sync = durable || batch.some((r) => mustSync.has(r.run_id));
				try {
					h.bytes = await appendLines(segmentPath(fn, segment), text, sync);
					h.sizes.set(segment, h.bytes);
				} catch (err) {
					// Not written: back in front, to be tried again (or shed if the disk stays full).
					h.pending.unshift(...batch);
					throw err;
				} finally {
					h.inflight = [];
				}
				pendingCount -= batch.length;
				for (const record of batch) {
					if (index.get(record.run_id)?.fn !== fn) addToOrder(h, record.run_id);
					index.set(record.run_id, { fn, segment });
					ids.add(record.run_id);
					mustSync.delete(record.run_id);
					if (!unfinished(record)) asyncRuns.delete(record.run_id);
				}
			}
		};
		const next = h.writing.then(task);
		h.writing = next.catch((err) => log('warn', 'cannot write run history', { function: h.name, function_id: fn, error: String(err) }));
		return next;
	}

	/** Writes what waits for every function; failures are logged by `writePending`, never thrown from a timer. */
	function writeAllPending(): Promise<void> {
		timer = undefined;
		return Promise.allSettled([...histories.keys()].map((fn) => writePending(fn))).then(() => {});
	}

	/**
	 * Records a state of a run, with at most KEPT_OUTPUT_CHARS of its output. Sync results are
	 * batched; with `durable` the record is on disk when the promise resolves.
	 */
	function save(record: RunRecord, durable = false): Promise<void> {
		const fn = record.function_id;
		if (deleted.has(fn) && !durable && !asyncRuns.has(record.run_id)) return Promise.resolve();
		const kept = keptOutput(record.output);
		const h = historyOf(fn);
		h.name = record.function;
		h.pending.push(kept.output === record.output ? record : { ...record, ...kept });
		pendingCount++;
		if (durable) {
			asyncRuns.set(record.run_id, fn);
			mustSync.add(record.run_id);
		}
		if (pendingCount > MAX_PENDING) shed();
		if (durable) return writePending(fn, true);
		timer ??= setTimeout(() => void writeAllPending(), BATCH_MS);
		return Promise.resolve();
	}

	/** Drops the oldest waiting records of finished runs: history is worth less than memory. */
	function shed() {
		for (const h of histories.values()) {
			const before = h.pending.length;
			h.pending = h.pending.filter((r, i) => i >= before / 2 || asyncRuns.has(r.run_id));
			pendingCount -= before - h.pending.length;
			dropped += before - h.pending.length;
		}
		log('warn', 'run history falls behind; dropped records of finished runs', { dropped });
	}

	/** A record waiting to be written, newest state first. */
	function waiting(id: string): RunRecord | undefined {
		for (const h of histories.values()) {
			const found = h.pending.findLast((r) => r.run_id === id) ?? h.inflight.findLast((r) => r.run_id === id);
			if (found) return found;
		}
		return undefined;
	}

	/** The latest state of a run: still waiting to be written, or from its one segment. */
	async function get(id: string): Promise<RunRecord | null> {
		for (let attempt = 0; attempt < 2; attempt++) {
			const found = waiting(id);
			if (found) return found;
			const at = index.get(id);
			if (!at) return null;
			const record = (await readLatest(segmentPath(at.fn, at.segment), new Set([id]), maxLine)).get(id);
			if (record) return record;
			// Its segment was rotated away meanwhile: the record moved on.
			if (index.get(id) === at) return null;
		}
		return null;
	}

	/** Newest first, the latest state of each run; reads only the segments holding what it returns. */
	async function list(filter: RunFilter, limit: number): Promise<RunRecord[]> {
		const chosen = [...histories.values()].filter((h) => !filter || ('id' in filter ? h.id === filter.id : h.name === filter.name));
		const inMemory = new Map<string, RunRecord>();
		const candidates: string[] = [];
		for (const h of chosen) {
			for (const r of [...h.inflight, ...h.pending]) inMemory.set(r.run_id, r);
			candidates.push(...h.order.slice(-limit));
		}
		const ids = [...new Set([...candidates, ...inMemory.keys()])].sort().reverse().slice(0, limit);
		const bySegment = new Map<string, { fn: string; segment: number; ids: Set<string> }>();
		for (const id of ids) {
			const at = index.get(id);
			if (inMemory.has(id) || !at) continue;
			const key = `${at.fn}/${at.segment}`;
			if (!bySegment.has(key)) bySegment.set(key, { ...at, ids: new Set() });
			bySegment.get(key)!.ids.add(id);
		}
		const read = new Map<string, RunRecord>();
		for (const group of bySegment.values()) for (const [id, r] of await readLatest(segmentPath(group.fn, group.segment), group.ids, maxLine)) read.set(id, r);
		return ids
			.map((id) => inMemory.get(id) ?? read.get(id))
			.filter((r): r is RunRecord => r !== undefined)
			.map(({ input: _input, timeout_ms: _timeout, ...shown }) => shown as RunRecord);
	}

	/**
	 * Deletes a deleted function's history. Its async runs keep a record: a queued one is failed (it
	 * must never run on a namesake), a running one finishes on its own.
	 */
	async function remove(fn: string): Promise<void> {
		deleted.add(fn);
		const h = histories.get(fn);
		if (!h) return;
		const task = async () => {
			const kept: RunRecord[] = [];
			for (const [id, owner] of asyncRuns) {
				const r = owner === fn ? await get(id) : null;
				if (!r) continue;
				const failed = { ...r, status: 'failed' as const, error_message: FUNCTION_DELETED, input: undefined, timeout_ms: undefined, finished_at: new Date().toISOString() };
				kept.push(r.status === 'queued' ? failed : r);
			}
			for (const id of h.order) if (index.get(id)?.fn === fn) index.delete(id);
			await rm(join(dir, fn), { recursive: true, force: true });
			pendingCount += kept.length - h.pending.length;
			Object.assign(h, { segments: [], ids: new Map(), bytes: 0, sizes: new Map(), order: [], ready: false, pending: kept });
			for (const r of kept) mustSync.add(r.run_id);
		};
		const next = h.writing.then(task);
		h.writing = next.catch((err) => log('warn', 'cannot delete run history', { function_id: fn, error: String(err) }));
		try {
			await next;
		} catch {
			// Logged; the function itself is gone all the same.
			return;
		}
		if (h.pending.length > 0) await writePending(fn, true);
		else if (histories.get(fn) === h) histories.delete(fn);
	}

	/** Writes everything waiting: for shutdown and tests. */
	async function drain() {
		clearTimeout(timer);
		timer = undefined;
		await writeAllPending();
		await Promise.allSettled([...histories.values()].map((h) => h.writing));
	}

	return { init, save, get, list, remove, drain };
}
