import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
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
}

export interface Reply {
	status: number;
	body?: unknown;
	headers?: Record<string, string>;
}

export type Handler = (req: ApiRequest) => Promise<Reply>;
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
	for await (const chunk of req as AsyncIterable<Buffer>) {
		size += chunk.length;
		if (size > limit) throw tooLarge(limit);
		chunks.push(chunk);
	}
	return Buffer.concat(chunks, size);
}

function parseObject(raw: Buffer, optional: boolean, contentType: string | undefined): Record<string, unknown> {
	if (raw.length === 0) {
		if (optional) return {};
		throw badRequest('missing_body', 'The request needs a JSON object body.');
	}
	if (contentType !== undefined && !JSON_TYPE.test(contentType)) {
		throw new HttpError(415, 'unsupported_media_type', 'Send the body as JSON, with Content-Type: application/json.');
	}
	let value: unknown;
	try {
		value = JSON.parse(raw.toString('utf8'));
	} catch {
		throw badRequest('invalid_json', 'The request body is not valid JSON.');
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
	let reply: Reply;
	try {
		const url = new URL(req.url ?? '/', 'http://localhost');
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
			json: async ({ optional = false } = {}) => parseObject(await (body ??= readBody(req, options.maxBodyBytes)), optional, req.headers['content-type']),
		});
	} catch (err) {
		const error = toErrorResponse(err);
		if (error.status >= 500) log('error', 'request failed', { method: req.method, url: req.url, error: String((err as Error)?.stack ?? err) });
		reply = error;
	}
	if (res.destroyed) return;
	send(res, reply);
	log('debug', 'request', { method: req.method, url: req.url, status: reply.status, ms: Math.round(performance.now() - started) });
}

export function createApiServer(routes: Routes, options: ServerOptions): Server {
	// A client that trickles its headers or body is cut off instead of holding a socket for ever; the
	// check runs every second, not every 30 s, so the cut comes close to the limit.
	const server = createServer(
		{ headersTimeout: options.headersTimeoutMs, requestTimeout: options.requestTimeoutMs, connectionsCheckingInterval: 1_000 },
		(req, res) => void handle(routes, options, req, res),
	);
	server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
		if (!socket.writable) return socket.destroy();
		const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
		const payload = JSON.stringify({ error: { code: 'bad_request', message: 'The request is not valid HTTP.' } });
		socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`);
	});
	return server;
}
