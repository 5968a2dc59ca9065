import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, deploy, orphans } from './helpers.js';
import { type Echo, chunked, exchange, startEchoPlatform, wireRequest } from './wire.js';

const bodyOf = (echo: Echo) => Buffer.from(echo.body_b64, 'base64').toString('latin1');

/** The body the function was given; Deno.serve hides a GET's body (the Fetch API has none), so it counts as seen. */
const gotBody = (echo: Echo, body: string) => bodyOf(echo) === body || (echo.runtime === 'deno' && echo.method === 'GET' && echo.length === 0);

let platform: Platform;
let port: number;
const FUNCTIONS = [
	['deno', 'echo_http.ts', 'deno'],
	['py', 'echo_http.py', 'python'],
] as const;

const smuggling = suite('the raw route: the caller never decides framing, and answers never cross callers');
smuggling.before(async () => {
	({ platform, port } = await startEchoPlatform(FUNCTIONS));
});
smuggling.after.each(async () => {
	assert.equal(await orphans(platform), []);
});
smuggling.after(async () => {
	await platform.close();
});

/** An /invoke by an honest caller: it must get the answer to its own request. */
async function victim(fn: string, who: string) {
	const res = await platform.request('POST', `/functions/${fn}/invoke`, { input: { who } });
	assert.is(res.status, 200);
	const echo = res.body.output as Echo;
	assert.is(res.body.status, 'success', JSON.stringify(res.body));
	assert.is(echo.path, '/', `${fn}: ${who} got the answer to another request: ${JSON.stringify(echo)}`);
	assert.is(bodyOf(echo), JSON.stringify({ who }), `${fn}: ${who} got another caller's answer`);
}

// A second request hidden in a GET's body; its own Content-Length swallows the next caller's request.
const hidden = 'POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n';

/** A caller naming `Content-Length` in `Connection`, so a filter of hop-by-hop headers would drop it. */
async function attacker(fn: string, method: string, tag: string) {
	const wire = wireRequest(
		method,
		`/fn/${fn}/${tag}`,
		[
			['Host', 'x'],
			['Connection', 'content-length'],
			['Content-Length', String(hidden.length)],
		],
		hidden,
	);
	const { responses } = await exchange(port, wire);
	assert.is(responses[0]?.status, 200, `${fn} ${method}: ${JSON.stringify(responses[0])}`);
	const echo = JSON.parse(responses[0]!.body.toString()) as Echo;
	assert.is(echo.path, `/${tag}`);
	assert.is(echo.method, method);
	assert.ok(gotBody(echo, hidden), `${fn} ${method}: the hidden request reached the function as the body, framed: ${JSON.stringify(echo)}`);
	assert.is(echo.headers['content-length'], String(hidden.length));
}

for (const [fn] of FUNCTIONS) {
	smuggling(`${fn}: Connection: content-length cannot smuggle a request into the next caller's connection`, async () => {
		await victim(fn, 'warm-up');
		for (const method of ['GET', 'DELETE', 'OPTIONS']) {
			await attacker(fn, method, `attack-${method}`);
			await victim(fn, `after-${method}`);
		}
	});

	smuggling(`${fn}: attackers and honest callers at the same time each get their own answer`, async () => {
		const work: Promise<void>[] = [];
		for (let i = 0; i < 6; i++) {
			work.push(attacker(fn, i % 2 ? 'GET' : 'DELETE', `attack-${i}`));
			work.push(victim(fn, `victim-${i}`));
		}
		await Promise.all(work);
		await victim(fn, 'afterwards');
	});
}

smuggling('Connection naming Transfer-Encoding or Host changes nothing: one framed request, the platform’s Host', async () => {
	for (const [fn] of FUNCTIONS) {
		const te = wireRequest(
			'GET',
			`/fn/${fn}/te`,
			[
				['Host', 'x'],
				['Connection', 'transfer-encoding'],
				['Transfer-Encoding', 'chunked'],
			],
			chunked(Buffer.from(hidden), [5, 7]),
		);
		const echoTe = JSON.parse((await exchange(port, te)).responses[0]!.body.toString()) as Echo;
		assert.is(echoTe.path, '/te');
		assert.ok(gotBody(echoTe, hidden), JSON.stringify(echoTe));
		await victim(fn, 'after-te');
		const host = wireRequest(
			'POST',
			`/fn/${fn}/host`,
			[
				['Host', 'attacker.example'],
				['Connection', 'host, content-length'],
				['Content-Length', '5'],
			],
			'hello',
		);
		const echoHost = JSON.parse((await exchange(port, host)).responses[0]!.body.toString()) as Echo;
		assert.is(bodyOf(echoHost), 'hello');
		assert.match(echoHost.headers.host ?? '', /^\d+\.\d+\.\d+\.\d+:\d+$/, 'the container is asked under its own address');
		assert.is(echoHost.headers['x-forwarded-host'], 'attacker.example');
		await victim(fn, 'after-host');
	}
});

smuggling('ambiguous framing is refused with a clean 400, or read as one framed request', async () => {
	const cases: [string, [string, string][], string][] = [
		[
			'two different Content-Lengths',
			[
				['Content-Length', '5'],
				['Content-Length', '40'],
			],
			hidden,
		],
		[
			'the same Content-Length twice',
			[
				['Content-Length', String(hidden.length)],
				['Content-Length', String(hidden.length)],
			],
			hidden,
		],
		[
			'Content-Length and Transfer-Encoding',
			[
				['Content-Length', '5'],
				['Transfer-Encoding', 'chunked'],
			],
			chunked(Buffer.from(hidden)).toString('latin1'),
		],
		[
			'Transfer-Encoding twice',
			[
				['Transfer-Encoding', 'chunked'],
				['Transfer-Encoding', 'chunked'],
			],
			chunked(Buffer.from(hidden)).toString('latin1'),
		],
		['a Transfer-Encoding that is not chunked', [['Transfer-Encoding', 'gzip']], hidden],
		['a transfer coding besides chunked', [['Transfer-Encoding', 'gzip, chunked']], chunked(Buffer.from(hidden)).toString('latin1')],
		['Content-Length with a sign', [['Content-Length', '+5']], hidden],
	];
	for (const [fn] of FUNCTIONS) {
		for (const [title, headers, body] of cases) {
			const wire = wireRequest('GET', `/fn/${fn}/ambiguous`, [['Host', 'x'], ['Connection', 'content-length, transfer-encoding'], ...headers], body);
			const { responses } = await exchange(port, wire, 2, 5_000);
			const first = responses[0]!;
			if (first.status === 400) {
				assert.match(first.headers['content-type'] ?? '', /application\/json/, title);
				assert.is(first.headers.connection, 'close', `${title}: the connection ends after a 400`);
				assert.is(responses.length, 1, `${title}: nothing was read after the refusal`);
				// Node's parser refuses most; a coding it reads but the platform would not pass on is the platform's refusal.
				if (title === 'a transfer coding besides chunked') assert.is(first.headers['x-lowcode-faas-error'], 'unsupported_transfer_encoding');
			} else {
				assert.is(first.status, 200, `${title}: ${first.body}`);
				const echo = JSON.parse(first.body.toString()) as Echo;
				assert.is(echo.path, '/ambiguous', title);
				assert.ok(responses.length === 1 || responses[1]!.status === 400, `${title}: a second request was read from the body`);
			}
			await victim(fn, `after ${title}`);
		}
	}
});

smuggling('a function that answers without reading the body cannot pass it to the next caller as a request', async () => {
	// The function reads this body as a request of its own, whose body is whatever comes next on its connection.
	for (let i = 0; i < 3; i++) {
		const res = await fetch(`${platform.app.url}/fn/py/early`, { method: 'POST', body: hidden });
		assert.is(await res.text(), 'early');
		await victim('py', `after-early-${i}`);
	}
});

smuggling('a caller leaving mid-answer, or a function switching protocols unasked: that connection is not reused', async () => {
	for (let i = 0; i < 3; i++) {
		const controller = new AbortController();
		const res = await fetch(`${platform.app.url}/fn/deno/stream`, { signal: controller.signal });
		const reader = res.body!.getReader();
		await reader.read();
		controller.abort();
		await reader.read().catch(() => {});
		await victim('deno', `after-leaving-${i}`);
		const switched = await fetch(`${platform.app.url}/fn/py/switch`);
		assert.is(switched.status, 502, 'an upgrade nobody asked for is a failure of the function');
		assert.is(switched.headers.get('x-lowcode-faas-error'), 'function_failed');
		await switched.text();
		await victim('py', `after-switch-${i}`);
	}
});

smuggling('a function answering /invoke with 101 Switching Protocols: a failed run at once, not a hang', async () => {
	await deploy(platform, 'switcher', 'echo_http.py', { env: { SWITCH_ALL: '1' } });
	try {
		const hung = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the invocation hangs')), 15_000).unref());
		const res = await Promise.race([platform.request('POST', '/functions/switcher/invoke', { input: {}, timeout_ms: 30_000 }), hung]);
		assert.is(res.status, 200);
		assert.is(res.body.status, 'failed');
		assert.match(res.body.error_message, /switched protocols/);
		const raw = await Promise.race([fetch(`${platform.app.url}/fn/switcher/x`, { method: 'POST', body: 'x', headers: { 'x-timeout-ms': '30000' } }), hung]);
		assert.is(raw.status, 502);
		await raw.text();
	} finally {
		await platform.request('DELETE', '/functions/switcher');
	}
});

smuggling.run();
