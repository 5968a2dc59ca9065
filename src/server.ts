import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError, badRequest, toErrorResponse } from './errors.js';
import { log } from './log.js';
import { type Params, createRouter } from './router.js';

/** What a handler sees of a request. */
export interface ApiRequest {
	method: string;
	params: Params;
	query: URLSearchParams;
	/** The body as a JSON object; `{}` when there is none and `optional` is set. */
	json(options?: { optional?: boolean }): Promise<Record<string, unknown>>;
	/** Fires when the client hangs up before the reply is sent. */
	signal: AbortSignal;
	/** The request and response themselves, for a handler that streams (it then returns null). */
	raw: { req: IncomingMessage; res: ServerResponse; rest: string };
}

export interface Reply {
	status: number;
	/** Sent as JSON. */
	body?: unknown;
	/** Sent as text/plain unless a content-type header says otherwise. */
	text?: string;
	headers?: Record<string, string>;
}

/** A handler answers with a Reply, or with null when it wrote the response itself. */
export type Handler = (req: ApiRequest) => Promise<Reply | null>;
export type Routes = ReturnType<typeof createRouter<Handler>>;

export interface ServerOptions {
	maxBodyBytes: number;
	/** Bearer token required on every path but the open ones; null for none. */
	token: string | null;
	/** Paths served without a token (health checks). */
	openPaths: readonly string[];
	/** A client must have sent its headers within this, and its whole request within `requestTimeoutMs`. */
	headersTimeoutMs: number;
	requestTimeoutMs: number;
}

/** Compares the presented token in constant time: digests have equal length whatever was sent. */
function authorized(header: string | undefined, token: string): boolean {
	const presented = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1] ?? '';
	const digest = (value: string) => createHash('sha256').update(value).digest();
	return timingSafeEqual(digest(presented), digest(token));
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

function send(res: ServerResponse, reply: Reply) {
	const headers: Record<string, string | number> = { ...reply.headers };
	if (reply.text !== undefined) {
		headers['content-type'] ??= 'text/plain; charset=utf-8';
		headers['content-length'] = Buffer.byteLength(reply.text);
		res.writeHead(reply.status, headers).end(reply.text);
		return;
	}
	if (reply.body === undefined) {
		res.writeHead(reply.status, headers).end();
		return;
	}
	const payload = JSON.stringify(reply.body);
	headers['content-type'] = 'application/json; charset=utf-8';
	headers['content-length'] = Buffer.byteLength(payload);
	res.writeHead(reply.status, headers).end(payload);
}

function tooLarge(limit: number) {
	return new HttpError(413, 'body_too_large', `The request body must be at most ${limit} bytes.`, { connection: 'close' });
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
	if (Number(req.headers['content-length']) > limit) throw tooLarge(limit);
	const chunks: Buffer[] = [];
	let size = 0;
	try {
		for await (const chunk of req as AsyncIterable<Buffer>) {
			size += chunk.length;
			if (size > limit) throw tooLarge(limit);
			chunks.push(chunk);
		}
	} catch (err) {
		if (err instanceof HttpError) throw err;
		// The client hung up or broke the framing mid-body: its fault, not the server's.
		throw new HttpError(400, 'incomplete_body', 'The request body ended before it was complete.', { connection: 'close' }, { cause: err });
	}
	return Buffer.concat(chunks, size);
}

// Fatal: bytes that are not UTF-8 are refused, not silently replaced with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function parseObject(raw: Buffer, optional: boolean, headers: IncomingMessage['headers']): Record<string, unknown> {
	if (raw.length === 0) {
		if (optional) return {};
		throw badRequest('missing_body', 'The request needs a JSON object body.');
	}
	const contentType = headers['content-type'];
	if (contentType !== undefined && !JSON_TYPE.test(contentType)) {
		throw new HttpError(415, 'unsupported_media_type', 'Send the body as JSON, with Content-Type: application/json.');
	}
	const encoding = headers['content-encoding'];
	if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
		throw new HttpError(415, 'unsupported_media_type', 'Send the body uncompressed (no Content-Encoding).');
	}
	let value: unknown;
	try {
		value = JSON.parse(utf8.decode(raw));
	} catch {
		throw badRequest('invalid_json', 'The request body is not valid UTF-8 JSON.');
	}
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		throw badRequest('invalid_body', 'The request body must be a JSON object.');
	}
	return value as Record<string, unknown>;
}

async function handle(routes: Routes, options: ServerOptions, req: IncomingMessage, res: ServerResponse) {
	const started = performance.now();
	const hangup = new AbortController();
	res.once('close', () => res.writableFinished || hangup.abort());
	let reply: Reply | null;
	try {
		// HTTP/1.1 requires Host (RFC 9112 §3.2); Node's own answer to its absence would not be JSON.
		if (req.httpVersion === '1.1' && req.headers.host === undefined) throw badRequest('missing_host', 'An HTTP/1.1 request needs a Host header.');
		const url = parseTarget(req.url);
		const method = req.method ?? 'GET';
		// Before anything else, the body included: a rejected request has no effect at all.
		if (options.token !== null && !options.openPaths.includes(url.pathname) && !authorized(req.headers.authorization, options.token)) {
			throw new HttpError(401, 'unauthorized', 'Send the API token as: Authorization: Bearer <token>.', { 'www-authenticate': 'Bearer realm="lowcode-faas"', connection: 'close' });
		}
		const match = routes.match(method, url.pathname);
		if (match.kind === 'not_found') throw new HttpError(404, 'not_found', `No route for ${url.pathname}.`);
		if (match.kind === 'method_not_allowed') {
			throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${match.allow.join(', ')}.`, { allow: match.allow.join(', ') });
		}
		let body: Promise<Buffer> | undefined;
		reply = await match.handler({
			method,
			params: match.params,
			query: url.searchParams,
			signal: hangup.signal,
			raw: { req, res, rest: match.rest },
			json: async ({ optional = false } = {}) => parseObject(await (body ??= readBody(req, options.maxBodyBytes)), optional, req.headers),
		});
	} catch (err) {
		const error = toErrorResponse(err);
		if (error.status >= 500) log('error', 'request failed', { method: req.method, url: req.url, error: String((err as Error)?.stack ?? err) });
		reply = error;
	}
	if (reply === null) {
		log('info', 'request', { method: req.method, url: req.url, status: res.statusCode, ms: Math.round(performance.now() - started) });
		return;
	}
	if (res.destroyed || res.headersSent) {
		if (!res.destroyed) res.destroy();
		return;
	}
	send(res, reply);
	log('info', 'request', { method: req.method, url: req.url, status: reply.status, ms: Math.round(performance.now() - started) });
}

/**
 * The request target's path exactly as sent, and its query. Routing is on this raw path: a URL
 * parser would resolve `..`, `%2e%2e` and `\` (read as `/`), so `/fn/a/%2e%2e/b/x` would reach
 * function b; here it stays a path under a. An absolute-form target counts from the '/' after its
 * authority; the asterisk form is kept as it is (no route has it).
 */
function parseTarget(target: string | undefined): { pathname: string; searchParams: URLSearchParams } {
	let raw = target ?? '/';
	if (!raw.startsWith('/') && raw !== '*') {
		const absolute = /^[a-z][a-z\d+.-]*:\/\/[^/?#]*([^#]*)/i.exec(raw);
		if (!absolute) throw badRequest('bad_path', 'The request target is not a valid path.');
		raw = absolute[1]!.startsWith('/') ? absolute[1]! : `/${absolute[1]}`;
	}
	const end = raw.search(/[?#]/);
	const query = end >= 0 && raw[end] === '?' ? raw.slice(end + 1).split('#')[0]! : '';
	return { pathname: end < 0 ? raw : raw.slice(0, end), searchParams: new URLSearchParams(query) };
}

/** Answers on a bare socket, for what Node keeps away from the request handler; then closes it. */
function replyRaw(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}) {
	if (!socket.writable) return void socket.destroy();
	const payload = JSON.stringify({ error: { code, message } });
	const extra = Object.entries(headers).map(([key, value]) => `${key}: ${value}\r\n`).join('');
	socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n${extra}connection: close\r\n\r\n${payload}`);
}

export function createApiServer(routes: Routes, options: ServerOptions): Server {
	// A client that trickles its headers or body is cut off instead of holding a socket for ever; the
	// check runs every second, not every 30 s, so the cut comes close to the limit. A missing Host
	// header is no reason to answer outside the JSON error format.
	const server = createServer(
		{ headersTimeout: options.headersTimeoutMs, requestTimeout: options.requestTimeoutMs, connectionsCheckingInterval: 1_000, requireHostHeader: false },
		(req, res) => void handle(routes, options, req, res),
	);
	server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
		const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
		replyRaw(socket, status, status === 408 ? 'request_timeout' : status === 431 ? 'headers_too_large' : 'bad_request', 'The request is not valid HTTP, or came too slowly.');
	});
	// Node hands CONNECT to its own event; no route takes it.
	server.on('connect', (req: IncomingMessage, socket: Duplex) => {
		try {
			const match = routes.match('CONNECT', parseTarget(req.url).pathname);
			if (match.kind === 'method_not_allowed') replyRaw(socket, 405, 'method_not_allowed', `CONNECT is not allowed here; use ${match.allow.join(', ')}.`, { allow: match.allow.join(', ') });
			else replyRaw(socket, 404, 'not_found', 'No route for this path.');
		} catch (err) {
			// Outside the request handler nothing else catches: a bad path must not end the process.
			const error = toErrorResponse(err);
			replyRaw(socket, error.status, error.body.error.code, error.body.error.message);
		}
	});
	server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
		send(res, { status: 417, body: { error: { code: 'expectation_failed', message: 'Only "Expect: 100-continue" is supported.' } } });
	});
	return server;
}
