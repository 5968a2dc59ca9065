import { connect } from 'node:net';
import { type Platform, createFunction, fixture, startPlatform } from './helpers.js';

/** HTTP/1.1 on a bare socket, for tests that need the bytes exactly as written (framing, raw paths). */

export interface WireResponse {
	status: number;
	/** Lower-case names; repeated headers joined with ', '. */
	headers: Record<string, string>;
	body: Buffer;
}

/** Parses one whole response at the start of `buf`; null while incomplete (a body without framing ends when `closed`). */
function parseOne(buf: Buffer, closed: boolean): { response: WireResponse; used: number } | null {
	const end = buf.indexOf('\r\n\r\n');
	if (end < 0) return null;
	const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
	const status = Number(statusLine!.split(' ')[1]);
	const headers: Record<string, string> = {};
	for (const line of lines) {
		const at = line.indexOf(':');
		const key = line.slice(0, at).trim().toLowerCase();
		const value = line.slice(at + 1).trim();
		headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
	}
	let at = end + 4;
	if (status < 200 || status === 204 || status === 304) return { response: { status, headers, body: Buffer.alloc(0) }, used: at };
	if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
		const parts: Buffer[] = [];
		for (;;) {
			const eol = buf.indexOf('\r\n', at);
			if (eol < 0) return null;
			const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
			if (size === 0) {
				const trailerEnd = buf.indexOf('\r\n\r\n', eol);
				if (trailerEnd < 0 && buf.length < eol + 4) return null;
				return { response: { status, headers, body: Buffer.concat(parts) }, used: trailerEnd < 0 ? eol + 4 : trailerEnd + 4 };
			}
			if (buf.length < eol + 2 + size + 2) return null;
			parts.push(buf.subarray(eol + 2, eol + 2 + size));
			at = eol + 2 + size + 2;
		}
	}
	if (headers['content-length'] !== undefined) {
		const length = Number(headers['content-length']);
		if (buf.length < at + length) return null;
		return { response: { status, headers, body: buf.subarray(at, at + length) }, used: at + length };
	}
	if (!closed) return null;
	return { response: { status, headers, body: buf.subarray(at) }, used: buf.length };
}

/**
 * Writes `wire` to a fresh connection and reads responses until `count` final ones arrived or the
 * server closed; informational (1xx) answers are skipped. Resolves with the responses and whether
 * the connection was closed.
 */
export function exchange(port: number, wire: string | Buffer, count = 1, timeoutMs = 15_000): Promise<{ responses: WireResponse[]; closed: boolean }> {
	return new Promise((resolve, reject) => {
		const socket = connect(port, '127.0.0.1');
		let buf = Buffer.alloc(0);
		const responses: WireResponse[] = [];
		let closed = false;
		const timer = setTimeout(() => {
			socket.destroy();
			reject(new Error(`no complete answer in ${timeoutMs} ms; got ${responses.length} and ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`));
		}, timeoutMs);
		const drain = () => {
			for (;;) {
				const one = parseOne(buf, closed);
				if (!one) break;
				buf = buf.subarray(one.used);
				if (one.response.status >= 200) responses.push(one.response);
			}
			if (responses.length >= count || closed) {
				clearTimeout(timer);
				socket.destroy();
				resolve({ responses, closed });
			}
		};
		socket.on('data', (chunk: Buffer) => {
			buf = Buffer.concat([buf, chunk]);
			drain();
		});
		socket.on('end', () => {
			closed = true;
			drain();
		});
		socket.on('error', () => {
			closed = true;
			drain();
		});
		socket.write(wire);
	});
}

/** A request as bytes: `headers` as pairs, written in order and as given. */
export function wireRequest(method: string, path: string, headers: [string, string][], body: string | Buffer = ''): Buffer {
	const head = `${method} ${path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
	return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]);
}

/** `body` split into chunks of the given sizes (the rest in one), chunked-encoded with the last chunk. */
export function chunked(body: Buffer, sizes: number[] = []): Buffer {
	const parts: Buffer[] = [];
	let at = 0;
	for (const size of [...sizes, body.length]) {
		const piece = body.subarray(at, Math.min(body.length, at + size));
		if (piece.length === 0) continue;
		parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
		at += piece.length;
		if (at >= body.length) break;
	}
	parts.push(Buffer.from('0\r\n\r\n'));
	return Buffer.concat(parts);
}

/** What the echo fixtures (test/fixtures/echo_http.py|ts) report about the request they read. */
export interface Echo {
	runtime: string;
	seq: number;
	method: string;
	path: string;
	query: string;
	headers: Record<string, string>;
	length: number;
	body_b64: string;
}

/**
 * A platform that serves any Host (these tests are about framing and paths; the Host check has its
 * own, browser.test.ts) with the echo fixtures deployed as `functions` ([name, file, language]).
 */
export async function startEchoPlatform(functions: readonly (readonly [string, string, 'python' | 'deno'])[]): Promise<{ platform: Platform; port: number }> {
	const platform = await startPlatform({ LOWCODE_FAAS_ALLOWED_HOSTS: '*' });
	for (const [name, file, language] of functions) await createFunction(platform, name, language, await fixture(file));
	return { platform, port: Number(new URL(platform.app.url).port) };
}
