import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from './config.js';
import { type ErrorCode, ApiError } from './errors.js';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { OutputTooLarge, PLATFORM_ANSWER_HEADERS, RAW_ANSWER_HEADERS, endToEnd, forward, framing, openStream } from './forward.js';
import { log } from './log.js';
import type { Metrics } from './metrics.js';
import { StartFailure } from './container.js';
import type { Container, Pool } from './pool.js';
import { type Scope, TimeoutError, scope } from './abort.js';
import { newRunId } from './history.js';
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
	async function run(ref: SourceRef, functionId: string, input: unknown, timeoutMs: number, caller: AbortSignal, runId = newRunId()): Promise<RunResult> {
		const ctx: RunContext = { runId, functionId, startedAt: performance.now(), coldStart: false };
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
		// Whether the deadline fell while the container's server had not yet answered its readiness probe:
		// the user then learns to look at the port or the start-up, not at the handler.
		let starting = false;
		const stopped = () => {
			if (!(live.reason instanceof TimeoutError)) return unansweredResult(ctx, 'failed', 'The caller went away before the function answered.');
			return starting
				? unansweredResult(ctx, 'timeout', `The function did not answer within ${timeoutMs} ms: its server was not yet answering on port ${config.containerPort} (still starting, or listening elsewhere).`)
				: unansweredResult(ctx, 'timeout', `The function did not answer within ${timeoutMs} ms.`);
		};
		let c: Container;
		try {
			const lease = await pool.lease(ref, live);
			c = lease.container;
			ctx.coldStart ||= lease.cold;
		} catch (err) {
			if (err instanceof ApiError) throw err; // queue full, shutting down
			return stopped();
		}
		let sentAt = 0;
		try {
			starting = true;
			await abortable(c.ready, live);
			starting = false;
			sentAt = Date.now();
			return answeredResult(ctx, await forward(c.url, input, config.maxBodyBytes, [live, c.exited.signal]));
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
			pool.release(c);
		}
	}

	/**
	 * The raw route: streams the caller's request to the function and its answer back as they come.
	 * `timeoutMs` bounds the wait for the answer's headers; a stream, once begun, runs until either
	 * side ends it. Errors the platform makes carry X-Lowcode-Faas-Error: 502 failed, 504 timeout.
	 */
	async function proxy(ref: SourceRef, req: IncomingMessage, res: ServerResponse, path: string, timeoutMs: number, caller: AbortSignal): Promise<void> {
		const startedAt = performance.now();
		const deadline = scope([caller], timeoutMs);
		let status: RunResult['status'] = 'failed';
		let cold = false;
		let c: Container | undefined;
		let sent = false;
		let upstreamScope: Scope | undefined;
		try {
			const lease = await pool.lease(ref, deadline.signal);
			c = lease.container;
			cold = lease.cold;
			await abortable(c.ready, deadline.signal);
			sent = true;
			upstreamScope = scope([deadline.signal, c.exited.signal]);
			const body = framing(req) ? req : null;
			const upstream = await openStream(c.url, req.method ?? 'GET', path, forwardedHeaders(req, config.token !== null), body, upstreamScope.signal);
			// The answer has begun: from here on only the caller or the function ends it.
			deadline.dispose();
			res.writeHead(upstream.statusCode ?? 502, answerHeaders(upstream));
			res.flushHeaders();
			await pipeline(upstream, res);
			status = (upstream.statusCode ?? 502) >= 500 ? 'failed' : 'success';
		} catch (err) {
			const timedOut = deadline.signal.reason instanceof TimeoutError;
			if (timedOut) status = 'timeout';
			if (c && sent && (timedOut || caller.aborted)) pool.retire(c);
			if (err instanceof ApiError && !res.headersSent) {
				sendPlatformError(res, err.status, err.code, err.message, { ...err.headers });
			} else if (!res.headersSent && !caller.aborted) {
				const message = timedOut
					? sent
						? `The function did not answer within ${timeoutMs} ms.`
						: `The function did not answer within ${timeoutMs} ms: its server was not yet answering on port ${config.containerPort} (still starting, or listening elsewhere).`
					: err instanceof StartFailure
						? err.message
						: c?.why
							? `The function ${await abortable(c.why, caller).catch(() => 'stopped')} while handling the request.`
							: `The request to the function failed: ${(err as Error).message}.`;
				// The caller's body may be unread: this connection ends with the answer.
				sendPlatformError(res, timedOut ? 504 : 502, timedOut ? 'function_timeout' : 'function_failed', message, { connection: 'close' });
			} else res.destroy();
		} finally {
			deadline.dispose();
			upstreamScope?.dispose();
			if (c) pool.release(c);
			metrics.observe(ref.name, status, (performance.now() - startedAt) / 1000, cold);
		}
	}

	return { run, proxy };
}

/** The caller's headers, end to end, framed by the platform, plus where the request came from. */
function forwardedHeaders(req: IncomingMessage, platformAuth: boolean): OutgoingHttpHeaders {
	const headers: OutgoingHttpHeaders = { ...Object.fromEntries(endToEnd(req.rawHeaders)), ...framing(req) };
	const previous = req.headers['x-forwarded-for'];
	const client = req.socket.remoteAddress ?? '';
	headers['x-forwarded-for'] = previous ? `${previous}, ${client}` : client;
	headers['x-forwarded-proto'] = 'http';
	if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
	// The platform's own token is not the function's business.
	if (platformAuth) delete headers.authorization;
	return headers;
}

/** The function's answer headers as raw pairs: end to end, framed by the platform, the platform's own set. */
function answerHeaders(upstream: IncomingMessage): string[] {
	const pairs = [...endToEnd(upstream.rawHeaders)].filter(([key]) => !PLATFORM_ANSWER_HEADERS.has(key)).flatMap(([key, values]) => values.flatMap((value) => [key, value]));
	// Only a length is passed on: without one, Node frames the answer itself for this caller (chunked, or close).
	const length = upstream.headers['transfer-encoding'] === undefined ? upstream.headers['content-length'] : undefined;
	if (length !== undefined) pairs.push('content-length', length);
	return [...pairs, ...Object.entries(RAW_ANSWER_HEADERS).flat()];
}

/** A JSON error made by the platform on the raw route, marked so it is told apart from the function's own. */
function sendPlatformError(res: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}) {
	const payload = JSON.stringify({ error: { code, message } });
	res.writeHead(status, { ...headers, ...RAW_ANSWER_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), 'x-lowcode-faas-error': code });
	res.end(payload);
}
