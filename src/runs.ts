import { randomUUID } from 'node:crypto';
import { appendFile, mkdir, open, readFile, readdir, rm } from 'node:fs/promises';
import { syncDir } from './store.js';
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
// Appends are gathered for this long, then written with one call per function.
const FLUSH_MS = 50;
// Past this many records waiting to be written (a disk slower than the invocations), the oldest
// records of sync runs are dropped rather than letting memory grow.
const MAX_PENDING = 20_000;

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

interface History {
	/** Segment numbers on disk, oldest first; the last one takes the appends. */
	segments: number[];
	/** Run ids in each segment: a segment is full with `segmentRuns` of them. */
	ids: Map<number, Set<string>>;
	pending: RunRecord[];
	/** The batch being written: still searchable until it is on disk. */
	inflight: RunRecord[];
	writing: Promise<void>;
}

export type Runs = ReturnType<typeof createRuns>;

/**
 * Run history, per function, as append-only JSON-lines segments under `data/runs/FUNCTION/`: a
 * record is appended at each change of a run's state, and the last line of a run wins. Appends are
 * batched, so a sync invocation costs no disk write of its own; an async run's queued record is
 * flushed to disk before it is acknowledged. Whole old segments are deleted to keep about `keep`
 * runs per function.
 */
export function createRuns(config: Config, keep: number) {
	const dir = join(config.dataDir, 'runs');
	const segmentRuns = Math.max(1, Math.ceil(keep / 4));
	const histories = new Map<string, History>();
	/** run id → function and segment, for GET /runs/{id}. */
	const index = new Map<string, { fn: string; segment: number }>();
	let pendingCount = 0;
	let timer: NodeJS.Timeout | undefined;
	let dropped = 0;
	/** Async runs not finished yet: their records are never shed, and must reach the disk durably. */
	const asyncRuns = new Set<string>();
	/** Runs whose next record must be on the disk (fsync) before its save resolves. */
	const mustSync = new Set<string>();

	const segmentPath = (fn: string, segment: number) => join(dir, fn, `${String(segment).padStart(10, '0')}.jsonl`);

	function historyOf(fn: string): History {
		let h = histories.get(fn);
		if (!h) histories.set(fn, (h = { segments: [], ids: new Map(), pending: [], inflight: [], writing: Promise.resolve() }));
		return h;
	}

	function parseLines(text: string): RunRecord[] {
		const records: RunRecord[] = [];
		for (const line of text.split('\n')) {
			if (!line) continue;
			try {
				records.push(JSON.parse(line) as RunRecord);
			} catch {
				// A line cut short by a crash mid-append.
			}
		}
		return records;
	}

	/** Reads what is on disk; returns the async runs that were queued or running when the last process ended. */
	async function init(): Promise<RunRecord[]> {
		await mkdir(dir, { recursive: true });
		const latest = new Map<string, RunRecord>();
		for (const fn of await readdir(dir).catch(() => [] as string[])) {
			if (!isValidName(fn)) continue;
			const h = historyOf(fn);
			const files = (await readdir(join(dir, fn))).filter((f) => /^\d{10}\.jsonl$/.test(f)).sort();
			for (const file of files) {
				const segment = Number(file.slice(0, 10));
				const records = parseLines(await readFile(join(dir, fn, file), 'utf8'));
				h.segments.push(segment);
				h.ids.set(segment, new Set(records.map((r) => r.run_id)));
				for (const record of records) {
					index.set(record.run_id, { fn, segment });
					latest.set(record.run_id, record);
				}
			}
		}
		const unfinished = [...latest.values()].filter((r) => r.status === 'queued' || r.status === 'running');
		for (const r of unfinished) asyncRuns.add(r.run_id);
		return unfinished.sort((a, b) => (a.run_id < b.run_id ? -1 : 1));
	}

	/** Starts a new segment when the current one is full, and deletes the ones no longer needed. */
	async function rotate(fn: string, h: History) {
		const current = h.segments.at(-1);
		if (current !== undefined && (h.ids.get(current)?.size ?? 0) < segmentRuns) return;
		const next = (current ?? 0) + 1;
		h.segments.push(next);
		h.ids.set(next, new Set());
		// The full segments kept hold at least `keep` runs.
		const full = Math.ceil(keep / segmentRuns);
		while (h.segments.length > full + 1) {
			const old = h.segments.shift()!;
			const latestHere = [...(h.ids.get(old) ?? [])].filter((id) => index.get(id)?.segment === old);
			// A queued or running async run whose latest state is here moves forward, never out.
			const records = latestHere.length > 0 ? parseLines(await readFile(segmentPath(fn, old), 'utf8').catch(() => '')) : [];
			for (const id of latestHere) {
				const last = records.findLast((r) => r.run_id === id);
				if (last && (last.status === 'queued' || last.status === 'running')) {
					h.pending.unshift(last);
					pendingCount++;
					mustSync.add(id);
				} else index.delete(id);
			}
			h.ids.delete(old);
			await rm(segmentPath(fn, old), { force: true });
		}
	}

	/** Writes what waits for one function, in order; `durable` flushes it to the disk. */
	function flush(fn: string, durable = false): Promise<void> {
		const h = historyOf(fn);
		const task = async () => {
			while (h.pending.length > 0) {
				await mkdir(join(dir, fn), { recursive: true });
				await rotate(fn, h);
				const segment = h.segments.at(-1)!;
				const ids = h.ids.get(segment)!;
				// Up to the segment's share of runs; later states of runs already in it go along.
				let take = 0;
				const room = new Set(ids);
				while (take < h.pending.length && (room.size < segmentRuns || room.has(h.pending[take]!.run_id))) room.add(h.pending[take++]!.run_id);
				const batch = h.pending.splice(0, take);
				h.inflight = batch;
				const text = batch.map((r) => JSON.stringify(r) + '\n').join('');
				// Whoever flushes a record that must be durable syncs it, be it a timer's batch.
				const sync = durable || batch.some((r) => mustSync.has(r.run_id));
				const path = segmentPath(fn, segment);
				try {
					if (sync) {
						const handle = await open(path, 'a', 0o600);
						try {
							await handle.writeFile(text);
							await handle.datasync();
						} finally {
							await handle.close();
						}
						await syncDir(join(dir, fn));
					} else await appendFile(path, text, { mode: 0o600 });
				} catch (err) {
					// Not written: back in front, to be tried again (or shed if the disk stays full).
					h.pending.unshift(...batch);
					throw err;
				} finally {
					h.inflight = [];
				}
				pendingCount -= batch.length;
				for (const record of batch) {
					index.set(record.run_id, { fn, segment });
					ids.add(record.run_id);
					mustSync.delete(record.run_id);
					if (record.status !== 'queued' && record.status !== 'running') asyncRuns.delete(record.run_id);
				}
			}
		};
		const next = h.writing.then(task);
		h.writing = next.catch((err) => log('warn', 'cannot write run history', { function: fn, error: String(err) }));
		return next;
	}

	/** Writes what waits for every function; failures are logged by `flush`, never thrown from a timer. */
	function flushAll(): Promise<void> {
		timer = undefined;
		return Promise.allSettled([...histories.keys()].map((fn) => flush(fn))).then(() => {});
	}

	/**
	 * Records a state of a run. Sync results are batched; with `durable` the record is on disk when the
	 * promise resolves.
	 */
	function save(record: RunRecord, durable = false): Promise<void> {
		const h = historyOf(record.function);
		h.pending.push(record);
		pendingCount++;
		if (durable) {
			asyncRuns.add(record.run_id);
			mustSync.add(record.run_id);
		}
		if (pendingCount > MAX_PENDING) shed();
		if (durable) return flush(record.function, true);
		timer ??= setTimeout(() => void flushAll(), FLUSH_MS);
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

	/** The latest state of a run: still waiting to be written, or from its segment. */
	async function get(id: string): Promise<RunRecord | null> {
		for (const h of histories.values()) {
			const waiting = h.pending.findLast((r) => r.run_id === id) ?? h.inflight.findLast((r) => r.run_id === id);
			if (waiting) return waiting;
		}
		const at = index.get(id);
		if (!at) return null;
		const text = await readFile(segmentPath(at.fn, at.segment), 'utf8').catch(() => '');
		return parseLines(text).findLast((r) => r.run_id === id) ?? null;
	}

	/** Newest first, the latest state of each run, from one function or from all. */
	async function list(fn: string | null, limit: number): Promise<RunRecord[]> {
		const found = new Map<string, RunRecord>();
		for (const name of fn ? [fn] : [...histories.keys()]) {
			const h = histories.get(name);
			if (!h) continue;
			const seen = new Map<string, RunRecord>();
			for (const r of [...h.inflight, ...h.pending].reverse()) if (!seen.has(r.run_id)) seen.set(r.run_id, r);
			// Segments hold runs in the order they finished, not started: read them all (a few per function).
			for (const segment of [...h.segments].reverse()) {
				const records = parseLines(await readFile(segmentPath(name, segment), 'utf8').catch(() => ''));
				for (const r of records.reverse()) if (!seen.has(r.run_id)) seen.set(r.run_id, r);
			}
			for (const [id, r] of seen) found.set(id, r);
		}
		return [...found.values()]
			.sort((a, b) => (a.run_id < b.run_id ? 1 : -1))
			.slice(0, limit)
			.map(({ input: _input, timeout_ms: _timeout, ...shown }) => shown as RunRecord);
	}

	/** Writes everything waiting: for shutdown and tests. */
	async function drain() {
		clearTimeout(timer);
		timer = undefined;
		await flushAll();
		await Promise.allSettled([...histories.values()].map((h) => h.writing));
	}

	return { init, save, get, list, flush: drain };
}
