import { Agent, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, request } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { scope } from './signals.js';

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
			const res = await fetch(url, { signal: scoped.signal });
			await res.body?.cancel();
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

// One keep-alive pool for every container: a warm invocation reuses an open connection. node:http
// rather than fetch on this path: measured here, it costs a quarter of fetch's CPU per request.
const agent = new Agent({ keepAlive: true, scheduling: 'lifo' });

/** POSTs `input` as JSON to the function and reads its answer, refusing more than `maxBytes` of body. */
export function forward(url: string, input: unknown, maxBytes: number, signal: AbortSignal): Promise<FunctionResponse> {
	const payload = JSON.stringify(input ?? null);
	return new Promise((resolve, reject) => {
		const req = request(url, { method: 'POST', agent, signal, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
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
		req.end(payload);
	});
}

// Hop-by-hop headers describe one connection and are not forwarded (RFC 9110 §7.6.1).
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Raw header pairs minus hop-by-hop ones and those `Connection` names; repeated headers stay repeated. */
export function endToEnd(rawHeaders: string[]): Map<string, string[]> {
	const named = new Set<string>();
	for (let i = 0; i < rawHeaders.length; i += 2) {
		if (rawHeaders[i]!.toLowerCase() === 'connection') for (const h of rawHeaders[i + 1]!.split(',')) named.add(h.trim().toLowerCase());
	}
	const out = new Map<string, string[]>();
	for (let i = 0; i < rawHeaders.length; i += 2) {
		const key = rawHeaders[i]!.toLowerCase();
		if (HOP_BY_HOP.has(key) || named.has(key)) continue;
		out.set(key, [...(out.get(key) ?? []), rawHeaders[i + 1]!]);
	}
	return out;
}

/**
 * Sends a request to the function with `body` streamed as it arrives; resolves with the response as
 * soon as its headers are in, its body still to be read.
 */
export function openStream(url: string, method: string, path: string, headers: OutgoingHttpHeaders, body: Readable | null, signal: AbortSignal): Promise<IncomingMessage> {
	return new Promise((resolve, reject) => {
		// The path goes as it is, never resolved against the URL: `//other.host/` must stay a path.
		const { hostname, port } = new URL(url);
		const req = request({ host: hostname, port, path, method, agent, signal, headers }, resolve);
		req.on('error', (err) => {
			// The caller's body is drained, not destroyed: the caller still gets a proper 502.
			if (body) {
				body.unpipe(req);
				body.resume();
			}
			reject(err);
		});
		if (!body) return void req.end();
		body.on('error', (err) => req.destroy(err));
		body.pipe(req);
	});
}
