import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, eventually, startPlatform } from './helpers.js';

const MiB = 1024 * 1024;
const TOKEN = 'front-door-token-0123456789';

/** Writes `head`, then reads until the server closes; resolves with what came back and when. */
function rawExchange(port: number, head: string, body?: (socket: Socket) => void): Promise<{ text: string; closedAt: number }> {
	return new Promise((resolve) => {
		const socket = connect(port, '127.0.0.1');
		let text = '';
		socket.setEncoding('latin1');
		socket.on('data', (chunk: string) => (text += chunk));
		socket.on('error', () => {});
		socket.on('close', () => resolve({ text, closedAt: Date.now() }));
		socket.write(head);
		body?.(socket);
	});
}

// ---------------------------------------------------------------------------------------------

const early = suite('front door: an early refusal reaches a client that is still uploading');
let platform: Platform;
let upload: string;
early.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_MAX_BODY: '1024', LOWCODE_FAAS_TOKEN: TOKEN });
	upload = join(await mkdtemp(join(tmpdir(), 'lowcode-faas-upload-')), 'big.json');
	await writeFile(upload, randomBytes(8 * MiB));
});
early.after(async () => {
	await rm(upload, { force: true });
	await platform.close();
});

const auth = { authorization: `Bearer ${TOKEN}` };

/**
 * A client that reads only once its whole request is sent, as Python's http.client does: a server that
 * closes on it mid-upload makes its writes fail (EPIPE), and it never sees the answer.
 */
function sendAllThenRead(port: number, head: string, body: Buffer): Promise<string> {
	return new Promise((resolve) => {
		const socket = connect(port, '127.0.0.1');
		socket.pause();
		let text = '';
		socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
		socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
		socket.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? `no answer: ${JSON.stringify(text.slice(0, 80))}`));
		socket.write(head);
		socket.write(body, () => socket.resume());
	});
}

early('20 of 20 fetch uploads of 8 MiB read their 413; so do chunked ones', async () => {
	const body = randomBytes(8 * MiB);
	const statuses: (number | string)[] = [];
	for (let i = 0; i < 20; i++) {
		const init: RequestInit & { duplex?: string } = { method: 'POST', body: i % 2 ? body : new Blob([body]).stream(), duplex: 'half', headers: { ...auth, 'content-type': 'application/json' } };
		const res = await fetch(`${platform.app.url}/functions`, init).catch((err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message);
		statuses.push(typeof res === 'string' ? res : res.status);
		if (typeof res !== 'string') assert.is(((await res.json()) as { error: { code: string } }).error.code, 'body_too_large');
	}
	assert.equal(statuses, Array(20).fill(413));
});

early('a client that reads only after sending all 8 MiB gets its 413, 401, 403, 404, 415 or 421, not EPIPE', async () => {
	const port = Number(new URL(platform.app.url).port);
	const body = randomBytes(8 * MiB);
	const head = (path: string, headers: string) => `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${body.length}\r\n${headers}\r\n`;
	const json = 'content-type: application/json\r\n';
	const bearer = `authorization: Bearer ${TOKEN}\r\n`;
	const cases: [string, string, number][] = [
		[head('/functions', json + bearer), '413', 20],
		[head('/functions', json), '401', 5],
		[head('/functions', json + bearer + 'origin: https://evil.example\r\n'), '403', 5],
		[head('/nope', json + bearer), '404', 5],
		[head('/functions', bearer + 'content-type: text/plain\r\n'), '415', 5],
		[head('/functions', json + bearer).replace('host: 127.0.0.1', 'host: rebind.attacker.example'), '421', 5],
		[head('/fn/ghost/upload', bearer), '404', 5],
	];
	for (const [wire, status, times] of cases) {
		const got: string[] = [];
		for (let i = 0; i < times; i++) got.push(await sendAllThenRead(port, wire, body));
		assert.equal(got, Array(times).fill(status), wire.split('\r\n').slice(0, 1).concat(wire.split('\r\n').slice(3)).join(' '));
	}
});

early('20 of 20 curl uploads of 8 MiB read their 413, with and without Expect: 100-continue', async () => {
	for (const expect of [[], ['-H', 'Expect:']]) {
		const codes: string[] = [];
		for (let i = 0; i < 20; i++) {
			const res = await execa(
				'curl',
				['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${TOKEN}`, ...expect, '--data-binary', `@${upload}`, `${platform.app.url}/functions`],
				{ reject: false },
			);
			codes.push(res.stdout + (res.stderr ? ` ${res.stderr}` : ''));
		}
		assert.equal(codes, Array(20).fill('413'), `curl ${expect.join(' ')}`);
	}
});

early('a client that keeps sending after its answer is cut off within bounds', async () => {
	const { port } = new URL(platform.app.url);
	const started = Date.now();
	let sent = 0;
	const chunk = Buffer.alloc(64 * 1024, 'x');
	const { text, closedAt } = await rawExchange(Number(port), `POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${TOKEN}\r\ncontent-length: ${1024 ** 4}\r\n\r\n`, (socket) => {
		const pump = () => {
			while (socket.writable && sent < 2 * 1024 * MiB) {
				sent += chunk.length;
				if (!socket.write(chunk)) return void socket.once('drain', pump);
			}
		};
		pump();
	});
	assert.match(text, /^HTTP\/1\.1 413 /);
	assert.match(text, /connection: close/i);
	assert.ok(closedAt - started < 10_000, `closed after ${closedAt - started} ms`);
	assert.ok(sent < 200 * MiB, `closed after ${sent / MiB} MiB`);
	// A client that trickles after its answer is cut off by time instead.
	const trickleStart = Date.now();
	const trickle = await rawExchange(Number(port), `POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n`, (socket) => {
		const drip = setInterval(() => (socket.writable ? socket.write('x') : clearInterval(drip)), 100);
		socket.once('close', () => clearInterval(drip));
	});
	assert.match(trickle.text, /^HTTP\/1\.1 401 /);
	assert.ok(trickle.closedAt - trickleStart < 8_000, `trickler closed after ${trickle.closedAt - trickleStart} ms`);
});

early.run();

// ---------------------------------------------------------------------------------------------

const order = suite('front door: CONNECT and Expect are answered after the token check');
order.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_TOKEN: TOKEN });
});
order.after(async () => {
	await platform.close();
});

order('an unauthenticated CONNECT or Expect: foo gets 401; with the token, 404/405 and 417', async () => {
	const port = Number(new URL(platform.app.url).port);
	const expect = (extra: string) => `POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nexpect: foo\r\n${extra}content-type: application/json\r\ncontent-length: 2\r\n\r\n{}`;
	const cases: [string, number, string][] = [
		['CONNECT /functions HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n', 401, 'unauthorized'],
		['CONNECT evil.example:443 HTTP/1.1\r\nhost: evil.example:443\r\n\r\n', 421, 'host_not_allowed'],
		[expect(''), 401, 'unauthorized'],
		[`CONNECT /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKEN}\r\n\r\n`, 405, 'method_not_allowed'],
		[`CONNECT /nope HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKEN}\r\n\r\n`, 404, 'not_found'],
		[expect(`authorization: Bearer ${TOKEN}\r\n`), 417, 'expectation_failed'],
	];
	for (const [head, status, code] of cases) {
		const { text } = await rawExchange(port, head);
		assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), head.split('\r\n')[0]);
		assert.ok(text.includes(`"code":"${code}"`), text);
	}
});

order('Expect: 100-continue is refused without a 100 when the token, the size or the Host is wrong', async () => {
	const port = Number(new URL(platform.app.url).port);
	const head = (extra: string, length = 2) => `POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: 100-continue\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n${extra}\r\n`;
	for (const [wire, status] of [
		[head(''), 401],
		[head(`authorization: Bearer ${TOKEN}\r\n`, 7 * MiB), 413],
	] as const) {
		const { text } = await rawExchange(port, wire);
		assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), 'a final answer, no 100 Continue first');
	}
});

order.run();

// ---------------------------------------------------------------------------------------------

const crowd = suite('front door: idle sockets do not starve real callers');

/** Opens a socket and waits until it is connected. */
function openIdle(port: number): Promise<Socket> {
	return new Promise((resolve, reject) => {
		const socket = connect(port, '127.0.0.1', () => resolve(socket));
		socket.on('error', () => {});
		socket.once('error', reject);
	});
}

crowd('past LOWCODE_FAAS_MAX_CONNECTIONS the oldest idle socket is closed, and a real request is served at once', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_MAX_CONNECTIONS: '4' });
	const idle: Socket[] = [];
	try {
		const port = Number(new URL(p.app.url).port);
		const closed: number[] = [];
		for (let i = 0; i < 10; i++) {
			const socket = await openIdle(port);
			socket.on('close', () => closed.push(i));
			idle.push(socket);
		}
		// One idle keep-alive socket, too: a finished request on it.
		const keep = await openIdle(port);
		idle.push(keep);
		keep.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
		await new Promise((resolve) => keep.once('data', resolve));
		for (let i = 0; i < 5; i++) {
			const t = Date.now();
			const res = await fetch(`${p.app.url}/healthz`, { signal: AbortSignal.timeout(3_000) });
			assert.is(res.status, 200);
			assert.ok(Date.now() - t < 1_000, `served in ${Date.now() - t} ms`);
		}
		assert.ok(closed.includes(0) && closed.includes(1), `the oldest went first: ${closed}`);
		assert.ok((await new Promise<number>((r) => p.app.server.getConnections((_e, n) => r(n)))) <= 4, 'the cap holds');
	} finally {
		for (const socket of idle) socket.destroy();
		await p.close();
	}
});

crowd('when every socket is busy, a newcomer gets a 503 rather than a reset', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_MAX_CONNECTIONS: '2' });
	const held: Socket[] = [];
	try {
		const port = Number(new URL(p.app.url).port);
		// Two requests in flight, their bodies still coming: the 100 Continue says the server took each.
		for (let i = 0; i < 2; i++) {
			const socket = await openIdle(port);
			held.push(socket);
			const continued = new Promise((resolve) => socket.once('data', resolve));
			socket.write('POST /functions HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: 100-continue\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n');
			assert.match(String(await continued), /^HTTP\/1\.1 100 /);
			socket.write('{"name":');
		}
		const { text } = await rawExchange(port, '');
		assert.match(text, /^HTTP\/1\.1 503 /);
		assert.ok(text.includes('"code":"too_many_connections"'), text);
		for (const socket of held) socket.destroy();
		await eventually(
			'/healthz served again once the busy sockets are gone',
			() =>
				fetch(`${p.app.url}/healthz`).then(
					(r) => r.status,
					() => 0,
				),
			(status) => status === 200,
		);
	} finally {
		for (const socket of held) socket.destroy();
		await p.close();
	}
});

crowd('an idle keep-alive socket is closed by the server after the keep-alive timeout', async () => {
	const p = await startPlatform();
	try {
		const started = Date.now();
		const { text, closedAt } = await rawExchange(Number(new URL(p.app.url).port), 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
		assert.match(text, /^HTTP\/1\.1 200 /);
		assert.match(text, /keep-alive: timeout=5/i);
		assert.ok(closedAt - started < 8_000, `closed after ${closedAt - started} ms`);
	} finally {
		await p.close();
	}
});

crowd.run();
