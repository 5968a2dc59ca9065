import type { Backend } from '../backend.js';
import type { Metrics } from '../metrics.js';
import type { Scheduler } from '../scheduler.js';
import type { Handler } from '../server.js';
import type { StemCells } from '../stem-cells.js';

/** GET /healthz: the process serves. */
export function healthz(): Handler {
	return async () => ({ status: 200, body: { status: 'ok' } });
}

// Probes are cheap to call and docker calls are not: an answer is reused for this long.
const READY_CACHE_MS = 2_000;

/** GET /readyz: 200 when functions can be started (for Docker: it answers and the runtime images exist), else 503 with the reason. */
export function readyz(backend: Pick<Backend, 'problem' | 'notes'>, stems: Pick<StemCells, 'ready'> | null = null): Handler {
	let cached: { at: number; problem: string | null; notes: Record<string, unknown> } | undefined;
	return async () => {
		if (!cached || Date.now() - cached.at > READY_CACHE_MS) cached = { at: Date.now(), problem: await backend.problem(), notes: (await backend.notes?.()) ?? {} };
		// Stem cells ready now, by language: how many cold starts can skip `docker run` (not a readiness condition).
		const stemCells = { ...cached.notes, ...(stems ? { stem_cells: stems.ready() } : {}) };
		return cached.problem ? { status: 503, body: { status: 'unavailable', reason: cached.problem, ...stemCells } } : { status: 200, body: { status: 'ready', ...stemCells } };
	};
}

/** GET /metrics: Prometheus text format. */
export function metricsHandler(metrics: Metrics, scheduler: Scheduler, stems: Pick<StemCells, 'ready' | 'starts'> | null = null): Handler {
	return async () => {
		const containers = new Map<string, number>();
		for (const c of scheduler.snapshot()) containers.set(c.fn, (containers.get(c.fn) ?? 0) + 1);
		return {
			status: 200,
			text: metrics.render({ containers, queueDepth: scheduler.queueDepth(), stemCells: stems?.ready() ?? { python: 0, deno: 0 }, starts: stems?.starts() ?? null }),
			headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
		};
	};
}
