import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from './config.js';
import { HttpError } from './errors.js';
import { OutputTooLarge, forward } from './forward.js';
import { log } from './log.js';
import type { Metrics } from './metrics.js';
import { type Container, type Pool, StartFailure } from './pool.js';
import { TimeoutError, scope } from './signals.js';
import { type RunContext, type RunResult, answeredResult, unansweredResult } from './result.js';
import type { SourceRef } from './store.js';

// After a request fails with no answer, how long to wait for the exit event that explains it.
const EXIT_GRACE_MS = 200;

/** Resolves with `promise`, or rejects as soon as `signal` fires. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
	if (signal.aborted) return Promise.reject(signal.reason);
	return new Promise((resolve, reject) => {
		const onAbort = () => reject(signal.reason);
		signal.addEventListener('abort', onAbort, { once: true });
		promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
	});
}

/** True when a failed request cannot have reached the function, so running it again is safe. */
function neverReached(c: Container, sentAt: number, err: unknown): boolean {
	const failure = err as { code?: string; staleSocket?: boolean; cause?: { code?: string } } | null;
	const code = failure?.code ?? failure?.cause?.code;
	// Refused: nothing listens. Reset on a reused keep-alive socket: the peer had closed it before.
	if (code === 'ECONNREFUSED' || failure?.staleSocket) return true;
	return c.died !== undefined && c.died.at < sentAt;
}

export type Runner = ReturnType<typeof createRunner>;

const RETRY = Symbol('retry');

/** Runs one invocation on a pooled container and turns whatever happens into a RunResult. */
export function createRunner(config: Config, pool: Pool, metrics: Metrics) {
	async function run(ref: SourceRef, functionId: string, input: unknown, timeoutMs: number, caller: AbortSignal): Promise<RunResult> {
		const ctx: RunContext = { runId: randomUUID(), functionId, startedAt: performance.now(), coldStart: false };
		const deadline = scope([caller], timeoutMs);
		try {
			// A request that never reached its container (it had died) is run once more on a fresh one.
			for (let attempt = 0; ; attempt++) {
				const outcome = await runOnce(ref, input, ctx, deadline.signal, timeoutMs, attempt === 0);
				if (outcome === RETRY) {
					ctx.coldStart = true;
					continue;
				}
				metrics.observe(ref.name, outcome.status, outcome.duration_ms / 1000, outcome.cold_start);
				return outcome;
			}
		} finally {
			deadline.dispose();
		}
	}

	async function runOnce(ref: SourceRef, input: unknown, ctx: RunContext, live: AbortSignal, timeoutMs: number, mayRetry: boolean): Promise<RunResult | typeof RETRY> {
		const stopped = () =>
			live.reason instanceof TimeoutError
				? unansweredResult(ctx, 'timeout', `The function did not answer within ${timeoutMs} ms.`)
				: unansweredResult(ctx, 'failed', 'The caller went away before the function answered.');
		let c: Container;
		try {
			const lease = await pool.lease(ref, live);
			c = lease.container;
			ctx.coldStart ||= lease.cold;
		} catch (err) {
			if (err instanceof HttpError) throw err; // queue full, shutting down
			return stopped();
		}
		let sentAt = 0;
		const request = scope([live, c.exited.signal]);
		try {
			await abortable(c.ready, live);
			sentAt = Date.now();
			return answeredResult(ctx, await forward(c.url, input, config.maxBodyBytes, request.signal));
		} catch (err) {
			if (err instanceof StartFailure) return unansweredResult(ctx, 'failed', err.message);
			if (live.aborted) {
				// A request cut off mid-way leaves the container in an unknown state: replace it.
				if (sentAt) pool.retire(c);
				return stopped();
			}
			if (err instanceof OutputTooLarge) {
				return unansweredResult(ctx, 'failed', `The function's response body is larger than the ${config.maxBodyBytes}-byte limit.`);
			}
			// No answer: give the exit event a moment to arrive, so the error can say what happened.
			await abortable(sleep(EXIT_GRACE_MS, undefined, { signal: c.exited.signal }), live).catch(() => {});
			pool.retire(c);
			if (mayRetry && neverReached(c, sentAt, err)) {
				log('info', 'retrying on a fresh container', { function: ref.name, container: c.name });
				return RETRY;
			}
			if (c.why) {
				// Reading why it died takes docker calls: they may not hold the reply past the deadline.
				const why = await abortable(c.why, live).catch(() => null);
				if (why === null) return stopped();
				return unansweredResult(ctx, 'failed', `The function ${why} while handling the request.`);
			}
			return unansweredResult(ctx, 'failed', `The request to the function failed: ${(err as Error).message}.`);
		} finally {
			request.dispose();
			pool.release(c);
		}
	}

	return { run };
}
