import { connect } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startPlatform } from './helpers.js';

const loris = suite('API timeouts');

loris('a client trickling its headers is cut off, and others are served meanwhile', async () => {
	const platform = await startPlatform({ LOWCODE_FAAS_HEADERS_TIMEOUT_S: '2', LOWCODE_FAAS_REQUEST_TIMEOUT_S: '3' });
	try {
		const { port } = new URL(platform.app.url);
		const socket = connect(Number(port), '127.0.0.1');
		let received = '';
		socket.setEncoding('utf8');
		socket.on('data', (chunk: string) => (received += chunk));
		const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
		const started = Date.now();
		socket.write('GET /functions HTTP/1.1\r\nHost: x\r\n');
		// Pacing, not waiting: the slow client sends a header line every 300 ms.
		const drip = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 300);
		for (let i = 0; i < 5; i++) {
			const t = Date.now();
			assert.is((await platform.request('GET', '/functions')).status, 200);
			assert.ok(Date.now() - t < 500, 'another client is served at once');
		}
		// A bound, not a wait: the close is expected after about 2 s.
		const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(0), 8_000))]);
		clearInterval(drip);
		socket.destroy();
		assert.ok(at > 0, 'the slow client was cut off');
		assert.ok(at - started < 5_000, `within the limit plus the check interval (${at - started} ms)`);
		assert.match(received, /^HTTP\/1\.1 408/, 'with a 408');
	} finally {
		await platform.close();
	}
});

loris.run();
