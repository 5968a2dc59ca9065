import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, deploy, orphans } from './helpers.js';
import { type Echo, exchange, startEchoPlatform, wireRequest } from './wire.js';

let platform: Platform;
let port: number;

const isolation = suite('raw route: a path stays in its function, answers cannot pass as the platform’s, nor run as the API');
isolation.before(async () => {
	({ platform, port } = await startEchoPlatform([
		['a', 'echo_http.ts', 'deno'],
		['b', 'echo_http.py', 'python'],
	]));
});
isolation.after.each(async () => {
	assert.equal(await orphans(platform), []);
});
isolation.after(async () => {
	await platform.close();
});

const get = async (path: string) =>
	(
		await exchange(
			port,
			wireRequest('GET', path, [
				['Host', 'x'],
				['Connection', 'close'],
			]),
		)
	).responses[0]!;

isolation('dot segments, encoded or not, and backslashes never cross from one function into another', async () => {
	// Each: the path sent, and what function a must get as its path when the request is passed on.
	const cases: [string, string][] = [
		['/fn/a/../b/x', '/../b/x'],
		['/fn/a/%2e%2e/b/x', '/%2e%2e/b/x'],
		['/fn/a/%2E%2E/b/x', '/%2E%2E/b/x'],
		['/fn/a/.%2e/b/x', '/.%2e/b/x'],
		['/fn/a/..%2fb/x', '/..%2fb/x'],
		['/fn/a/%2e%2e%2fb%2fx', '/%2e%2e%2fb%2fx'],
		['/fn/a/..\\b\\x', '/..\\b\\x'],
		['/fn/a/..\\..\\fn\\b\\x', '/..\\..\\fn\\b\\x'],
		['/fn/a/./../b/x?q=1', '/./../b/x'],
		['http://x/fn/a/%2e%2e/b/x', '/%2e%2e/b/x'],
	];
	for (const [sent, forwarded] of cases) {
		const res = await get(sent);
		assert.is(res.status, 200, `${sent}: ${res.body}`);
		const echo = JSON.parse(res.body.toString()) as Echo;
		assert.is(echo.runtime, 'deno', `${sent} reached function b`);
		// Deno's own URL parser may resolve what the platform passed on: that is a's business.
		assert.ok(echo.path === forwarded || echo.path === new URL(forwarded, 'http://h').pathname, `${sent}: a got ${echo.path}`);
	}
	// Dot segments before or in the name: no function, and never b.
	for (const sent of ['/fn/%2e%2e/fn/b/x', '/fn/a%2f..%2fb/x', '/fn/a\\..\\b/x', '/x/../fn/b/x', '/fn/./b/x', '/fn/../fn/b/x']) {
		const res = await get(sent);
		assert.ok(res.status === 400 || res.status === 404, `${sent}: ${res.status} ${res.body}`);
		assert.match(res.headers['content-type'] ?? '', /application\/json/, sent);
	}
});

isolation('a function cannot forge X-Lowcode-Faas-Error, on the raw route or in a RunResult', async () => {
	const raw = await get('/fn/a/x?forge=1');
	assert.is(raw.status, 200);
	assert.is(raw.headers['x-lowcode-faas-error'], undefined, 'the function’s own X-Lowcode-Faas-Error was passed on');
	const invoked = await platform.request('POST', '/functions/a/invoke', { input: { forge: true } });
	assert.is(invoked.status, 200);
	assert.is(invoked.body.http_headers['content-security-policy'], 'default-src *', 'the fixture did forge');
	assert.is(invoked.body.http_headers['x-lowcode-faas-error'], undefined, 'the function’s own X-Lowcode-Faas-Error is in the RunResult');
	const forged = await fetch(`${platform.app.url}/fn/a/x?forge=1`);
	assert.is(forged.headers.get('x-lowcode-faas-error'), null);
	await forged.text();
});

isolation('raw answers are sandboxed and not sniffed, whatever the function said; platform errors too', async () => {
	for (const path of ['/fn/a/page', '/fn/a/page?forge=1', '/fn/b/page']) {
		const res = await get(path);
		assert.is(res.status, 200);
		assert.is(res.headers['content-security-policy'], 'sandbox', path);
		assert.is(res.headers['x-content-type-options'], 'nosniff', path);
	}
	const missing = await get('/fn/ghost/page');
	assert.is(missing.status, 404);
	assert.is(missing.headers['content-security-policy'], 'sandbox');
	assert.is(missing.headers['x-content-type-options'], 'nosniff');
});

isolation('readiness and forwarding follow no redirect: a 302 to a host-only service is an answer, not a hop', async () => {
	const hits: string[] = [];
	const local = createServer((req, res) => {
		hits.push(req.url ?? '');
		res.end('host-only secret');
	});
	await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
	try {
		const target = `http://127.0.0.1:${(local.address() as AddressInfo).port}/secret`;
		await deploy(platform, 'redirector', 'echo_http.ts', { env: { REDIRECT_ROOT: '1', REDIRECT_TO: target } });
		const invoked = await platform.request('POST', '/functions/redirector/invoke', { input: {} });
		assert.is(invoked.body.status, 'success', JSON.stringify(invoked.body));
		assert.is(invoked.body.http_status_code, 302);
		const raw = await get('/fn/redirector/redirect');
		assert.is(raw.status, 302);
		assert.is(raw.headers.location, target);
		assert.equal(hits, [], 'the platform followed the function’s redirect to a local service');
	} finally {
		local.close();
		await platform.request('DELETE', '/functions/redirector');
	}
});

isolation.run();
