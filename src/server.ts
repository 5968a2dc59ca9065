import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { checkJsonHeaders, parseObject, readBody } from './body.js';
import { limitConnections } from './connections.js';
import { type DoorOptions, checkHost, checkOrigin } from './door.js';
import { ANSWER_HEADERS, ApiError, errorOnSocket, toErrorResponse } from './errors.js';
import { log } from './log.js';
import type { Params, createRouter } from './router.js';

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
	/** Paths served without a token (health checks, the console's page); one ending in '/*' opens every path under it. */
	openPaths: readonly string[];
	/** A client must have sent its headers within this, and its whole request within `requestTimeoutMs`. */
	headersTimeoutMs: number;
	requestTimeoutMs: number;
	/** Which Host headers and browser origins are served. */
	door: DoorOptions;
	/** Open connections; past it the oldest idle one is closed. */
	maxConnections: number;
}

/** Compares the presented token in constant time: digests have equal length whatever was sent. */
const digest = (value: string) => createHash('sha256').update(value).digest();
// The configured token's digest, made once per token rather than on every request.
const tokenDigests = new Map<string, Buffer>();

function authorized(header: string | undefined, token: string): boolean {
	const presented = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1] ?? '';
	let expected = tokenDigests.get(token);
	if (!expected) tokenDigests.set(token, (expected = digest(token)));
	return timingSafeEqual(digest(presented), expected);
}

/** The status line's headers and the payload of a reply. */
function render(reply: Reply): { headers: Record<string, string | number>; payload: string | undefined } {
	const headers: Record<string, string | number> = { ...ANSWER_HEADERS, ...reply.headers };
	if (reply.text !== undefined) {
		headers['content-type'] ??= 'text/plain; charset=utf-8';
		headers['content-length'] = Buffer.byteLength(reply.text);
		return { headers, payload: reply.text };
	}
	if (reply.body === undefined) return { headers, payload: undefined };
	let payload: string;
	try {
		payload = JSON.stringify(reply.body);
	} catch (err) {
		// Outside the handler's try: a reply that cannot be serialized must not end the process.
		log('error', 'cannot serialize a reply', { error: String(err) });
		return render(toErrorResponse(err));
	}
	headers['content-type'] = 'application/json; charset=utf-8';
	headers['content-length'] = Buffer.byteLength(payload);
	return { headers, payload };
}

function send(res: ServerResponse, reply: Reply) {
	const { headers, payload } = render(reply);
	res.writeHead(reply.status, headers).end(payload);
}

// After answering a client that is still sending, at most this much more is read, for at most this long.
const LINGER_BYTES = 64 * 1024 * 1024;
const LINGER_MS = 5_000;

/**
 * Answers a client that is still sending its body, then reads and discards the rest before ending, as
 * nginx's lingering close does: a socket closed with bytes unread is reset by the kernel, and the reset
 * can destroy the answer before the client has read it. The answer has a Content-Length, so the client
 * holds all of it at once; only the end of the exchange waits. Bounded: a client that keeps sending
 * past LINGER_BYTES or LINGER_MS is cut off.
 */
function answerThenDrain(req: IncomingMessage, res: ServerResponse, reply: Reply) {
	const { headers, payload } = render(reply);
	res.writeHead(reply.status, headers);
	if (payload !== undefined) res.write(payload);
	let drained = 0;
	const cutOff = setTimeout(() => res.destroy(), LINGER_MS).unref();
	res.once('close', () => clearTimeout(cutOff));
	req.on('data', (chunk: Buffer) => {
		drained += chunk.length;
		if (drained > LINGER_BYTES) res.destroy();
	});
	req.once('end', () => res.end());
	req.resume();
}

const isOpen = (pathname: string, open: readonly string[]) => open.some((path) => (path.endsWith('/*') ? pathname.startsWith(path.slice(0, -1)) : path === pathname));

/** Host, origin, then token: who may knock at all. Runs before anything else, the body included. */
function admit(req: IncomingMessage, options: ServerOptions): Target {
	// HTTP/1.1 requires Host (RFC 9112 §3.2); Node's own answer to its absence would not be JSON.
	if (req.httpVersion === '1.1' && req.headers.host === undefined) throw new ApiError('missing_host', 'An HTTP/1.1 request needs a Host header.');
	checkHost(req.headers.host, options.door);
	const url = parseTarget(req.url);
	// A link to the console from another site (a wiki, a chat) opens its page; nothing else it may reach.
	const pageVisit = req.method === 'GET' && url.pathname === '/' && req.headers['sec-fetch-mode'] === 'navigate' && req.headers['sec-fetch-dest'] === 'document';
	checkOrigin(req.headers, options.door, pageVisit);
	if (options.token !== null && !isOpen(url.pathname, options.openPaths) && !authorized(req.headers.authorization, options.token)) {
		throw new ApiError('unauthorized', 'Send the API token as: Authorization: Bearer <token>.', { 'www-authenticate': 'Bearer realm="lowcode-faas"', connection: 'close' });
	}
	return url;
}

const expectsContinue = (req: IncomingMessage) => /^\s*100-continue\s*$/i.test(req.headers.expect ?? '');

async function handle(routes: Routes, options: ServerOptions, req: IncomingMessage, res: ServerResponse) {
	const started = performance.now();
	const hangup = new AbortController();
	res.once('close', () => res.writableFinished || hangup.abort());
	// A client that sent "Expect: 100-continue" waits for it before its body: sent once the body is wanted.
	let continued = false;
	const proceed = () => {
		if (continued || !expectsContinue(req)) return;
		continued = true;
		res.writeContinue();
	};
	let reply: Reply | null;
	try {
		const url = admit(req, options);
		// Node hands other expectations to 'checkExpectation'; they are answered only once admitted.
		if (req.headers.expect !== undefined && !expectsContinue(req)) throw new ApiError('expectation_failed', 'Only "Expect: 100-continue" is supported.');
		const method = req.method ?? 'GET';
		const match = routes.match(method, url.pathname);
		if (match.kind === 'not_found') throw new ApiError('not_found', `No route for ${url.pathname}.`);
		if (match.kind === 'method_not_allowed') {
			throw new ApiError('method_not_allowed', `${method} is not allowed here; use ${match.allow.join(', ')}.`, { allow: match.allow.join(', ') });
		}
		let body: Promise<Buffer> | undefined;
		const readJson = async () => {
			checkJsonHeaders(req.headers);
			return readBody(req, options.maxBodyBytes, proceed);
		};
		reply = await match.handler({
			method,
			params: match.params,
			query: url.searchParams,
			signal: hangup.signal,
			// A handler that takes the raw request streams its body: the client may send it now.
			get raw() {
				proceed();
				return { req, res, rest: match.rest };
			},
			json: async ({ optional = false } = {}) => parseObject(await (body ??= readJson()), optional),
		});
	} catch (err) {
		const error = toErrorResponse(err);
		// A function that failed or timed out on the raw route is the function's fault, not the platform's.
		const functionsFault = err instanceof ApiError && (err.code === 'function_failed' || err.code === 'function_timeout');
		if (error.status >= 500 && !functionsFault) log('error', 'request failed', { method: req.method, url: req.url, error: String((err as Error)?.stack ?? err) });
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
	if (req.complete) send(res, reply);
	else {
		// The body was refused before it was all read: this connection carries no further request.
		reply = { ...reply, headers: { ...reply.headers, connection: 'close' } };
		// A client still waiting for 100 Continue sends no body; one that is sending it is drained.
		if (expectsContinue(req) && !continued) send(res, reply);
		else answerThenDrain(req, res, reply);
	}
	log('info', 'request', { method: req.method, url: req.url, status: reply.status, ms: Math.round(performance.now() - started) });
}

/**
 * The request target's path exactly as sent, and its query. Routing is on this raw path: a URL
 * parser would resolve `..`, `%2e%2e` and `\` (read as `/`), so `/fn/a/%2e%2e/b/x` would reach
 * function b; here it stays a path under a. An absolute-form target counts from the '/' after its
 * authority; the asterisk form is kept as it is (no route has it).
 */
type Target = { pathname: string; searchParams: URLSearchParams };

function parseTarget(target: string | undefined): Target {
	let raw = target ?? '/';
	if (!raw.startsWith('/') && raw !== '*') {
		const absolute = /^[a-z][a-z\d+.-]*:\/\/[^/?#]*([^#]*)/i.exec(raw);
		if (!absolute) throw new ApiError('bad_path', 'The request target is not a valid path.');
		raw = absolute[1]!.startsWith('/') ? absolute[1]! : `/${absolute[1]}`;
	}
	const end = raw.search(/[?#]/);
	const query = end >= 0 && raw[end] === '?' ? raw.slice(end + 1).split('#')[0]! : '';
	return { pathname: end < 0 ? raw : raw.slice(0, end), searchParams: new URLSearchParams(query) };
}

/** Answers `err` on a bare socket, for what Node keeps away from the request handler; then closes it. */
function replyRaw(socket: Duplex, err: unknown) {
	if (!socket.writable) return void socket.destroy();
	socket.end(errorOnSocket(err));
}

export function createApiServer(routes: Routes, options: ServerOptions): Server {
	// A client that trickles its headers or body is cut off instead of holding a socket for ever; the
	// check runs every second, not every 30 s, so the cut comes close to the limit. A missing Host
	// header is no reason to answer outside the JSON error format. An idle kept-alive socket closes after
	// keepAliveTimeout (Node's default, stated here because the connection cap relies on it).
	const server = createServer({
		headersTimeout: options.headersTimeoutMs,
		requestTimeout: options.requestTimeoutMs,
		connectionsCheckingInterval: 1_000,
		keepAliveTimeout: 5_000,
		requireHostHeader: false,
	});
	const busy = limitConnections(server, options.maxConnections, (socket) => replyRaw(socket, new ApiError('too_many_connections', 'Too many open connections; retry shortly.', { 'retry-after': '1' })));
	const serve = (req: IncomingMessage, res: ServerResponse) => {
		busy(req, res);
		void handle(routes, options, req, res);
	};
	server.on('request', serve);
	// Expect: 100-continue, and any other expectation: the same door first, the 100 or the 417 after.
	server.on('checkContinue', serve);
	server.on('checkExpectation', serve);
	server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
		const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request';
		replyRaw(socket, new ApiError(code, 'The request is not valid HTTP, or came too slowly.'));
	});
	// Node hands CONNECT to its own event; no route takes it, but the door is the same as for any request.
	server.on('connect', (req: IncomingMessage, socket: Duplex) => {
		try {
			const match = routes.match('CONNECT', admit(req, options).pathname);
			if (match.kind === 'method_not_allowed') replyRaw(socket, new ApiError('method_not_allowed', `CONNECT is not allowed here; use ${match.allow.join(', ')}.`, { allow: match.allow.join(', ') }));
			else replyRaw(socket, new ApiError('not_found', 'No route for this path.'));
		} catch (err) {
			// Outside the request handler nothing else catches: a bad path must not end the process.
			replyRaw(socket, err);
		}
	});
	return server;
}
