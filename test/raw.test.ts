import { createHash, randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, deploy, orphans, startPlatform } from './helpers.js';

interface Echo {
	method: string;
	path: string;
	query: string;
	headers: Record<string, string>;
	length: number;
	sha256: string;
}

const echoOf = async (res: Response) => (await res.json()) as Echo;

let platform: Platform;
const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
const raw = suite('raw HTTP route /fn/{name}');
raw.before(async () => {
	platform = await startPlatform();
	await deploy(platform, 'raw', 'raw.ts');
	await deploy(platform, 'crash', 'crash.py');
});
raw.after.each(async () => {
	assert.equal(await orphans(platform), []);
});
raw.after(async () => {
	await platform.close();
});

const url = (path: string) => `${platform.app.url}${path}`;

raw('every method, the rest of the path, the query and repeated headers reach the function', async () => {
	for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
		const headers = new Headers({ 'x-multi': 'a' });
		headers.append('x-multi', 'b');
		const res = await fetch(url('/fn/raw/a/b%2Fc?x=1&y=two'), { method, headers, body: ['GET', 'OPTIONS'].includes(method) ? undefined : 'payload' });
		assert.is(res.status, 200, method);
		assert.is(res.headers.get('x-lowcode-faas-error'), null);
		const echo = await echoOf(res);
		assert.is(echo.method, method);
		assert.is(echo.path, '/a/b%2Fc');
		assert.is(echo.query, '?x=1&y=two');
		assert.match(echo.headers['x-multi'] ?? '', /a, ?b/);
		assert.is(echo.headers['x-forwarded-for'], '127.0.0.1');
		assert.is(echo.headers['x-forwarded-proto'], 'http');
		assert.is(echo.headers['x-forwarded-host'], new URL(platform.app.url).host);
		if (method !== 'GET' && method !== 'OPTIONS') assert.is(echo.length, 7);
	}
});

raw('HEAD, /fn/{name} alone, the function’s status and repeated response headers', async () => {
	const head = await fetch(url('/fn/raw/x'), { method: 'HEAD' });
	assert.is(head.status, 200);
	assert.is(head.headers.get('x-echo'), 'yes');
	const bare = await echoOf(await fetch(url('/fn/raw')));
	assert.is(bare.path, '/');
	const made = await fetch(url('/fn/raw/created?status=201'), { method: 'POST', body: '{}' });
	assert.is(made.status, 201);
	assert.equal(made.headers.getSetCookie(), ['a=1', 'b=2']);
	assert.is(made.headers.get('content-type'), 'application/json');
});

raw('a 20 MB upload streams through intact', async () => {
	const body = randomBytes(20 * 1024 * 1024);
	const res = await fetch(url('/fn/raw/upload'), { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
	assert.is(res.status, 200);
	const echo = await echoOf(res);
	assert.is(echo.length, body.length);
	assert.is(echo.sha256, createHash('sha256').update(body).digest('hex'));
});

raw('a Server-Sent Events stream arrives before the function ends it', async () => {
	const started = Date.now();
	const res = await fetch(url('/fn/raw/sse'));
	assert.is(res.headers.get('content-type'), 'text/event-stream');
	const reader = res.body!.getReader();
	const first = await reader.read();
	const firstAt = Date.now();
	assert.match(new TextDecoder().decode(first.value), /data: event 1/);
	let rest = '';
	for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
	const endAt = Date.now();
	assert.match(rest, /event 3/);
	assert.ok(endAt - firstAt > 1_000, `the first event came ${endAt - firstAt} ms before the end (started ${firstAt - started} ms in)`);
});

raw('errors made by the platform are marked: 404 unknown, 504 timeout, 502 failure', async () => {
	const unknown = await fetch(url('/fn/ghost/x'));
	assert.is(unknown.status, 404);
	assert.is(unknown.headers.get('x-lowcode-faas-error'), 'function_not_found');
	const slow = await fetch(url('/fn/raw/slow'), { headers: { 'x-timeout-ms': '500' } });
	assert.is(slow.status, 504);
	assert.is(slow.headers.get('x-lowcode-faas-error'), 'function_timeout');
	assert.is(((await slow.json()) as { error: { code: string } }).error.code, 'function_timeout');
	const failed = await fetch(url('/fn/crash'));
	assert.is(failed.status, 502);
	assert.is(failed.headers.get('x-lowcode-faas-error'), 'function_failed');
	assert.match(((await failed.json()) as { error: { message: string } }).error.message, /exited with code 3/);
	const bad = await fetch(url('/fn/raw'), { headers: { 'x-timeout-ms': 'soon' } });
	assert.is(bad.status, 400);
	assert.is(bad.headers.get('x-lowcode-faas-error'), 'invalid_timeout_ms');
});

raw('a chunked body on a DELETE stays framed; the next request on the connection is unharmed', async () => {
	const { port } = new URL(platform.app.url);
	const send = (method: string, path: string, chunks: string[]) =>
		new Promise<Echo>((resolve, reject) => {
			const req = httpRequest({ host: '127.0.0.1', port, path, method, agent: keepAlive, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
				let text = '';
				res.on('data', (chunk: Buffer) => (text += chunk));
				res.on('end', () => resolve(JSON.parse(text) as Echo));
			});
			req.on('error', reject);
			for (const chunk of chunks) req.write(chunk);
			req.end();
		});
	const first = await send('DELETE', '/fn/raw/one', ['GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n']);
	assert.is(first.length, 35, 'the whole body reached the function as a body');
	const second = await send('GET', '/fn/raw/two', []);
	assert.is(second.path, '/two');
	keepAlive.destroy();
});

raw('a function that dies during an upload gets the caller a 502, not a reset', async () => {
	const res = await fetch(url('/fn/crash/upload'), { method: 'PUT', body: randomBytes(2 * 1024 * 1024) });
	assert.is(res.status, 502);
	assert.is(res.headers.get('x-lowcode-faas-error'), 'function_failed');
});

raw('the function’s own 5xx is passed through unmarked', async () => {
	const res = await fetch(url('/fn/raw/x?status=503'));
	assert.is(res.status, 503);
	assert.is(res.headers.get('x-lowcode-faas-error'), null);
});

raw.run();
