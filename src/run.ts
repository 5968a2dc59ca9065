import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from './config.js';
import { HttpError } from './errors.js';
import { OutputTooLarge, forward } from './forward.js';
import { log } from './log.js';
import { type Container, type Pool, StartFailure } from './pool.js';
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
	const code = (err as { cause?: { code?: string } })?.cause?.code;
	if (code === 'ECONNREFUSED') return true;
	return c.died !== undefined && c.died.at < sentAt;
}

export type Runner = ReturnType<typeof createRunner>;

/** Runs one invocation on a pooled container and turns whatever happens into a RunResult. */
export function createRunner(config: Config, pool: Pool) {
	async function run(ref: SourceRef, functionId: string, input: unknown, timeoutMs: number, caller: AbortSignal): Promise<RunResult> {
		const ctx: RunContext = { runId: randomUUID(), functionId, startedAt: performance.now(), coldStart: false };
		const timedOut = AbortSignal.timeout(timeoutMs);
		const live = AbortSignal.any([timedOut, caller]);
		const stopped = () => {
			if (timedOut.aborted) return unansweredResult(ctx, 'timeout', `The function did not answer within ${timeoutMs} ms.`);
			return unansweredResult(ctx, 'failed', 'The caller went away before the function answered.');
		};

		for (let attempt = 0; ; attempt++) {
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
			try {
				await abortable(c.ready, live);
				sentAt = Date.now();
				const res = await forward(c.url, input, config.maxBodyBytes, AbortSignal.any([live, c.exited.signal]));
				return answeredResult(ctx, res);
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
				await abortable(sleep(EXIT_GRACE_MS, undefined, { signal: c.exited.signal }), live).catch(() => {});
				pool.retire(c);
				if (attempt === 0 && neverReached(c, sentAt, err)) {
					log('info', 'retrying on a fresh container', { function: ref.name, container: c.name });
					ctx.coldStart = true;
					continue;
				}
				if (c.why) return unansweredResult(ctx, 'failed', `The function ${await c.why} while handling the request.`);
				return unansweredResult(ctx, 'failed', `The request to the function failed: ${(err as Error).message}.`);
			} finally {
				pool.release(c);
			}
		}
	}

	return { run };
}
