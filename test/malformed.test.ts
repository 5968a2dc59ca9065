import { readdir, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, dataFiles, eventually, request, startPlatform } from './helpers.js';

/*
 * Malformed requests against the real server, one table row per request. Every row must get a 4xx
 * with a JSON body {"error": {"code", "message"}}, never a 5xx, must leave the data folder empty and
 * must not make the server log an internal failure.
 *
 * Rows go through fetch (the helpers' `request`) unless they set `socket`: then the request is
 * written byte for byte on a TCP socket, because fetch and node:http normalise or refuse odd paths
 * (`..`, `//`, `\`), methods and framing.
 */

const MiB = 1024 * 1024;

interface Case {
	title: string;
	method: string;
	path: string;
	/** An object is sent as JSON; a string or Buffer as it is. */
	body?: unknown;
	/** Lower-case names. With a body, content-type defaults to application/json; `null` leaves it out. */
	headers?: Record<string, string | null>;
	/** Send over a raw socket, exactly as written. */
	socket?: boolean;
	/** The whole request, bytes as they go on the wire (implies `socket`). */
	wire?: string | Buffer;
	status: number;
	/** The expected error code, or the acceptable ones. */
	code: string | string[];
	/** For a 405: the Allow header. */
	allow?: string;
}

interface Answer {
	status: number;
	headers: Record<string, string>;
	text: string;
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client over a socket: it writes the bytes and reads one response.

function parseResponse(data: Buffer, head: boolean, closed: boolean): Answer | null {
	let rest = data;
	for (;;) {
		const end = rest.indexOf('\r\n\r\n');
		if (end < 0) return null;
		const lines = rest.subarray(0, end).toString('latin1').split('\r\n');
		const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
		if (!status) throw new Error(`not an HTTP response: ${JSON.stringify(rest.subarray(0, 200).toString('latin1'))}`);
		const headers: Record<string, string> = {};
		for (const line of lines.slice(1)) {
			const colon = line.indexOf(':');
			const key = line.slice(0, colon).trim().toLowerCase();
			headers[key] = headers[key] === undefined ? line.slice(colon + 1).trim() : `${headers[key]}, ${line.slice(colon + 1).trim()}`;
		}
		const body = rest.subarray(end + 4);
		// An interim response (100 Continue) is skipped.
		if (status < 200) {
			rest = body;
			continue;
		}
		if (head || status === 204 || status === 304) return { status, headers, text: '' };
		if (headers['content-length'] !== undefined) {
			const length = Number(headers['content-length']);
			if (body.length < length) return null;
			return { status, headers, text: body.subarray(0, length).toString('utf8') };
		}
		if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
			const text = dechunk(body);
			return text !== null ? { status, headers, text } : null;
		}
		return closed ? { status, headers, text: body.toString('utf8') } : null;
	}
}

/** The body of a chunked response, or null while it is incomplete. */
function dechunk(data: Buffer): string | null {
	const parts: Buffer[] = [];
	let at = 0;
	for (;;) {
		const eol = data.indexOf('\r\n', at);
		if (eol < 0) return null;
		const size = Number.parseInt(data.subarray(at, eol).toString('latin1'), 16);
		if (Number.isNaN(size)) throw new Error('a malformed chunked response');
		if (size === 0) return Buffer.concat(parts).toString('utf8');
		if (data.length < eol + 2 + size + 2) return null;
		parts.push(data.subarray(eol + 2, eol + 2 + size));
		at = eol + 2 + size + 2;
	}
}

function sendRaw(port: number, bytes: Buffer, head: boolean, timeoutMs = 20_000): Promise<Answer> {
	return new Promise((resolve, reject) => {
		const socket = connect(port, '127.0.0.1');
		const chunks: Buffer[] = [];
		let settled = false;
		const settle = (fn: () => void) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			socket.destroy();
			fn();
		};
		const timer = setTimeout(() => settle(() => reject(new Error(`no complete response within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`))), timeoutMs);
		const tryParse = (closed: boolean) => {
			try {
				const answer = parseResponse(Buffer.concat(chunks), head, closed);
				if (answer) settle(() => resolve(answer));
				else if (closed) {
					const got = Buffer.concat(chunks).toString('latin1');
					settle(() => reject(new Error(got ? `the connection closed mid-response: ${JSON.stringify(got.slice(0, 300))}` : 'the server closed the connection without any response')));
				}
			} catch (err) {
				settle(() => reject(err));
			}
		};
		socket.on('data', (chunk: Buffer) => {
			chunks.push(chunk);
			tryParse(false);
		});
		// A reset after the server answered and closed (a body it did not read) is not a failure.
		socket.on('error', () => {});
		socket.on('close', () => tryParse(true));
		socket.write(bytes);
	});
}

function bodyBytes(body: unknown): Buffer | undefined {
	if (body === undefined) return undefined;
	if (Buffer.isBuffer(body)) return body;
	return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
}

function wireOf(c: Case): Buffer {
	if (c.wire !== undefined) return Buffer.isBuffer(c.wire) ? c.wire : Buffer.from(c.wire, 'latin1');
	const body = bodyBytes(c.body);
	const headers: Record<string, string | null> = { host: '127.0.0.1', connection: 'close' };
	if (body) {
		headers['content-type'] = 'application/json';
		headers['content-length'] = String(body.length);
	}
	Object.assign(headers, c.headers);
	let head = `${c.method} ${c.path} HTTP/1.1\r\n`;
	for (const [key, value] of Object.entries(headers)) if (value !== null) head += `${key}: ${value}\r\n`;
	return Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body ?? Buffer.alloc(0)]);
}

async function send(platform: Platform, c: Case): Promise<Answer> {
	const head = c.method === 'HEAD';
	if (c.socket || c.wire !== undefined) return sendRaw(Number(new URL(platform.app.url).port), wireOf(c), head);
	const headers = Object.fromEntries(Object.entries(c.headers ?? {}).filter((e): e is [string, string] => e[1] !== null));
	const body = c.body === undefined || typeof c.body === 'string' || Buffer.isBuffer(c.body) ? c.body : JSON.stringify(c.body);
	const res = await request(platform.app.url, c.method, c.path, body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : body, headers);
	return {
		status: res.status,
		headers: Object.fromEntries(res.headers),
		text: typeof res.body === 'string' ? res.body : res.body === null ? '' : JSON.stringify(res.body),
	};
}

// ---------------------------------------------------------------------------------------------
// The table.

const valid = { name: 'ok', language: 'python', source_code: 'print(1)\n' };
const FUNCTIONS_ALLOW = 'GET, POST';
const FUNCTION_ALLOW = 'DELETE, GET, PATCH';
const INVOKE_ALLOW = 'POST';
const HEALTHZ_ALLOW = 'GET';

const cases: Case[] = [];
const add = (...rows: Case[]) => cases.push(...rows);

// -- Function names in the path. Each invalid name is tried on the three routes that take one.
const badPathNames: [string, string][] = [
	['"%2E%2E%2Fx" (encoded ../x)', '%2E%2E%2Fx'],
	['"..%2F..%2Fetc%2Fpasswd"', '..%2F..%2Fetc%2Fpasswd'],
	['"%2F" (an encoded slash)', '%2F'],
	['"%5C" (an encoded backslash)', '%5C'],
	['"a%00b" (an encoded NUL)', 'a%00b'],
	['fullwidth letters', '%EF%BD%88%EF%BD%85%EF%BD%8C%EF%BD%8C%EF%BD%8F'],
	['a Cyrillic \'а\' in "greаt"', 'gre%D0%B0t'],
	['a Greek omicron in "hellο"', 'hell%CE%BF'],
	['a combining acute accent', 'cafe%CC%81'],
	['a zero-width space', 'a%E2%80%8Bb'],
	['a right-to-left mark', '%E2%80%8Fabc'],
	['an emoji', '%F0%9F%98%80'],
	['65 characters', 'a'.repeat(65)],
	['4000 characters', 'b'.repeat(4000)],
	['a leading "-"', '-abc'],
	['a leading "_"', '_abc'],
	['a leading "."', '.abc'],
	['"%20" (an encoded space)', '%20'],
	['an encoded space inside', 'a%20b'],
	['a dot inside', 'a.b'],
	['"a.py"', 'a.py'],
	['"..." (three dots are not a dot segment)', '...'],
];
for (const [label, name] of badPathNames) {
	add(
		{ title: `path name ${label}, GET`, method: 'GET', path: `/functions/${name}`, socket: true, status: 400, code: 'invalid_name' },
		{ title: `path name ${label}, DELETE`, method: 'DELETE', path: `/functions/${name}`, socket: true, status: 400, code: 'invalid_name' },
		{ title: `path name ${label}, invoke`, method: 'POST', path: `/functions/${name}/invoke`, body: {}, socket: true, status: 400, code: 'invalid_name' },
	);
}
add(
	// Routing is on the path as sent: dot segments are not resolved, a backslash is not "/". ".." and "."
	// are then names like any other, and not valid ones.
	{ title: 'path name "..", GET (not resolved: an invalid name)', method: 'GET', path: '/functions/..', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'path name "..", DELETE', method: 'DELETE', path: '/functions/..', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'path name "..", invoke', method: 'POST', path: '/functions/../invoke', body: {}, socket: true, status: 400, code: 'invalid_name' },
	{ title: 'path name "%2e%2e", GET (an encoded dot segment)', method: 'GET', path: '/functions/%2e%2e', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'path name "%2e%2e", invoke', method: 'POST', path: '/functions/%2e%2e/invoke', body: {}, socket: true, status: 400, code: 'invalid_name' },
	{ title: 'path name ".", DELETE', method: 'DELETE', path: '/functions/.', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'a dot segment cannot climb to another route', method: 'GET', path: '/functions/x/../../healthz', socket: true, status: 404, code: 'not_found' },
	{ title: 'path name "\\" (a raw backslash)', method: 'GET', path: '/functions/\\', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'path name "a\\b" (a raw backslash inside)', method: 'DELETE', path: '/functions/a\\b', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'empty path name, invoke ("/functions//invoke")', method: 'POST', path: '/functions//invoke', body: {}, socket: true, status: 400, code: 'invalid_name' },
	{ title: 'empty path name, GET ("/functions//")', method: 'GET', path: '/functions//', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'a raw NUL byte in the path', method: 'GET', path: '/functions/a\0b', socket: true, status: 400, code: 'bad_request' },
	{ title: 'a raw space in the path', method: 'GET', path: '/functions/a b', socket: true, status: 400, code: 'bad_request' },
	{
		title: 'raw UTF-8 bytes (Cyrillic) in the path',
		method: 'GET',
		wire: Buffer.concat([Buffer.from('GET /functions/gre'), Buffer.from('а', 'utf8'), Buffer.from('t HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n')]),
		path: '/functions/greаt',
		status: 400,
		code: 'bad_request',
	},
	{ title: '64-character name is valid: unknown function', method: 'GET', path: `/functions/${'a'.repeat(64)}`, status: 404, code: 'function_not_found' },
);

// -- Function names in the POST /functions body.
const badBodyNames: [string, string][] = [
	['".."', '..'],
	['"../x"', '../x'],
	['"%2e%2e" (literally)', '%2e%2e'],
	['"%2E%2E%2Fx" (literally)', '%2E%2E%2Fx'],
	['"/"', '/'],
	['"\\"', '\\'],
	['"a/b"', 'a/b'],
	['"a\\b"', 'a\\b'],
	['"a%00b" (literally)', 'a%00b'],
	['a NUL inside', 'a\u0000b'],
	['a lone NUL', '\u0000'],
	['fullwidth letters', 'ｈｅｌｌｏ'],
	["a Cyrillic 'а'", 'greаt'],
	['a Greek omicron', 'hellο'],
	['a combining acute accent', 'cafe\u0301'],
	['a zero-width space', 'a\u200bb'],
	['a right-to-left mark', '\u200fabc'],
	['a trailing newline', 'abc\n'],
	['a tab', 'a\tb'],
	['65 characters', 'a'.repeat(65)],
	['empty', ''],
	['a leading "-"', '-abc'],
	['a leading "_"', '_abc'],
	['a leading "."', '.abc'],
	['a space inside', 'a b'],
	['a leading space', ' abc'],
	['a dot inside', 'a.b'],
	['"a.py"', 'a.py'],
	['an emoji', '😀'],
];
for (const [label, name] of badBodyNames) {
	add({ title: `body name ${label}`, method: 'POST', path: '/functions', body: { ...valid, name }, status: 400, code: 'invalid_name' });
}
add({ title: 'body name with a raw NUL escape in the JSON text', method: 'POST', path: '/functions', body: '{"name":"a\\u0000b","language":"python","source_code":"print(1)"}', status: 400, code: 'invalid_name' });

// -- Wrong JSON types for every field of POST /functions.
const wrongTypes: [string, unknown][] = [
	['a number', 42],
	['a boolean', true],
	['null', null],
	['an array', ['ok']],
	['an object', { value: 'ok' }],
];
const fieldCodes: [keyof typeof valid, string][] = [
	['name', 'invalid_name'],
	['language', 'invalid_language'],
	['source_code', 'invalid_source_code'],
];
for (const [field, code] of fieldCodes) {
	for (const [label, value] of wrongTypes) {
		add({ title: `${field} is ${label}`, method: 'POST', path: '/functions', body: { ...valid, [field]: value }, status: 400, code });
	}
}
add(
	{ title: 'missing name', method: 'POST', path: '/functions', body: { language: 'python', source_code: 'x' }, status: 400, code: 'invalid_name' },
	{ title: 'missing language', method: 'POST', path: '/functions', body: { name: 'ok', source_code: 'x' }, status: 400, code: 'invalid_language' },
	{ title: 'missing source_code', method: 'POST', path: '/functions', body: { name: 'ok', language: 'python' }, status: 400, code: 'invalid_source_code' },
	{ title: 'language "Python" (case matters)', method: 'POST', path: '/functions', body: { ...valid, language: 'Python' }, status: 400, code: 'invalid_language' },
	{ title: 'language "typescript"', method: 'POST', path: '/functions', body: { ...valid, language: 'typescript' }, status: 400, code: 'invalid_language' },
	{ title: 'source_code only whitespace', method: 'POST', path: '/functions', body: { ...valid, source_code: ' \n\t ' }, status: 400, code: 'invalid_source_code' },
	{ title: 'source_code with a NUL', method: 'POST', path: '/functions', body: { ...valid, source_code: 'print(1)\0' }, status: 400, code: 'invalid_source_code' },
	{ title: 'unknown field "envs"', method: 'POST', path: '/functions', body: { ...valid, envs: {} }, status: 400, code: 'unknown_field' },
	{ title: 'env that is not an object', method: 'POST', path: '/functions', body: { ...valid, env: ['A=1'] }, status: 400, code: 'invalid_env' },
	{ title: 'env with a bad name', method: 'POST', path: '/functions', body: { ...valid, env: { 'A-B': '1' } }, status: 400, code: 'invalid_env' },
	{ title: 'env setting PORT', method: 'POST', path: '/functions', body: { ...valid, env: { PORT: '1' } }, status: 400, code: 'invalid_env' },
	{ title: 'env with a number value', method: 'POST', path: '/functions', body: { ...valid, env: { A: 1 } }, status: 400, code: 'invalid_env' },
	{ title: 'memory_mb too small', method: 'POST', path: '/functions', body: { ...valid, memory_mb: 1 }, status: 400, code: 'invalid_memory_mb' },
	{ title: 'cpus as a string', method: 'POST', path: '/functions', body: { ...valid, cpus: '1' }, status: 400, code: 'invalid_cpus' },
	{ title: 'max_replicas zero', method: 'POST', path: '/functions', body: { ...valid, max_replicas: 0 }, status: 400, code: 'invalid_max_replicas' },
	{ title: 'min_warm over max_replicas', method: 'POST', path: '/functions', body: { ...valid, min_warm: 3, max_replicas: 2 }, status: 400, code: 'invalid_min_warm' },
	{ title: 'min_warm over the default max_replicas', method: 'POST', path: '/functions', body: { ...valid, min_warm: 5 }, status: 400, code: 'invalid_min_warm' },
	{ title: 'a settings timeout_ms of 0', method: 'POST', path: '/functions', body: { ...valid, timeout_ms: 0 }, status: 400, code: 'invalid_timeout_ms' },
	{ title: 'unknown field "id"', method: 'POST', path: '/functions', body: { ...valid, id: '1983e415-afff-4b36-b088-16e19a43a7e3' }, status: 400, code: 'unknown_field' },
	{ title: 'unknown field "__proto__"', method: 'POST', path: '/functions', body: '{"name":"ok","language":"python","source_code":"x","__proto__":{"admin":true}}', status: 400, code: 'unknown_field' },
	{ title: 'unknown field "constructor"', method: 'POST', path: '/functions', body: { ...valid, constructor: 1 }, status: 400, code: 'unknown_field' },
	{ title: 'a duplicate key: the last "name" wins and is invalid', method: 'POST', path: '/functions', body: '{"name":"ok","language":"python","source_code":"x","name":"../x"}', status: 400, code: 'invalid_name' },
);

// -- Wrong types and values for the invoke body. Validation comes before the function is looked up.
const badTimeouts: [string, string][] = [
	['a string', '"5000"'],
	['a float', '2.5'],
	['negative', '-1'],
	['zero', '0'],
	['minus zero', '-0'],
	['too large (300001)', '300001'],
	['1e400 (Infinity)', '1e400'],
	['null', 'null'],
	['a boolean', 'true'],
	['an array', '[5000]'],
	['an object', '{"ms":5000}'],
];
for (const [label, json] of badTimeouts) {
	add({ title: `invoke timeout_ms ${label}`, method: 'POST', path: '/functions/ghost/invoke', body: `{"input":{},"timeout_ms":${json}}`, status: 400, code: 'invalid_timeout_ms' });
}
const notObjects: [string, string][] = [
	['an array', '[{"input":{}}]'],
	['a string', '"hello"'],
	['a number', '42'],
	['null', 'null'],
	['true', 'true'],
];
for (const [label, json] of notObjects) {
	add(
		{ title: `invoke body ${label}`, method: 'POST', path: '/functions/ghost/invoke', body: json, status: 400, code: 'invalid_body' },
		{ title: `create body ${label}`, method: 'POST', path: '/functions', body: json, status: 400, code: 'invalid_body' },
	);
}
add(
	{ title: 'invoke unknown field "inputs"', method: 'POST', path: '/functions/ghost/invoke', body: { inputs: {} }, status: 400, code: 'unknown_field' },
	{ title: 'invoke unknown field "timeout"', method: 'POST', path: '/functions/ghost/invoke', body: { timeout: 5 }, status: 400, code: 'unknown_field' },
	{ title: 'invoke unknown field "__proto__"', method: 'POST', path: '/functions/ghost/invoke', body: '{"__proto__":{"timeout_ms":1}}', status: 400, code: 'unknown_field' },
	{ title: 'a valid invoke body for an unknown function', method: 'POST', path: '/functions/ghost/invoke', body: { input: { a: [1, null] }, timeout_ms: 300000 }, status: 404, code: 'function_not_found' },
);

// -- Broken bodies.
const deepArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObjects = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const invalidUtf8 = (before: string, bytes: number[], after: string) => Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]);
add(
	{ title: 'truncated JSON', method: 'POST', path: '/functions', body: '{"name": "ok", "language": "python", "source_code": "pri', status: 400, code: 'invalid_json' },
	{ title: 'truncated JSON: a lone "{"', method: 'POST', path: '/functions', body: '{', status: 400, code: 'invalid_json' },
	{ title: 'truncated JSON on invoke', method: 'POST', path: '/functions/ghost/invoke', body: '{"input": [1, 2', status: 400, code: 'invalid_json' },
	{ title: 'a trailing comma', method: 'POST', path: '/functions', body: '{"name":"ok","language":"python","source_code":"x",}', status: 400, code: 'invalid_json' },
	{ title: 'single quotes', method: 'POST', path: '/functions', body: "{'name':'ok'}", status: 400, code: 'invalid_json' },
	{ title: 'two JSON objects', method: 'POST', path: '/functions', body: '{}{}', status: 400, code: 'invalid_json' },
	{ title: 'NaN in invoke', method: 'POST', path: '/functions/ghost/invoke', body: '{"timeout_ms": NaN}', status: 400, code: 'invalid_json' },
	{ title: 'a byte-order mark before the JSON', method: 'POST', path: '/functions', body: '\uFEFF{"name":"../x"}', status: 400, code: 'invalid_json' },
	{ title: 'a body that is only whitespace (POST /functions): not JSON', method: 'POST', path: '/functions', body: ' \r\n\t ', status: 400, code: 'invalid_json' },
	{ title: 'a body that is only whitespace (invoke): not JSON', method: 'POST', path: '/functions/ghost/invoke', body: '   ', status: 400, code: 'invalid_json' },
	{ title: 'no body at all (POST /functions)', method: 'POST', path: '/functions', status: 400, code: 'missing_body' },
	{ title: 'an empty body with Content-Length: 0', method: 'POST', path: '/functions', body: '', socket: true, status: 400, code: 'missing_body' },
	// Invalid UTF-8 is not JSON text (RFC 8259 8.1). Decoding it leniently turns the bytes into U+FFFD.
	{ title: 'invalid UTF-8 (0xFF) in the name', method: 'POST', path: '/functions', body: invalidUtf8('{"name":"ok', [0xff], '","language":"python","source_code":"x"}'), status: 400, code: ['invalid_json', 'invalid_name'] },
	{ title: 'invalid UTF-8 (0xFF) outside strings', method: 'POST', path: '/functions', body: invalidUtf8('{"name":"ok",', [0xff], '"language":"python"}'), status: 400, code: 'invalid_json' },
	{ title: 'invalid UTF-8 (0xFF 0xFE) in source_code', method: 'POST', path: '/functions', body: invalidUtf8('{"name":"ok","language":"python","source_code":"print(1) # ', [0xff, 0xfe], '"}'), status: 400, code: 'invalid_json' },
	{ title: 'an overlong UTF-8 "/" (0xC0 0xAF) in source_code', method: 'POST', path: '/functions', body: invalidUtf8('{"name":"ok","language":"python","source_code":"x', [0xc0, 0xaf], '"}'), status: 400, code: 'invalid_json' },
	{
		title: 'a UTF-8-encoded surrogate (0xED 0xA0 0x80) in source_code',
		method: 'POST',
		path: '/functions',
		body: invalidUtf8('{"name":"ok","language":"python","source_code":"x', [0xed, 0xa0, 0x80], '"}'),
		status: 400,
		code: 'invalid_json',
	},
	// Valid JSON syntax, but no UTF-8 file can hold a lone surrogate: storing it would change the source.
	{ title: 'a lone surrogate escape (\\ud800) in source_code', method: 'POST', path: '/functions', body: '{"name":"ok","language":"python","source_code":"print(1) # \\ud800"}', status: 400, code: 'invalid_source_code' },
	{ title: 'invalid UTF-8 in the invoke input', method: 'POST', path: '/functions/ghost/invoke', body: invalidUtf8('{"input":"', [0xff], '"}'), status: 400, code: 'invalid_json' },
	{ title: '10000 nested arrays as the body', method: 'POST', path: '/functions', body: deepArrays(10_000), status: 400, code: 'invalid_body' },
	{ title: '10000 nested arrays as the name', method: 'POST', path: '/functions', body: `{"name":${deepArrays(10_000)},"language":"python","source_code":"x"}`, status: 400, code: 'invalid_name' },
	{ title: '10000 nested arrays as the invoke input: 400 before the function is looked up', method: 'POST', path: '/functions/ghost/invoke', body: `{"input":${deepArrays(10_000)}}`, status: 400, code: 'invalid_input' },
	{ title: '10000 nested objects as the body', method: 'POST', path: '/functions', body: deepObjects(10_000), status: 400, code: 'unknown_field' },
	{ title: '1000000 nested arrays (2 MB) as the body', method: 'POST', path: '/functions', body: deepArrays(1_000_000), status: 400, code: 'invalid_body' },
	{ title: 'a body over 6 MiB', method: 'POST', path: '/functions', body: { ...valid, source_code: 'x'.repeat(6 * MiB) }, status: 413, code: 'body_too_large' },
	{ title: 'a body over 6 MiB on invoke', method: 'POST', path: '/functions/ghost/invoke', body: { input: 'x'.repeat(6 * MiB) }, status: 413, code: 'body_too_large' },
	{
		title: 'a Content-Length over 6 MiB, announced only',
		method: 'POST',
		path: '/functions',
		wire: `POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${6 * MiB + 1}\r\n\r\n{"name":`,
		status: 413,
		code: 'body_too_large',
	},
	{ title: 'a chunked body over 6 MiB (no Content-Length)', method: 'POST', path: '/functions', wire: chunked('/functions', JSON.stringify({ ...valid, source_code: 'y'.repeat(6 * MiB) })), status: 413, code: 'body_too_large' },
	{ title: 'source_code over 1 MiB', method: 'POST', path: '/functions', body: { ...valid, source_code: 'x'.repeat(MiB + 1) }, status: 413, code: 'source_too_large' },
	{ title: 'source_code over 1 MiB in bytes, not in characters', method: 'POST', path: '/functions', body: { ...valid, source_code: 'é'.repeat(MiB / 2 + 1) }, status: 413, code: 'source_too_large' },
);

// -- Wrong methods on every route: 405 with the right Allow.
const wrongMethods: [string, string, string[]][] = [
	['/functions', FUNCTIONS_ALLOW, ['PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']],
	['/functions/ok', FUNCTION_ALLOW, ['POST', 'PUT', 'HEAD', 'OPTIONS']],
	['/functions/ok/invoke', INVOKE_ALLOW, ['GET', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']],
	['/healthz', HEALTHZ_ALLOW, ['POST', 'PUT', 'DELETE', 'HEAD']],
];
for (const [path, allow, methods] of wrongMethods) {
	for (const method of methods) add({ title: `wrong method ${method} ${path}`, method, path, status: 405, code: 'method_not_allowed', allow });
}
add(
	{ title: 'wrong method PUT /functions with a valid body', method: 'PUT', path: '/functions', body: valid, status: 405, code: 'method_not_allowed', allow: FUNCTIONS_ALLOW },
	{ title: 'wrong method TRACE /functions', method: 'TRACE', path: '/functions', socket: true, status: 405, code: 'method_not_allowed', allow: FUNCTIONS_ALLOW },
	{ title: 'wrong method PROPFIND /functions/ok', method: 'PROPFIND', path: '/functions/ok', socket: true, status: 405, code: 'method_not_allowed', allow: FUNCTION_ALLOW },
	{ title: 'wrong method on a bad name: PUT /functions/..%2F', method: 'PUT', path: '/functions/..%2F', socket: true, status: 405, code: 'method_not_allowed', allow: FUNCTION_ALLOW },
	{ title: 'wrong method DELETE /functions/ (trailing slash)', method: 'DELETE', path: '/functions/', socket: true, status: 405, code: 'method_not_allowed', allow: FUNCTIONS_ALLOW },
	// Node hands CONNECT to a 'connect' listener, never to the request handler.
	{ title: 'wrong method CONNECT /functions', method: 'CONNECT', path: '/functions', socket: true, status: 405, code: 'method_not_allowed', allow: FUNCTIONS_ALLOW },
	{ title: 'an unknown method FOO', method: 'FOO', path: '/functions', socket: true, status: 400, code: 'bad_request' },
	{ title: 'a lower-case method "get"', method: 'get', path: '/functions', socket: true, status: 400, code: 'bad_request' },
);

// -- Unknown paths and odd paths.
add(
	{ title: 'unknown path', method: 'GET', path: '/nope', status: 404, code: 'not_found' },
	{ title: 'the console page takes no POST', method: 'POST', path: '/', status: 405, code: 'method_not_allowed' },
	{ title: 'unknown path /nope', method: 'GET', path: '/nope', status: 404, code: 'not_found' },
	{ title: 'unknown path /function', method: 'POST', path: '/function', body: valid, status: 404, code: 'not_found' },
	{ title: 'unknown path /FUNCTIONS', method: 'GET', path: '/FUNCTIONS', status: 404, code: 'not_found' },
	{ title: 'unknown path /Functions/ok', method: 'GET', path: '/Functions/ok', status: 404, code: 'not_found' },
	{ title: 'unknown path /functions/ok/INVOKE', method: 'POST', path: '/functions/ok/INVOKE', body: {}, status: 404, code: 'not_found' },
	{ title: 'unknown path /functions/ok/extra', method: 'POST', path: '/functions/ok/extra', body: {}, status: 404, code: 'not_found' },
	{ title: 'unknown path /functions/x/invoke/extra', method: 'POST', path: '/functions/x/invoke/extra', body: {}, status: 404, code: 'not_found' },
	{ title: 'unknown path /functions///invoke', method: 'POST', path: '/functions///invoke', body: {}, socket: true, status: 404, code: 'not_found' },
	{ title: 'unknown path /healthz/x', method: 'GET', path: '/healthz/x', status: 404, code: 'not_found' },
	{ title: 'odd path //functions', method: 'GET', path: '//functions', socket: true, status: 404, code: 'not_found' },
	{ title: 'odd path //functions, POST with a valid body', method: 'POST', path: '//functions', body: valid, socket: true, status: 404, code: 'not_found' },
	{ title: 'odd path /./functions/../nope', method: 'GET', path: '/./functions/../nope', socket: true, status: 404, code: 'not_found' },
	{ title: 'a target without the leading slash', method: 'GET', path: 'functions', socket: true, status: 400, code: 'bad_request' },
	{ title: 'an absolute-form target with a bad name', method: 'GET', path: 'http://elsewhere.example/functions/..%2Fx', socket: true, status: 400, code: 'invalid_name' },
	{ title: 'the asterisk-form target', method: 'OPTIONS', path: '*', socket: true, status: 404, code: 'not_found' },
	{ title: 'bad percent-encoding %E0%A4%A', method: 'GET', path: '/functions/%E0%A4%A', socket: true, status: 400, code: 'bad_path' },
	{ title: 'bad percent-encoding %zz', method: 'GET', path: '/functions/%zz', socket: true, status: 400, code: 'bad_path' },
	{ title: 'bad percent-encoding: a lone %', method: 'DELETE', path: '/functions/%', socket: true, status: 400, code: 'bad_path' },
	{ title: 'bad percent-encoding %FF', method: 'POST', path: '/functions/%FF/invoke', body: {}, socket: true, status: 400, code: 'bad_path' },
	{ title: 'bad percent-encoding: an overlong %C0%AF', method: 'GET', path: '/functions/%C0%AF', socket: true, status: 400, code: 'bad_path' },
	{ title: 'bad percent-encoding: a surrogate %ED%A0%80', method: 'GET', path: '/functions/%ED%A0%80', socket: true, status: 400, code: 'bad_path' },
	{ title: 'bad percent-encoding in an unknown path', method: 'GET', path: '/nope/%zz', socket: true, status: 400, code: 'bad_path' },
	{ title: 'a long unknown path (8000 characters)', method: 'GET', path: `/${'x'.repeat(8000)}`, status: 404, code: 'not_found' },
	{ title: 'a very long path (20000 characters): over the header limit', method: 'GET', path: `/functions/${'x'.repeat(20_000)}`, socket: true, status: 431, code: 'headers_too_large' },
);

// -- Content types. A body must be JSON; parameters and +json suffixes are fine.
const json = JSON.stringify({ ...valid, name: '../x' });
const rejectedTypes = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz', 'application/xml', 'application/octet-stream', 'text/json', 'application/json-seq', 'application/jsonx', 'application/json5'];
for (const type of rejectedTypes) {
	add({ title: `Content-Type ${type} with a JSON body`, method: 'POST', path: '/functions', body: json, headers: { 'content-type': type }, status: 415, code: 'unsupported_media_type' });
}
add(
	{ title: 'Content-Type text/plain on invoke', method: 'POST', path: '/functions/ghost/invoke', body: '{}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
	{ title: 'an empty Content-Type with a body', method: 'POST', path: '/functions', body: json, headers: { 'content-type': '' }, socket: true, status: 415, code: 'unsupported_media_type' },
	// A type that is not JSON is refused even with no body: an empty cross-site form POST must not invoke.
	{ title: 'Content-Type text/plain with no body', method: 'POST', path: '/functions', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
	{
		title: 'an empty form POST on invoke',
		method: 'POST',
		path: '/functions/ghost/invoke',
		headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '0' },
		socket: true,
		status: 415,
		code: 'unsupported_media_type',
	},
	// Content-Encoding is not supported: the server must not read compressed bytes as JSON (RFC 9110 15.5.16).
	{ title: 'a gzip Content-Encoding', method: 'POST', path: '/functions', body: gzipSync(json), headers: { 'content-encoding': 'gzip' }, status: 415, code: 'unsupported_media_type' },
);
// Accepted JSON types reach validation: the bad name in the body is what is refused.
const acceptedTypes = ['application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON', 'application/merge-patch+json', 'application/vnd.api+json; charset=utf-8'];
for (const type of acceptedTypes) {
	add({ title: `Content-Type ${type} is accepted`, method: 'POST', path: '/functions', body: json, headers: { 'content-type': type }, status: 400, code: 'invalid_name' });
}
// A body with no Content-Type is what a cross-site "simple" request (a Blob in no-cors fetch) sends.
add({ title: 'no Content-Type with a JSON body', method: 'POST', path: '/functions', body: json, headers: { 'content-type': null }, socket: true, status: 415, code: 'unsupported_media_type' });
add({ title: 'no Content-Type and no body on invoke is read as no input', method: 'POST', path: '/functions/ghost/invoke', headers: { 'content-type': null }, socket: true, status: 404, code: 'function_not_found' });

// -- Malformed HTTP, answered by the server's clientError handler or Node itself.
add(
	{ title: 'Content-Length not a number', method: 'POST', path: '/functions', wire: 'POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: abc\r\n\r\n{}', status: 400, code: 'bad_request' },
	{ title: 'Content-Length negative', method: 'POST', path: '/functions', wire: 'POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: -1\r\n\r\n{}', status: 400, code: 'bad_request' },
	{
		title: 'two different Content-Lengths',
		method: 'POST',
		path: '/functions',
		wire: 'POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{} ',
		status: 400,
		code: 'bad_request',
	},
	{
		title: 'both Content-Length and chunked',
		method: 'POST',
		path: '/functions',
		wire: 'POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 7\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
		status: 400,
		code: 'bad_request',
	},
	{
		title: 'a bad chunk size',
		method: 'POST',
		path: '/functions',
		wire: 'POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
		status: 400,
		code: 'bad_request',
	},
	{ title: 'a header line without a colon', method: 'GET', path: '/functions', wire: 'GET /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nthis is not a header\r\n\r\n', status: 400, code: 'bad_request' },
	{ title: 'a control character in a header value', method: 'GET', path: '/functions', wire: 'GET /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-test: a\x01b\r\n\r\n', status: 400, code: 'bad_request' },
	{ title: 'a header over the size limit', method: 'GET', path: '/functions', wire: `GET /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ${'z'.repeat(20_000)}\r\n\r\n`, status: 431, code: 'headers_too_large' },
	{ title: 'a request line that is not HTTP', method: 'GET', path: '/', wire: 'hello there\r\n\r\n', status: 400, code: 'bad_request' },
	{ title: 'an unsupported HTTP version', method: 'GET', path: '/functions', wire: 'GET /functions HTTP/3.7\r\nhost: 127.0.0.1\r\n\r\n', status: 400, code: 'bad_request' },
	{ title: 'an Upgrade request is served as a plain request', method: 'POST', path: '/functions', body: json, headers: { connection: 'upgrade', upgrade: 'websocket' }, socket: true, status: 400, code: 'invalid_name' },
	// Node answers these two itself, before any handler, with an empty body.
	{ title: 'an HTTP/1.1 request without Host', method: 'GET', path: '/functions', wire: 'GET /functions HTTP/1.1\r\nconnection: close\r\n\r\n', status: 400, code: 'missing_host' },
	{
		title: 'an unknown Expect',
		method: 'POST',
		path: '/functions',
		wire: `POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nexpect: 200-ok\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\n\r\n${json}`,
		status: 417,
		code: 'expectation_failed',
	},
);

function chunked(path: string, body: string): Buffer {
	const parts: Buffer[] = [Buffer.from(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`)];
	const bytes = Buffer.from(body);
	for (let i = 0; i < bytes.length; i += 64 * 1024) {
		const piece = bytes.subarray(i, i + 64 * 1024);
		parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
	}
	parts.push(Buffer.from('0\r\n\r\n'));
	return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// The suite.

let platform: Platform;
/** Lines the server logged at level "error" (a request it failed to handle) since the start. */
const errorLines: string[] = [];
const realWrite = process.stdout.write.bind(process.stdout);
/** Requests the server has begun (headers read) and not yet closed the response of. */
let inFlight = 0;

/**
 * Waits until the server has closed every response it began, then lets its log lines be written
 * (they are flushed on the next turn): an internal failure is in errorLines by then.
 */
async function settled() {
	await eventually(
		'the server to finish every request',
		async () => inFlight,
		(n) => n === 0,
		5_000,
	);
	await new Promise(setImmediate);
}

const malformed = suite('malformed requests');

malformed.before(async () => {
	process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
		for (const line of String(chunk).split('\n')) {
			if (line.startsWith('{') && line.includes('"level":"error"')) errorLines.push(line);
		}
		return (realWrite as (...args: unknown[]) => boolean)(chunk, ...rest);
	}) as typeof process.stdout.write;
	platform = await startPlatform();
	platform.app.server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
		inFlight++;
		res.once('close', () => inFlight--);
	});
});

malformed.after(async () => {
	process.stdout.write = realWrite;
	await platform.close();
});

/** Removes whatever a failing row managed to write, so that the rows after it are judged alone. */
async function cleanData() {
	for (const dir of ['functions', 'meta']) {
		const path = join(platform.dataDir, dir);
		for (const file of await readdir(path)) await rm(join(path, file), { recursive: true, force: true });
	}
}

malformed('the table holds at least 110 rows, with distinct titles', () => {
	assert.ok(cases.length >= 110, `${cases.length} rows`);
	assert.is(new Set(cases.map((c) => c.title)).size, cases.length);
});

for (const c of cases) {
	const codes = typeof c.code === 'string' ? [c.code] : c.code;
	const shownPath = c.path.length > 60 ? `${c.path.slice(0, 40)}…(${c.path.length})` : c.path;
	malformed(`${c.title}: ${c.method} ${JSON.stringify(shownPath)} → ${c.status} ${codes.join('|')}`, async () => {
		const logged = errorLines.length;
		try {
			const res = await send(platform, c);
			const shown = `${res.status} ${JSON.stringify(res.headers)} ${res.text.slice(0, 300)}`;
			assert.is(res.status, c.status, shown);
			assert.match(res.headers['content-type'] ?? '', /^application\/json(;|$)/, `content-type: ${shown}`);
			if (c.method !== 'HEAD') {
				const body = JSON.parse(res.text) as { error?: { code?: unknown; message?: unknown } };
				assert.equal(Object.keys(body), ['error'], shown);
				assert.ok(codes.includes(body.error?.code as string), `code ${String(body.error?.code)}, want ${codes.join(' or ')}`);
				assert.type(body.error?.message, 'string');
				assert.ok(String(body.error?.message).length > 0, 'a message');
			}
			if (c.allow !== undefined) assert.is(res.headers.allow, c.allow, 'the Allow header');
			await settled();
			assert.equal(errorLines.slice(logged), [], 'the server logged an internal failure');
			assert.equal(await dataFiles(platform.dataDir), [], 'no file was written');
		} finally {
			await cleanData();
		}
	});
}

malformed('a client that hangs up mid-body gets no reply and is no internal failure', async () => {
	const logged = errorLines.length;
	const socket = connect(Number(new URL(platform.app.url).port), '127.0.0.1');
	socket.on('error', () => {});
	socket.write('POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"name":');
	await eventually(
		'the server to begin the request',
		async () => inFlight,
		(n) => n === 1,
		5_000,
	);
	socket.destroy();
	await settled();
	assert.equal(errorLines.slice(logged), [], 'the server logged an internal failure');
	assert.equal(await dataFiles(platform.dataDir), []);
});

malformed('the server still answers GET /functions with 200 afterwards', async () => {
	const res = await platform.request('GET', '/functions');
	assert.is(res.status, 200);
	assert.equal(res.body, []);
	assert.equal((await platform.request('GET', '/healthz')).body, { status: 'ok' });
});

malformed('no request made the server log an internal failure', () => {
	assert.equal(errorLines, []);
});

malformed.run();
