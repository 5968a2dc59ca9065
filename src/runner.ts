import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Scope, TimeoutError, abortable, scope } from './abort.js';
import { StartFailure } from './backend.js';
import type { Config } from './config.js';
import { ApiError } from './errors.js';
import { OutputTooLarge, PLATFORM_ANSWER_HEADERS, RAW_ANSWER_HEADERS, endToEnd, forward, framing, openStream } from './forward.js';
import { newRunId } from './history.js';
import { log } from './log.js';
import type { Metrics } from './metrics.js';
import { type RunContext, type RunResult, answeredResult, unansweredResult } from './result.js';
import type { Instance, Scheduler } from './scheduler.js';
import type { SourceRef } from './store.js';

/**
 * One invocation, from a lease on an instance to the answer: the JSON call (POST /functions/NAME/invoke,
 * turned into a RunResult) and the raw route's stream. Whatever fails is said in one of the messages
 * below, the same on both paths.
 */

// After a request fails with no answer, how long to wait for the exit event that explains it.
const EXIT_GRACE_MS = 200;

/** True when a failed request cannot have reached the function, so running it again is safe. */
function neverReached(instance: Instance, sentAt: number, err: unknown): boolean {
	const failure = err as { code?: string; syscall?: string; staleSocket?: boolean; cause?: { code?: string } } | null;
	const code = failure?.code ?? failure?.cause?.code;
	// Refused: nothing listens. Any other failed connect (a host unreachable: a Swarm node gone) sent nothing either.
	// Reset on a reused keep-alive socket: the peer had closed it before.
	if (code === 'ECONNREFUSED' || failure?.syscall === 'connect' || failure?.staleSocket) return true;
	return instance.died !== undefined && instance.died.at < sentAt;
}

export type Runner = ReturnType<typeof createRunner>;

const RETRY = Symbol('retry');

/** Runs invocations on the scheduler's instances. */
export function createRunner(config: Config, scheduler: Scheduler, metrics: Metrics) {
	/**
	 * Why an invocation got no answer, for the user. `starting`: the deadline fell while the instance's
	 * server had not yet answered its readiness probe, so the user looks at the port or the start-up,
	 * not at the handler. Null when the caller went away (nobody to tell).
	 */
	async function whyUnanswered(err: unknown, instance: Instance | undefined, starting: boolean, timeoutMs: number, live: AbortSignal): Promise<{ status: 'failed' | 'timeout'; message: string }> {
		if (err instanceof StartFailure) return { status: 'failed', message: err.message };
		if (live.aborted && !(live.reason instanceof TimeoutError)) return { status: 'failed', message: 'The caller went away before the function answered.' };
		if (live.aborted) {
			const message = starting
				? `The function did not answer within ${timeoutMs} ms: its server was not yet answering on port ${config.containerPort} (still starting, or listening elsewhere).`
				: `The function did not answer within ${timeoutMs} ms.`;
			return { status: 'timeout', message };
		}
		if (err instanceof OutputTooLarge) return { status: 'failed', message: `The function's response body is larger than the ${config.maxBodyBytes}-byte limit.` };
		if (instance?.why) {
			// Reading why it died takes backend calls: they may not hold the reply past the deadline.
			const why = await abortable(instance.why, live).catch(() => null);
			if (why === null) return whyUnanswered(err, undefined, starting, timeoutMs, live);
			return { status: 'failed', message: `The function ${why} while handling the request.` };
		}
		return { status: 'failed', message: `The request to the function failed: ${(err as Error).message}.` };
	}

	async function run(ref: SourceRef, functionId: string, input: unknown, timeoutMs: number, caller: AbortSignal, runId = newRunId()): Promise<RunResult> {
		const ctx: RunContext = { runId, functionId, version: ref.versionNumber, startedAt: performance.now(), coldStart: false };
		const deadline = scope([caller], timeoutMs);
		try {
			// A request that never reached its instance (it had died) is run once more on a fresh one.
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
		const unanswered = async (err: unknown, instance: Instance | undefined, starting: boolean) => {
			const { status, message } = await whyUnanswered(err, instance, starting, timeoutMs, live);
			return unansweredResult(ctx, status, message);
		};
		let instance: Instance;
		try {
			const lease = await scheduler.lease(ref, live);
			instance = lease.instance;
			ctx.coldStart ||= lease.cold;
			// The instance's own: a queued invocation may have been handed the newer source saved while it waited.
			ctx.version = instance.versionNumber;
		} catch (err) {
			if (err instanceof ApiError) throw err; // queue full, shutting down
			return unanswered(err, undefined, false);
		}
		let starting = false;
		let sentAt = 0;
		try {
			starting = true;
			await abortable(instance.ready, live);
			starting = false;
			sentAt = Date.now();
			return answeredResult(ctx, await forward(instance.url, input, config.maxBodyBytes, [live, instance.exited.signal]));
		} catch (err) {
			if (live.aborted && !(err instanceof StartFailure)) {
				// A request cut off mid-way leaves the instance in an unknown state: replace it.
				if (sentAt) scheduler.retire(instance);
				return unanswered(err, instance, starting);
			}
			if (!(err instanceof StartFailure) && !(err instanceof OutputTooLarge)) {
				// No answer: give the exit event a moment to arrive, so the error can say what happened.
				await abortable(sleep(EXIT_GRACE_MS, undefined, { signal: instance.exited.signal }), live).catch(() => {});
				scheduler.retire(instance);
				if (mayRetry && neverReached(instance, sentAt, err)) {
					log('info', 'retrying on a fresh container', { function: ref.name, container: instance.name });
					return RETRY;
				}
			}
			return unanswered(err, instance, starting);
		} finally {
			scheduler.release(instance);
		}
	}

	/**
	 * The raw route: streams the caller's request to the function and its answer back as they come.
	 * `timeoutMs` bounds the wait for the answer's headers; a stream, once begun, runs until either
	 * side ends it. What fails before the answer began is thrown as an ApiError: 502 function_failed,
	 * 504 function_timeout.
	 */
	async function proxy(ref: SourceRef, req: IncomingMessage, res: ServerResponse, path: string, timeoutMs: number, caller: AbortSignal): Promise<void> {
		const startedAt = performance.now();
		const deadline = scope([caller], timeoutMs);
		let status: RunResult['status'] = 'failed';
		let cold = false;
		let instance: Instance | undefined;
		// From the queue on: a deadline that falls before the function's server answered says so.
		let starting = true;
		let upstreamScope: Scope | undefined;
		try {
			const lease = await scheduler.lease(ref, deadline.signal);
			instance = lease.instance;
			cold = lease.cold;
			await abortable(instance.ready, deadline.signal);
			starting = false;
			upstreamScope = scope([deadline.signal, instance.exited.signal]);
			const body = framing(req) ? req : null;
			const upstream = await openStream(instance.url, req.method ?? 'GET', path, forwardedHeaders(req, config.token !== null), body, upstreamScope.signal);
			// The answer has begun: from here on only the caller or the function ends it.
			deadline.dispose();
			res.writeHead(upstream.statusCode ?? 502, answerHeaders(upstream));
			res.flushHeaders();
			await pipeline(upstream, res);
			status = (upstream.statusCode ?? 502) >= 500 ? 'failed' : 'success';
		} catch (err) {
			const timedOut = deadline.signal.reason instanceof TimeoutError;
			if (timedOut) status = 'timeout';
			const sent = !starting;
			if (instance && sent && (timedOut || caller.aborted)) scheduler.retire(instance);
			if (err instanceof ApiError) throw err; // queue full, shutting down
			if (res.headersSent || caller.aborted) {
				res.destroy();
				return;
			}
			const { message } = await whyUnanswered(err, instance, starting, timeoutMs, timedOut ? deadline.signal : caller);
			// The caller's body may be unread: this connection ends with the answer.
			throw new ApiError(timedOut ? 'function_timeout' : 'function_failed', message, { connection: 'close' });
		} finally {
			deadline.dispose();
			upstreamScope?.dispose();
			if (instance) scheduler.release(instance);
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
