import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { scope } from './abort.js';

/**
 * When a function's server is ready: when it answers HTTP. A TCP connect alone proves nothing:
 * docker-proxy accepts on a published port before anything listens in the container.
 */

const POLL_INTERVAL_MS = 15;
// Each attempt may take longer than the last: a quick first answer is found at once, and a server slow
// to answer GET / still gets up to the last value. Early attempts can hang rather than fail while the
// container's network comes up, so they must not wait long.
const ATTEMPT_TIMEOUTS_MS = [100, 200, 400, 800, 1_600, 3_200];
// While it waits, whether the instance still runs is also asked this often, in case the news of its
// exit was missed (the events stream restarting).
const ALIVE_CHECK_MS = 500;

/** The header every answer of a stem cell's loader carries (runtime/loader.*). */
export const STEM_HEADER = 'x-lowcode-faas-stem';

export class ReadyTimeout extends Error {
	override name = 'ReadyTimeout';
}

/** The instance stopped before it answered. */
class StoppedEarly extends Error {
	override name = 'StoppedEarly';
}

/** Resolves when the server at `url` answers with any status, from a stem cell's loader or not as `stem` says; the answer is not read, nor followed. */
function probe(url: string, signal: AbortSignal, stem: boolean): Promise<void> {
	return new Promise((resolve, reject) => {
		// node:http follows no redirect: a function's 302 to a host-only service is an answer, not a hop.
		const req = request(url, { agent: false, signal }, (res) => {
			res.destroy();
			// Who answers may not be who was started: a container that stopped gives its address back, and the
			// next one started (a stem cell, often, started in the background) can take it at once.
			if (Boolean(res.headers[STEM_HEADER]) === stem) resolve();
			else reject(new Error(stem ? 'a function answered' : 'a stem cell answered'));
		});
		req.on('error', reject);
		req.end();
	});
}

/**
 * Polls `url` until the server answers with any HTTP status. Throws ReadyTimeout at `deadline` (epoch
 * ms), StoppedEarly when `alive` says the instance stopped, and the abort reason when `signal` fires.
 */
export async function waitReady(url: string, deadline: number, signal: AbortSignal, alive: () => Promise<boolean> = async () => true, stem = false): Promise<void> {
	const stopped = new AbortController();
	const checker = setInterval(() => {
		void alive().then(
			(running) => running || stopped.abort(new StoppedEarly('stopped before answering')),
			() => {},
		);
	}, ALIVE_CHECK_MS);
	const waiting = scope([signal, stopped.signal]);
	try {
		for (let attempt = 0; ; attempt++) {
			waiting.signal.throwIfAborted();
			const remaining = deadline - Date.now();
			if (remaining <= 0) throw new ReadyTimeout('not ready in time');
			const limit = ATTEMPT_TIMEOUTS_MS[Math.min(attempt, ATTEMPT_TIMEOUTS_MS.length - 1)]!;
			const attemptScope = scope([waiting.signal], Math.min(limit, remaining));
			try {
				await probe(url, attemptScope.signal, stem);
				return;
			} catch {
				waiting.signal.throwIfAborted();
			} finally {
				attemptScope.dispose();
			}
			await sleep(Math.min(POLL_INTERVAL_MS, Math.max(0, deadline - Date.now())), undefined, { signal: waiting.signal }).catch(() => {});
		}
	} finally {
		clearInterval(checker);
		waiting.dispose();
	}
}
