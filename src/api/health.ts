import type { Config } from '../config.js';
import { engineProblem, imageExists } from '../docker.js';
import type { Metrics } from '../metrics.js';
import type { Pool } from '../pool.js';
import type { Handler } from '../server.js';

/** GET /healthz: the process serves. */
export function healthz(): Handler {
	return async () => ({ status: 200, body: { status: 'ok' } });
}

// Probes are cheap to call and docker calls are not: an answer is reused for this long.
const READY_CACHE_MS = 2_000;

/** GET /readyz: 200 when Docker answers and the runtime images exist, else 503 with the reason. */
export function readyz(config: Config): Handler {
	let cached: { at: number; problem: string | null } | undefined;
	async function check(): Promise<string | null> {
		const problem = await engineProblem();
		if (problem) return `Docker is unreachable: ${problem}`;
		for (const image of Object.values(config.images)) {
			if (!(await imageExists(image).catch(() => false))) return `The runtime image ${image} is missing; build it with: npm run setup.`;
		}
		return null;
	}
	return async () => {
		if (!cached || Date.now() - cached.at > READY_CACHE_MS) cached = { at: Date.now(), problem: await check() };
		return cached.problem ? { status: 503, body: { status: 'unavailable', reason: cached.problem } } : { status: 200, body: { status: 'ready' } };
	};
}

/** GET /metrics: Prometheus text format. */
export function metricsHandler(metrics: Metrics, pool: Pool): Handler {
	return async () => {
		const containers = new Map<string, number>();
		for (const c of pool.snapshot()) containers.set(c.fn, (containers.get(c.fn) ?? 0) + 1);
		return { status: 200, text: metrics.render({ containers, queueDepth: pool.queueDepth() }), headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } };
	};
}
