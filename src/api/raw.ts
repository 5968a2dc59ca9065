import { ApiError, type ErrorCode } from '../errors.js';
import { RAW_ANSWER_HEADERS } from '../forward.js';
import type { Runner } from '../runner.js';
import type { Scheduler } from '../scheduler.js';
import type { Handler } from '../server.js';
import { timeoutFor } from '../settings.js';
import { type Store, UnsafeFile } from '../store.js';
import { isValidName } from '../validate.js';

/** An error the platform makes on the raw route: JSON, and marked as the platform's own, not the function's. */
const platformError = (code: ErrorCode, message: string, headers: Readonly<Record<string, string>> = {}) => new ApiError(code, message, { ...headers, ...RAW_ANSWER_HEADERS, 'x-lowcode-faas-error': code });

/**
 * `/fn/{name}` and `/fn/{name}/{rest...}`, any method: the function gets the method, the rest of the
 * path, the query and the headers, and its status, headers and body come back as they are, streamed.
 */
export function rawRoute(store: Store, scheduler: Scheduler, runner: Runner): Handler {
	return async (req) => {
		const name = req.params.name ?? '';
		if (!isValidName(name)) throw platformError('invalid_name', 'The function name in the path is not valid.');
		const ref = await store.locate(name).catch((err: unknown) => {
			// A function file that is a link or a FIFO: refused as the platform's answer, not the function's.
			if (err instanceof UnsafeFile) throw platformError(err.code, err.message);
			throw err;
		});
		if (!ref) {
			scheduler.retireFunction(name);
			throw platformError('function_not_found', `No function named "${name}".`);
		}
		// Chunked is the only transfer coding passed on: any other would reach the function as if it were the body.
		const coding = req.raw.req.headers['transfer-encoding'];
		if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') {
			throw platformError('unsupported_transfer_encoding', 'Only "Transfer-Encoding: chunked" is accepted.', { connection: 'close' });
		}
		const wanted = req.raw.req.headers['x-timeout-ms'];
		if (wanted !== undefined && (!/^\d+$/.test(String(wanted)) || Number(wanted) < 1)) throw platformError('invalid_timeout_ms', 'X-Timeout-Ms must be a positive integer.');
		const timeoutMs = timeoutFor(ref.settings, wanted === undefined ? undefined : Number(wanted));
		const query = req.raw.req.url?.includes('?') ? req.raw.req.url.slice(req.raw.req.url.indexOf('?')) : '';
		await runner.proxy(ref, req.raw.req, req.raw.res, (req.raw.rest || '/') + query, timeoutMs, req.signal).catch((err: unknown) => {
			// Raised before anything was written (429, 502, 504...): marked as the platform's.
			if (err instanceof ApiError) throw platformError(err.code, err.message, err.headers);
			throw err;
		});
		return null;
	};
}
