import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, orphans } from './helpers.js';
import { type Echo, chunked, exchange, startEchoPlatform, wireRequest } from './wire.js';

let platform: Platform;
let port: number;

const framing = suite('raw route, property: whatever the headers, the function reads exactly one request with exactly the body sent');
framing.before(async () => {
	({ platform, port } = await startEchoPlatform([
		['py', 'echo_http.py', 'python'],
		['deno', 'echo_http.ts', 'deno'],
	]));
});
framing.after.each(async () => {
	assert.equal(await orphans(platform), []);
});
framing.after(async () => {
	await platform.close();
});

const HOP_BY_HOP = ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'proxy-authorization'];
// What a caller may name in Connection: framing headers, its own headers, hop-by-hop ones.
const NAMEABLE = ['content-length', 'transfer-encoding', 'host', 'x-a', 'x-b', 'keep-alive', 'upgrade', 'close', 'keep-alive'];

const casing = (name: string) =>
	fc.constantFrom(
		name,
		name.toUpperCase(),
		name.replace(/(^|-)[a-z]/g, (m) => m.toUpperCase()),
	);
const token = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/);

const requestArb = fc.record({
	fn: fc.constantFrom('py', 'deno'),
	method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
	// Dot segments are left to the isolation test: Deno's own URL parser resolves them.
	path: fc
		.array(
			token.filter((t) => t !== '.' && t !== '..'),
			{ maxLength: 3 },
		)
		.map((parts) => `/${parts.join('/')}`),
	body: fc.oneof(fc.constant(null), fc.record({ bytes: fc.uint8Array({ maxLength: 3_000 }), chunked: fc.boolean(), sizes: fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 5 }) })),
	// Connection naming random headers, in one header or several.
	connection: fc.array(fc.array(fc.constantFrom(...NAMEABLE), { minLength: 1, maxLength: 3 }), { maxLength: 2 }),
	hop: fc.array(fc.tuple(fc.constantFrom(...HOP_BY_HOP), token), { maxLength: 3 }),
	own: fc.array(fc.tuple(fc.constantFrom('x-a', 'x-b', 'x-c'), token), { maxLength: 3 }),
	expect: fc.boolean(),
});

type Sent = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

async function toWire(r: Sent): Promise<{ wire: Buffer; body: Buffer }> {
	const headers: [string, string][] = [['Host', 'caller.example']];
	for (const names of r.connection) headers.push([await sample(casing('connection')), names.join(', ')]);
	for (const [name, value] of [...r.hop, ...r.own]) headers.push([name, value]);
	const body = Buffer.from(r.body?.bytes ?? []);
	let payload: Buffer = Buffer.alloc(0);
	if (r.body?.chunked) {
		headers.push(['Transfer-Encoding', 'chunked']);
		payload = chunked(body, r.body.sizes);
	} else if (r.body) {
		headers.push(['Content-Length', String(body.length)]);
		payload = body;
	}
	if (r.expect && r.body) headers.push(['Expect', '100-continue']);
	return { wire: wireRequest(r.method, `/fn/${r.fn}${r.path}`, headers, payload), body };
}

const sample = <T>(arb: fc.Arbitrary<T>) => Promise.resolve(fc.sample(arb, 1)[0]!);

framing('random methods, headers, Connection lists and bodies: one framed request each, and the next caller gets its own answer', async () => {
	let round = 0;
	await fc.assert(
		fc.asyncProperty(requestArb, async (r) => {
			round++;
			const { wire, body } = await toWire(r);
			const { responses } = await exchange(port, wire);
			const res = responses[0]!;
			assert.is(res.status, 200, `${res.status} ${res.body}`);
			assert.is(res.headers['content-security-policy'], 'sandbox');
			const echo = JSON.parse(res.body.toString()) as Echo;
			assert.is(echo.method, r.method);
			assert.is(echo.path, r.path);
			const got = Buffer.from(echo.body_b64, 'base64');
			// Deno.serve hides a GET's body (the Fetch API has none).
			if (!(echo.runtime === 'deno' && r.method === 'GET')) assert.ok(got.equals(body), `the function got ${got.length} bytes of the ${body.length} sent`);
			for (const name of [...HOP_BY_HOP, ...r.connection.flat().filter((n) => n.startsWith('x-'))]) {
				assert.is(echo.headers[name], undefined, `${name} reached the function`);
			}
			if (r.body && !r.body.chunked) assert.is(echo.headers['content-length'], String(body.length));
			if (echo.runtime === 'python') assert.match(echo.headers.host ?? '', /^\d+\.\d+\.\d+\.\d+:\d+$/);
			// The next caller, on the same platform: its own answer, and nothing read in between.
			const next = await platform.request('POST', `/functions/${r.fn}/invoke`, { input: { round } });
			const followed = next.body.output as Echo;
			assert.is(next.body.status, 'success', JSON.stringify(next.body));
			assert.is(Buffer.from(followed.body_b64, 'base64').toString(), JSON.stringify({ round }));
			assert.is(followed.seq, echo.seq + 1, 'the function read exactly one request for the raw one');
		}),
		{ numRuns: 50 },
	);
});

framing.run();
