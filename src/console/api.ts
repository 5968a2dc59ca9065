import { askToken, forgetToken, storedToken } from './token.js';

/** An error the API answered (or the network failed with): its code and message are shown as they are. */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly code: string,
		message: string,
	) {
		super(message);
	}
}

export interface Answer {
	status: number;
	headers: Headers;
	text: string;
}

/**
 * One call to the API, same origin, with the token when there is one. A 401 asks for the token (the
 * prompt says "wrong token" when one was sent) and tries again; cancelling gives the 401 as an error.
 */
export async function call(method: string, path: string, body?: unknown): Promise<Answer> {
	for (;;) {
		const token = storedToken();
		const headers: Record<string, string> = {};
		if (token) headers.authorization = `Bearer ${token}`;
		if (body !== undefined) headers['content-type'] = 'application/json';
		// An invocation is never sent twice: a fetch that fails may have failed after the request arrived.
		const retries = method === 'POST' && /\/invoke(\?|$)/.test(path) ? 0 : RETRIES;
		const res = await send(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' }, retries);
		const text = await res.text();
		if (res.status === 401) {
			// A refused token is dropped at once: a Cancel must not leave it to be sent again.
			if (token !== null) forgetToken();
			if ((await askToken(token !== null)) !== null) continue;
		}
		if (!res.ok) throw errorOf(res.status, text);
		return { status: res.status, headers: res.headers, text };
	}
}

/** Tries a request again this many times when it could not be sent at all. */
const RETRIES = 3;

/**
 * fetch, again when it fails before any answer: Chromium aborts connections being opened whenever the
 * host's interfaces change (ERR_NETWORK_CHANGED), and Docker adds one for every container it starts.
 * A failed fetch cannot say whether its request arrived, so only calls that do the same when repeated
 * are retried (reads, a save of the same source, settings, rollback to a version, delete); an
 * invocation is not (`retries` 0), and its error says where to look.
 */
async function send(path: string, init: RequestInit, retries: number): Promise<Response> {
	for (let attempt = 0; ; attempt++) {
		try {
			return await fetch(path, init);
		} catch (err) {
			const why = err instanceof Error ? err.message : String(err);
			if (retries === 0) throw new ApiError(0, 'network_error', `The platform could not be reached (${why}); the run may have started: see History.`);
			if (attempt >= retries) throw new ApiError(0, 'network_error', `The platform could not be reached (${why}).`);
			await new Promise((resolve) => setTimeout(resolve, 100 * (attempt + 1)));
		}
	}
}

function errorOf(status: number, text: string): ApiError {
	try {
		const { error } = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
		if (error && typeof error.message === 'string') return new ApiError(status, String(error.code ?? 'error'), error.message);
	} catch {}
	return new ApiError(status, 'http_error', `The platform answered ${status}${text ? `: ${text.slice(0, 300)}` : '.'}`);
}

/** A call whose answer is JSON. */
export async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
	const { text } = await call(method, path, body);
	return (text ? JSON.parse(text) : null) as T;
}

/** The platform's rule for function names (FUNCTION_NAME in src/config.ts, which the browser cannot import). */
export const FUNCTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * The API path of a function. Names come from the URL's hash, which any link sets: one that is not a
 * function name is refused before any request, since "." and ".." are not escaped by encodeURIComponent
 * and the browser resolves them (#/functions/./invoke would POST /functions/invoke, another function).
 */
export function fnPath(name: string): string {
	if (!FUNCTION_NAME.test(name)) throw new ApiError(404, 'invalid_name', 'That is not a function name: 1-64 characters of A-Z, a-z, 0-9, "_" and "-", starting with a letter or digit.');
	return `/functions/${encodeURIComponent(name)}`;
}

export interface FunctionMeta {
	id?: string;
	name: string;
	language: 'python' | 'deno';
	created_at?: string;
	updated_at?: string;
	size?: number;
	version?: number;
	settings?: Settings;
	error?: { code: string; message: string };
}

export interface FunctionRecord extends FunctionMeta {
	source_code: string;
}

export interface Settings {
	env?: Record<string, string> | string[];
	timeout_ms?: number;
	memory_mb?: number;
	cpus?: number;
	max_replicas?: number;
	min_warm?: number;
}

export interface RunResult {
	run_id: string;
	function_id?: string;
	function?: string;
	status: string;
	http_status_code?: number | null;
	http_headers?: Record<string, string | string[]>;
	output?: unknown;
	output_truncated?: boolean;
	error_message?: string;
	duration_ms?: number;
	cold_start?: boolean;
	version?: number;
	created_at?: string;
	finished_at?: string;
}

export interface VersionMeta {
	version: number;
	created_at: string;
	size: number;
	language: 'python' | 'deno';
	current: boolean;
}

export interface VersionRecord extends VersionMeta {
	source_code: string;
}
