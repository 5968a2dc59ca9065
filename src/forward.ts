import { Agent, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, request } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { scope } from './abort.js';

/** HTTP between the platform and a function's container: readiness polling and the forwarded call. */

const POLL_INTERVAL_MS = 15;
// Each attempt may take longer than the last: a quick first answer is found at once, and a server slow
// to answer GET / still gets up to the last value. Early attempts can hang rather than fail while the
// container's network comes up, so they must not wait long.
const ATTEMPT_TIMEOUTS_MS = [100, 200, 400, 800, 1_600, 3_200];

export class ReadyTimeout extends Error {
	override name = 'ReadyTimeout';
}

export class OutputTooLarge extends Error {
	override name = 'OutputTooLarge';
}

/**
 * Node ends some exchanges with a bare 'close' and no error (an answer of 101 Switching Protocols
 * nobody asked for): without this, the call would wait for ever and hold its container's slot.
 * Made only for an exchange that never settled: an Error (and its stack) on every successful call had
 * cost a quarter of the platform's CPU per invocation (measured).
 */
class ClosedEarly extends Error {
	override name = 'ClosedEarly';
}
const CLOSED_EARLY = 'the connection to the function ended without a whole answer (or it switched protocols unasked)';

/** Resolves when the server at `url` answers with any status; the answer is not read, nor followed. */
function probe(url: string, signal: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		// node:http follows no redirect: a function's 302 to a host-only service is an answer, not a hop.
		const req = request(url, { agent: false, signal }, (res) => {
			res.destroy();
			resolve();
		});
		req.on('error', reject);
		req.end();
	});
}

/**
 * Polls `url` until the server answers with any HTTP status. A TCP connect alone proves nothing:
 * docker-proxy accepts on the published port before anything listens in the container.
 * Throws ReadyTimeout at `deadline` (epoch ms); rethrows the abort reason when `signal` fires.
 */
export async function waitReady(url: string, deadline: number, signal: AbortSignal): Promise<void> {
	for (let attempt = 0; ; attempt++) {
		signal.throwIfAborted();
		const remaining = deadline - Date.now();
		if (remaining <= 0) throw new ReadyTimeout('not ready in time');
		const limit = ATTEMPT_TIMEOUTS_MS[Math.min(attempt, ATTEMPT_TIMEOUTS_MS.length - 1)]!;
		const scoped = scope([signal], Math.min(limit, remaining));
		try {
			await probe(url, scoped.signal);
			return;
		} catch {
			signal.throwIfAborted();
		} finally {
			scoped.dispose();
		}
		await sleep(Math.min(POLL_INTERVAL_MS, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => {});
	}
}

export interface FunctionResponse {
	status: number;
	headers: IncomingHttpHeaders;
	body: Buffer;
}

// Connections whose last exchange ended cleanly. Only these go back to the pool: a connection where
// either side may still have bytes in flight would hand them to the next caller as its answer.
const clean = new WeakSet<Duplex>();

// Bytes on an idle pooled connection answer no request of ours: the connection is out of step.
function onIdleData(this: Duplex) {
	this.destroy();
}

class CleanAgent extends Agent {
	// @types/node says void; Node uses the boolean (false: the socket is destroyed, not pooled).
	override keepSocketAlive(socket: Duplex): boolean {
		if (!clean.delete(socket) || (socket as Socket).readableLength > 0) return false;
		const kept = (Agent.prototype.keepSocketAlive as (s: Duplex) => boolean).call(this, socket);
		if (kept) socket.once('data', onIdleData);
		return kept;
	}

	override reuseSocket(socket: Duplex, req: ClientRequest) {
		socket.off('data', onIdleData);
		super.reuseSocket(socket, req);
	}
}

// One keep-alive pool for every container: a warm invocation reuses an open connection. node:http
// rather than fetch on this path: measured here, it costs a quarter of fetch's CPU per request.
// No maxSockets: with a queue, Node would hand a freed socket on without asking keepSocketAlive.
const agent = new CleanAgent({ keepAlive: true, scheduling: 'lifo' });

/**
 * Marks the connection reusable once the answer was read to its end after the whole request was
 * sent; any other ending (answer first, cut short, upgrade, error) destroys it.
 */
function settle(req: ClientRequest, res: IncomingMessage) {
	// Node would pool a socket even after a request that said `Connection: close`; the server closes it.
	const closing = /\bclose\b/i.test(String(req.getHeader('connection') ?? ''));
	res.once('end', () => {
		if (req.writableFinished && res.complete && !closing && req.socket) clean.add(req.socket);
		else req.destroy();
	});
	res.once('close', () => res.complete || req.destroy());
}

/** POSTs `input` as JSON to the function and reads its answer, refusing more than `maxBytes` of body. */
export function forward(url: string, input: unknown, maxBytes: number, signals: readonly AbortSignal[]): Promise<FunctionResponse> {
	const payload = JSON.stringify(input ?? null);
	return new Promise((done, fail) => {
		const aborted = signals.find((signal) => signal.aborted);
		if (aborted) return fail(aborted.reason);
		// Any of `signals` ends the call. Plain listeners rather than a combined AbortSignal per call: on
		// this path each AbortController costs measurably (abort_controller was 2% of the CPU under load).
		const onAbort = function (this: AbortSignal) {
			req.destroy();
			reject(this.reason);
		};
		// The close that ends every exchange rejects only one that never settled (see ClosedEarly).
		let settled = false;
		const finish = () => {
			settled = true;
			for (const signal of signals) signal.removeEventListener('abort', onAbort);
		};
		const resolve = (value: FunctionResponse) => {
			finish();
			done(value);
		};
		const reject = (err: unknown) => {
			if (settled) return;
			finish();
			fail(err);
		};
		for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
		const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
			settle(req, res);
			const declared = Number(res.headers['content-length']);
			if (declared > maxBytes) {
				req.destroy();
				return reject(new OutputTooLarge(`the function's response body is larger than ${maxBytes} bytes`));
			}
			const chunks: Buffer[] = [];
			let size = 0;
			res.on('data', (chunk: Buffer) => {
				size += chunk.length;
				if (size > maxBytes) {
					req.destroy();
					reject(new OutputTooLarge(`the function's response body is larger than ${maxBytes} bytes`));
				} else chunks.push(chunk);
			});
			res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size) }));
			res.on('error', reject);
			res.on('aborted', () => reject(new Error('the function closed the connection mid-answer')));
		});
		req.on('error', (err: NodeJS.ErrnoException & { staleSocket?: boolean }) => {
			// A kept-alive connection the container closed while idle: the request never reached it.
			if (req.reusedSocket && err.code === 'ECONNRESET') err.staleSocket = true;
			reject(err);
		});
		req.on('close', () => settled || reject(new ClosedEarly(CLOSED_EARLY)));
		req.end(payload);
	});
}

// Hop-by-hop headers describe one connection and are not forwarded (RFC 9110 §7.6.1).
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

// How a message is framed and where it goes are the platform's to say, on each hop, whatever either
// side sent or named in Connection. Expect was answered by the platform already.
const PLATFORM_OWNED = new Set(['content-length', 'transfer-encoding', 'host', 'expect']);

// Set by the platform on every raw answer, whatever the function sent: its HTML never runs with the
// API's origin, nor is sniffed into something runnable.
export const RAW_ANSWER_HEADERS: Readonly<Record<string, string>> = { 'content-security-policy': 'sandbox', 'x-content-type-options': 'nosniff' };

/** Headers only the platform may set on an answer: a function's own are dropped. X-Lowcode-Faas-Error
 * means "the platform made this error", so a function cannot pass its answer off as one. */
export const PLATFORM_ANSWER_HEADERS = new Set(['x-lowcode-faas-error', ...Object.keys(RAW_ANSWER_HEADERS)]);

/**
 * Raw header pairs minus hop-by-hop ones, those `Connection` names and the framing ones (which the
 * platform sets itself: see `framing`); repeated headers stay repeated.
 */
export function endToEnd(rawHeaders: string[]): Map<string, string[]> {
	const named = new Set<string>();
	for (let i = 0; i < rawHeaders.length; i += 2) {
		if (rawHeaders[i]!.toLowerCase() === 'connection') for (const h of rawHeaders[i + 1]!.split(',')) named.add(h.trim().toLowerCase());
	}
	const out = new Map<string, string[]>();
	for (let i = 0; i < rawHeaders.length; i += 2) {
		const key = rawHeaders[i]!.toLowerCase();
		if (HOP_BY_HOP.has(key) || PLATFORM_OWNED.has(key) || named.has(key)) continue;
		out.set(key, [...(out.get(key) ?? []), rawHeaders[i + 1]!]);
	}
	return out;
}

/**
 * How to frame a message's body on the next hop, from the message as Node's parser read it (which
 * refuses a length together with chunked, and conflicting lengths): its length when known, chunked
 * when not, and no body at all when it had no framing. Never from the headers left after filtering.
 */
export function framing(msg: IncomingMessage): { 'content-length': string } | { 'transfer-encoding': 'chunked' } | null {
	if (msg.headers['transfer-encoding'] !== undefined) return { 'transfer-encoding': 'chunked' };
	const length = msg.headers['content-length'];
	return length === undefined ? null : { 'content-length': length };
}

/**
 * Sends a request to the function with `body` streamed as it arrives (null: no body); resolves with
 * the response as soon as its headers are in, its body still to be read.
 */
export function openStream(url: string, method: string, path: string, headers: OutgoingHttpHeaders, body: Readable | null, signal: AbortSignal): Promise<IncomingMessage> {
	return new Promise((resolve, reject) => {
		// Host and port are the container's own; the path goes as it is, never resolved against the
		// URL: `//other.host/` must stay a path.
		const { hostname, port } = new URL(url);
		// Whether the function read a body is unknowable: one that did not would take it for requests of
		// its own and answer the next caller on the connection with them. So a body gets a connection of
		// its own, closed after; being new, it cannot be a stale one either (a streamed body is not retried).
		const own = body !== null;
		const options = { host: hostname, port, path, method, signal, agent: own ? false : agent, headers: own ? { ...headers, connection: 'close' } : headers };
		let settled = false;
		const req = request(options, (res) => {
			settle(req, res);
			settled = true;
			resolve(res);
		});
		req.on('error', (err) => {
			// The caller's body is drained, not destroyed: the caller still gets a proper 502.
			if (body) {
				body.unpipe(req);
				body.resume();
			}
			settled = true;
			reject(err);
		});
		req.on('close', () => settled || reject(new ClosedEarly(CLOSED_EARLY)));
		if (!body) return void req.end();
		body.on('error', (err) => req.destroy(err));
		// A caller gone mid-body: what was sent is not a whole request, so its connection must not be kept.
		body.on('close', () => (body as IncomingMessage).complete === false && req.destroy());
		body.pipe(req);
	});
}
