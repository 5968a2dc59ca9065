import { STATUS_CODES } from 'node:http';

/**
 * Every error code the API answers with, its status, and when: the one list the README's error table
 * is checked against (test/errors.test.ts), and the type every error constructor takes, so a code
 * missing here does not compile.
 */
export const ERROR_CODES = {
	invalid_json: [400, 'the body is not valid UTF-8 JSON'],
	invalid_body: [400, 'the body is not a JSON object'],
	missing_body: [400, 'a body is required and there is none'],
	unknown_field: [400, 'the body has a field the endpoint does not take'],
	invalid_name: [400, 'a function name that is not 1-64 of `A-Z a-z 0-9 _ -` starting with a letter or digit'],
	invalid_language: [400, '`language` is not `python` or `deno`'],
	invalid_source_code: [400, '`source_code` is empty, not a string, or holds NUL or lone surrogates'],
	invalid_timeout_ms: [400, '`timeout_ms` (body or setting) or `X-Timeout-Ms` out of range'],
	invalid_env: [400, '`env` names or values that cannot be passed (see settings)'],
	invalid_memory_mb: [400, '`memory_mb` out of range or over `LOWCODE_FAAS_MAX_MEMORY_MB`'],
	invalid_cpus: [400, '`cpus` out of range or over `LOWCODE_FAAS_MAX_CPUS`'],
	invalid_max_replicas: [400, '`max_replicas` out of range or over `LOWCODE_FAAS_MAX_REPLICAS`'],
	invalid_min_warm: [400, '`min_warm` out of range or over `max_replicas`'],
	invalid_input: [400, '`input` nested more than 64 levels deep'],
	invalid_tail: [400, '`tail` is not an integer from 1 to 10000'],
	invalid_limit: [400, '`limit` is not an integer in range'],
	invalid_cursor: [400, '`after` is not a function name'],
	invalid_run_id: [400, 'a run id that is not one the API returned'],
	invalid_async: [400, '`async` is not `true` or `false`'],
	invalid_version: [400, 'a version number that is not a positive integer'],
	bad_path: [400, 'the request target is not a path, or has bad percent-encoding'],
	missing_host: [400, 'an HTTP/1.1 request without `Host`'],
	incomplete_body: [400, 'the body ended before its announced length'],
	bad_request: [400, 'the request is not valid HTTP (answered on the bare socket)'],
	unsupported_transfer_encoding: [400, 'a raw-route request with a transfer coding other than `chunked`'],
	unauthorized: [401, 'a token is configured and the request lacks it (with `WWW-Authenticate: Bearer`)'],
	origin_not_allowed: [403, "an `Origin` that is not the server's own nor in `LOWCODE_FAAS_ALLOWED_ORIGINS`"],
	cross_site_request: [403, '`Sec-Fetch-Site: cross-site` or `same-site` from a browser'],
	not_found: [404, 'no such route'],
	function_not_found: [404, 'no `NAME.py` or `NAME.ts`'],
	run_not_found: [404, 'no run with that id'],
	version_not_found: [404, 'the function has no such version kept (pruned, or never made)'],
	method_not_allowed: [405, 'a known route with the wrong method (the `Allow` header lists the right ones)'],
	request_timeout: [408, 'the request came too slowly (`LOWCODE_FAAS_HEADERS_TIMEOUT_S`, `LOWCODE_FAAS_REQUEST_TIMEOUT_S`)'],
	unsafe_function_file: [409, "the function's file is a symlink, has other hard links, or is not a regular file"],
	body_too_large: [413, 'a request body over `LOWCODE_FAAS_MAX_BODY`'],
	source_too_large: [413, 'a source over 1 MiB'],
	unsupported_media_type: [415, 'a body without `Content-Type: application/json`, or compressed'],
	expectation_failed: [417, 'an `Expect` other than `100-continue`'],
	host_not_allowed: [421, 'a `Host` that is not this server (DNS rebinding); see `LOWCODE_FAAS_ALLOWED_HOSTS`'],
	too_many_invocations: [429, 'every container busy and the wait queue full (with `Retry-After`)'],
	too_many_async_runs: [429, '10000 async runs already waiting (with `Retry-After`)'],
	headers_too_large: [431, "request headers over Node's limit"],
	internal_error: [500, 'a fault of the platform (logged)'],
	function_failed: [502, 'raw route: the function crashed, never became ready, or broke the connection'],
	shutting_down: [503, 'the platform is stopping'],
	too_many_connections: [503, 'every one of `LOWCODE_FAAS_MAX_CONNECTIONS` sockets busy (with `Retry-After`)'],
	function_timeout: [504, 'raw route: no answer within the deadline'],
	insufficient_storage: [507, 'the disk holding `data/` is full (nothing is changed)'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The one error family of the API: every failure a client should see is an ApiError, named by its
 * code; the status comes from ERROR_CODES. Modules that are not HTTP code throw their own subclasses
 * (the pool's PoolFull, the store's UnsafeFile...), so callers can tell them apart by class.
 */
export class ApiError extends Error {
	override name = 'ApiError';
	constructor(
		readonly code: ErrorCode,
		message: string,
		readonly headers: Readonly<Record<string, string>> = {},
		options?: { cause?: unknown },
	) {
		super(message, options);
	}

	get status(): number {
		return ERROR_CODES[this.code][0];
	}
}

export interface ErrorResponse {
	status: number;
	headers: Record<string, string>;
	body: { error: { code: ErrorCode; message: string } };
}

/** Turns anything thrown by a handler into the JSON error the client gets; the unknown is a 500. */
export function toErrorResponse(err: unknown): ErrorResponse {
	if (err instanceof ApiError) {
		return { status: err.status, headers: { ...err.headers }, body: { error: { code: err.code, message: err.message } } };
	}
	const code = (err as NodeJS.ErrnoException | null)?.code;
	if (code === 'ENOSPC' || code === 'EDQUOT') {
		return { status: 507, headers: {}, body: { error: { code: 'insufficient_storage', message: 'The data folder is full; nothing was changed.' } } };
	}
	return { status: 500, headers: {}, body: { error: { code: 'internal_error', message: 'The server failed to handle this request.' } } };
}

/**
 * The whole HTTP/1.1 answer for a bare socket, for what Node keeps away from the request handler (a
 * malformed request, CONNECT, the connection cap): the same JSON error, and the connection closes.
 */
export function errorOnSocket(err: unknown): string {
	const { status, headers, body } = toErrorResponse(err);
	const payload = JSON.stringify(body);
	const extra = Object.entries(headers)
		.filter(([key]) => key !== 'connection')
		.map(([key, value]) => `${key}: ${value}\r\n`)
		.join('');
	return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n${extra}connection: close\r\n\r\n${payload}`;
}
