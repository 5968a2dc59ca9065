import { connect } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, startPlatform } from './helpers.js';

// Attacks on the console's serving: paths that try to reach past it without the token, the page-visit
// exception to the cross-site check, and the headers of every answer a browser may get under it.
const test = suite('console: attacks');
let platform: Platform;
const TOKEN = 'console-attack-token-0123';

test.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_TOKEN: TOKEN, LOWCODE_FAAS_STEM_CELLS: '0' });
});
test.after(() => platform.close());

interface Answer {
	status: number;
	headers: Map<string, string>;
	body: string;
}

/** One request written byte for byte (any target form, any method), read until the server closes. */
function send(method: string, target: string, headers: Record<string, string> = {}): Promise<Answer> {
	const { hostname, port } = new URL(platform.app.url);
	const lines = [`${method} ${target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
	return new Promise((resolve, reject) => {
		const socket = connect(Number(port), hostname);
		let raw = '';
		socket.setEncoding('latin1');
		socket.on('data', (chunk: string) => (raw += chunk));
		socket.on('error', reject);
		socket.on('end', () => {
			const split = raw.indexOf('\r\n\r\n');
			const [status, ...rest] = raw.slice(0, split).split('\r\n');
			const map = new Map<string, string>();
			for (const line of rest) map.set(line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim());
			resolve({ status: Number(status!.split(' ')[1]), headers: map, body: raw.slice(split + 4) });
		});
		socket.end(`${lines.join('\r\n')}\r\n\r\n`);
	});
}

const code = (answer: Answer) => (JSON.parse(answer.body) as { error: { code: string } }).error.code;
const NAVIGATION = { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document' };

test('no spelling of a path under /console/ or / reaches an API route or a file without the token', async () => {
	// Each is either the console's own file, a 404 of the console, or asks for the token: never the API's answer.
	const cases: [string, number][] = [
		['/console/main.js?x', 200],
		['/console/main.js#', 200],
		['http://evil.example/console/main.js', 200],
		['http://evil.example', 200],
		['/?/functions', 200],
		['/#/functions', 200],
		['/console/..%2ffunctions', 404],
		['/console/../functions', 404],
		['/console/%2e%2e/functions', 404],
		['/console//functions', 404],
		['/console/%2ffunctions', 404],
		['/console/main.js/', 404],
		['/console/main.js.map', 404],
		['/console/tsconfig.json', 404],
		['/console/*', 404],
		['http://evil.example/console/../functions', 404],
		['//console/main.js', 401],
		['//', 401],
		['/Console/main.js', 401],
		['/%2f', 401],
		['/./', 401],
		['/functions/../', 401],
		['/console%2f../functions', 401],
		['/console\\..\\functions', 401],
		['http://evil.example/functions', 401],
		['*', 401],
	];
	for (const [target, status] of cases) {
		const answer = await send('GET', target);
		assert.is(answer.status, status, target);
		if (status !== 200) assert.ok(['not_found', 'unauthorized'].includes(code(answer)), `${target}: ${answer.body}`);
	}
});

test('the page-visit exception opens GET / and nothing else: no other method, no other path', async () => {
	assert.is((await send('GET', '/', NAVIGATION)).status, 200);
	assert.is((await send('GET', '/?x=1', NAVIGATION)).status, 200);
	for (const [method, target] of [
		['HEAD', '/'],
		['POST', '/'],
		['OPTIONS', '/'],
		['DELETE', '/'],
		['GET', '/console/main.js'],
		['GET', '//'],
		['GET', '/functions'],
		['POST', '/functions'],
		['GET', '/healthz'],
	]) {
		const answer = await send(method!, target!, { ...NAVIGATION, Authorization: `Bearer ${TOKEN}`, 'Content-Length': '0' });
		assert.is(answer.status, 403, `${method} ${target}`);
		if (method !== 'HEAD') assert.is(code(answer), 'cross_site_request', `${method} ${target}`);
	}
	// Framed, or fetched by a script elsewhere: not a page visit.
	assert.is((await send('GET', '/', { ...NAVIGATION, 'Sec-Fetch-Dest': 'iframe' })).status, 403);
	assert.is((await send('GET', '/', { ...NAVIGATION, 'Sec-Fetch-Mode': 'cors' })).status, 403);
	// A navigation with a foreign Origin (a form POSTed or GET with one) is refused by the Origin check.
	assert.is(code(await send('GET', '/', { ...NAVIGATION, Origin: 'https://evil.example' })), 'origin_not_allowed');
});

test('every answer under / and /console/ is unsniffable, unframeable and scriptless: 200, 304, 403, 404, 405', async () => {
	const etag = (await send('GET', '/console/main.js')).headers.get('etag')!;
	const answers: [string, Answer][] = [
		['200 /', await send('GET', '/')],
		['200 main.js', await send('GET', '/console/main.js')],
		['304 main.js', await send('GET', '/console/main.js', { 'If-None-Match': etag })],
		['404 /console/nope.js', await send('GET', '/console/nope.js')],
		['404 /console/', await send('GET', '/console/')],
		['405 HEAD /', await send('HEAD', '/')],
		['405 POST /console/main.js', await send('POST', '/console/main.js', { 'Content-Length': '0' })],
		['403 cross-site script', await send('GET', '/console/main.js', { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'script' })],
		['401 /functions', await send('GET', '/functions')],
		['404 with the token', await send('GET', '/no/such/<script>alert(1)</script>', { Authorization: `Bearer ${TOKEN}` })],
	];
	for (const [what, answer] of answers) {
		assert.is(answer.status, Number(what.slice(0, 3)), what);
		assert.is(answer.headers.get('x-content-type-options'), 'nosniff', what);
		assert.is(answer.headers.get('x-frame-options'), 'DENY', what);
		assert.match(answer.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, what);
	}
	// A miss is JSON with the strictest policy: nothing in it may run, even opened as a page.
	const missing = await send('GET', '/console/nope.js');
	assert.is(missing.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
	assert.is(missing.headers.get('content-type'), 'application/json; charset=utf-8');
});

test.run();
