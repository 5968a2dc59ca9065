/**
 * lowcode-faas stem cell loader for Deno.
 *
 * Started in a function container (with exactly a function's permissions: --allow-net --allow-env)
 * before any function needs it, it waits on PORT for the platform to hand it one function (POST
 * /__lowcode_faas/load with the key the platform started it with), closes its listener so that the
 * function's own server can bind PORT, and imports the function's source in this same process. It
 * serves exactly one handoff in its life, and prints nothing of the source or the environment.
 *
 * A bare TCP listener, not Deno.serve: the listener is closed before the answer to the handoff is
 * written, so the platform's next probe can only ever reach the function's server.
 */

const LOAD_PATH = '/__lowcode_faas/load';
const MAX_BODY = 16 * 1024 * 1024;
const port = Number(Deno.env.get('PORT'));
// The key proves the platform sent the handoff; the function never sees it in Deno.env.
const KEY = Deno.env.get('LOWCODE_FAAS_STEM_KEY') ?? '';
Deno.env.delete('LOWCODE_FAAS_STEM_KEY');

interface Job {
	/** The function's file, byte for byte. */
	source_base64: string;
	file: string;
	env: Record<string, string>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function answer(conn: Deno.Conn, status: number): Promise<void> {
	const text = `HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'No'}\r\ncontent-length: 0\r\nconnection: close\r\nx-lowcode-faas-stem: 1\r\n\r\n`;
	try {
		await conn.write(encoder.encode(text));
	} catch {
		// The client went away: nothing to tell it.
	}
	conn.close();
}

function indexOfCrlfCrlf(bytes: Uint8Array, length: number): number {
	for (let i = 3; i < length; i++) {
		if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) return i + 1;
	}
	return -1;
}

/** Reads one request: its request line, headers (lower-cased) and body; null when it is not one. */
async function readRequest(conn: Deno.Conn): Promise<{ method: string; path: string; headers: Map<string, string>; body: Uint8Array } | null> {
	let buffer = new Uint8Array(64 * 1024);
	let length = 0;
	let headEnd = -1;
	while (headEnd < 0) {
		if (length === buffer.length) return null;
		const n = await conn.read(buffer.subarray(length));
		if (n === null) return null;
		length += n;
		headEnd = indexOfCrlfCrlf(buffer, length);
	}
	const [requestLine = '', ...lines] = decoder.decode(buffer.subarray(0, headEnd)).split('\r\n');
	const [method = '', path = ''] = requestLine.split(' ');
	const headers = new Map<string, string>();
	for (const line of lines) {
		const colon = line.indexOf(':');
		if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
	}
	const size = Number(headers.get('content-length') ?? '0');
	if (!Number.isSafeInteger(size) || size < 0 || size > MAX_BODY) return null;
	const body = new Uint8Array(size);
	let have = Math.min(size, length - headEnd);
	body.set(buffer.subarray(headEnd, headEnd + have));
	buffer = new Uint8Array(0);
	while (have < size) {
		const n = await conn.read(body.subarray(have));
		if (n === null) return null;
		have += n;
	}
	return { method, path, headers, body };
}

function parseJob(body: Uint8Array): Job | null {
	try {
		const data = JSON.parse(decoder.decode(body));
		if (typeof data?.source_base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data.source_base64) || typeof data.file !== 'string' || data.file.includes('/')) return null;
		if (typeof data.env !== 'object' || data.env === null) return null;
		if (!Object.values(data.env).every((v) => typeof v === 'string')) return null;
		return data as Job;
	} catch {
		return null;
	}
}

/** Serves probes until the one handoff comes; returns it with the listener closed. */
async function awaitHandoff(): Promise<Job> {
	const listener = Deno.listen({ port, hostname: '0.0.0.0' });
	for (;;) {
		const conn = await listener.accept();
		const req = await readRequest(conn).catch(() => null);
		if (!req) {
			conn.close();
			continue;
		}
		if (req.method !== 'POST') {
			await answer(conn, 204);
			continue;
		}
		if (req.path !== LOAD_PATH) {
			await answer(conn, 404);
			continue;
		}
		if (!KEY || req.headers.get('x-lowcode-faas-key') !== KEY) {
			await answer(conn, 403);
			continue;
		}
		const job = parseJob(req.body);
		if (!job) {
			await answer(conn, 400);
			continue;
		}
		listener.close();
		await answer(conn, 200);
		return job;
	}
}

const job = await awaitHandoff();
const platformPort = Deno.env.get('PORT');
// The function's own variables, then the platform's PORT, as `docker run` would set them.
for (const [key, value] of Object.entries(job.env)) Deno.env.set(key, value);
if (platformPort) Deno.env.set('PORT', platformPort);
// An error at import ends the process with its message on stderr and a non-zero exit, as `deno run` does.
await import(`data:application/typescript;base64,${job.source_base64}`);
