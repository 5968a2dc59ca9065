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
	headers: Headers;
	body: Buffer;
}

/** POSTs `input` as JSON to the function and reads its answer, refusing more than `maxBytes` of body. */
export async function forward(url: string, input: unknown, maxBytes: number, signal: AbortSignal): Promise<FunctionResponse> {
	const res = await fetch(url, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify(input ?? null),
		signal,
	});
	return { status: res.status, headers: res.headers, body: await readCapped(res, maxBytes) };
}

async function readCapped(res: Response, maxBytes: number): Promise<Buffer> {
	if (!res.body) return Buffer.alloc(0);
	const declared = Number(res.headers.get('content-length'));
	if (declared > maxBytes) {
		await res.body.cancel();
		throw new OutputTooLarge(`the function's response body is larger than ${maxBytes} bytes`);
	}
	const chunks: Uint8Array[] = [];
	let size = 0;
	for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
		size += chunk.byteLength;
		if (size > maxBytes) {
			await res.body.cancel().catch(() => {});
			throw new OutputTooLarge(`the function's response body is larger than ${maxBytes} bytes`);
		}
		chunks.push(chunk);
	}
	return Buffer.concat(chunks, size);
}
