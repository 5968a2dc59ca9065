import { writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOf, dataFiles, fixture, startPlatform } from './helpers.js';

interface Answer {
	status: number;
	headers: Record<string, string | string[] | undefined>;
	// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON shapes
	body: any;
}

/** One request with exactly these headers (Host included; fetch will not send a forged one). */
function call(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Answer> {
	const { hostname, port } = new URL(base);
	return new Promise((resolve, reject) => {
		const req = httpRequest({ host: hostname, port, path, method, headers: { host: `${hostname}:${port}`, ...headers }, setHost: false, agent: false }, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => (text += chunk));
			res.on('end', () => {
				let parsed: unknown = text;
				try {
					parsed = text ? JSON.parse(text) : null;
				} catch {}
				resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
			});
		});
		req.on('error', reject);
		req.end(body);
	});
}

const EVIL = 'https://evil.example';
const asJson = { 'content-type': 'application/json' };
let platform: Platform;
let source: string;

/** Nothing written, nothing started: the data folder holds only the seed, and no container exists. */
async function untouched(what: string) {
	assert.equal(await dataFiles(platform.dataDir), ['functions/dropped.py'], `${what}: nothing was written`);
	assert.equal(await containersOf(platform.config), [], `${what}: no container was started`);
}

const browser = suite('browser: a web page the operator visits cannot drive the API (loopback, no token)');
browser.before(async () => {
	source = await fixture('echo.py');
	platform = await startPlatform({}, { 'dropped.py': source });
});
browser.after(async () => {
	await platform.close();
});

browser('a cross-site fetch with a Blob body and no Content-Type is refused before anything happens', async () => {
	const body = JSON.stringify({ name: 'planted', language: 'python', source_code: source });
	const res = await call(platform.app.url, 'POST', '/functions', { origin: EVIL, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' }, body);
	assert.is(res.status, 403);
	assert.is(res.body.error.code, 'origin_not_allowed');
	await untouched('cross-site create');
});

browser('a JSON body without Content-Type is 415 even without browser headers (no simple-request path)', async () => {
	const body = JSON.stringify({ name: 'planted', language: 'python', source_code: source });
	const res = await call(platform.app.url, 'POST', '/functions', {}, body);
	assert.is(res.status, 415);
	assert.is(res.body.error.code, 'unsupported_media_type');
	const invoke = await call(platform.app.url, 'POST', '/functions/dropped/invoke', {}, '{}');
	assert.is(invoke.status, 415);
	await untouched('no content type');
});

browser('an empty HTML form POST does not invoke: 403 with its Origin, 415 without', async () => {
	const form = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '0' };
	const res = await call(platform.app.url, 'POST', '/functions/dropped/invoke', { ...form, origin: 'null', 'sec-fetch-site': 'cross-site' });
	assert.is(res.status, 403);
	assert.is(res.body.error.code, 'origin_not_allowed');
	const old = await call(platform.app.url, 'POST', '/functions/dropped/invoke', form);
	assert.is(old.status, 415, 'an old browser that sends no Origin');
	const plain = await call(platform.app.url, 'POST', '/functions/dropped/invoke', { 'content-type': 'text/plain', 'content-length': '0' });
	assert.is(plain.status, 415);
	await untouched('form post');
});

browser('DNS rebinding: a Host that names another site is refused on every path, /healthz included', async () => {
	const rebind = { host: `rebind.attacker.example:${new URL(platform.app.url).port}` };
	for (const [method, path] of [
		['GET', '/functions?show_env=true'],
		['GET', '/functions/dropped?show_env=true'],
		['GET', '/healthz'],
		['GET', '/runs'],
		['GET', '/fn/dropped/'],
		['GET', '/nope'],
	]) {
		const res = await call(platform.app.url, method!, path!, rebind);
		assert.is(res.status, 421, `${method} ${path}`);
		assert.is(res.body.error.code, 'host_not_allowed');
	}
	const create = await call(platform.app.url, 'POST', '/functions', { ...rebind, ...asJson }, JSON.stringify({ name: 'planted', language: 'python', source_code: source }));
	assert.is(create.status, 421);
	const invoke = await call(platform.app.url, 'POST', '/functions/dropped/invoke', { ...rebind, ...asJson }, '{}');
	assert.is(invoke.status, 421);
	for (const host of ['rebind.attacker.example', 'localhost.attacker.example', '127.0.0.1.nip.io', 'attacker.example:80@localhost', '']) {
		assert.is((await call(platform.app.url, 'GET', '/functions', { host })).status, 421, host);
	}
	await untouched('rebinding');
});

// Its own platform: the invocation it lets through writes history and starts a container, which the
// other tests of this suite check never happens.
browser('loopback names, with or without the port, and the server’s own origin are served', async () => {
	const p = await startPlatform({}, { 'dropped.py': source });
	try {
		const { port } = new URL(p.app.url);
		for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST', 'localhost.', `[::1]:${port}`, '127.9.8.7']) {
			assert.is((await call(p.app.url, 'GET', '/functions', { host })).status, 200, host);
		}
		const own = { host: `localhost:${port}`, origin: `http://localhost:${port}`, 'sec-fetch-site': 'same-origin', ...asJson };
		assert.is((await call(p.app.url, 'POST', '/functions/dropped/invoke', own, '{"input": 1}')).status, 200, 'same-origin POST from the API’s own page');
		assert.is((await call(p.app.url, 'GET', '/functions', { 'sec-fetch-site': 'none' })).status, 200, 'typed into the address bar');
	} finally {
		await p.close();
	}
});

browser('Sec-Fetch-Site cross-site or same-site without an allowed Origin is refused, GETs included', async () => {
	for (const site of ['cross-site', 'same-site']) {
		const res = await call(platform.app.url, 'GET', '/functions?show_env=true', { 'sec-fetch-site': site });
		assert.is(res.status, 403, site);
		assert.is(res.body.error.code, 'cross_site_request');
	}
	const { port } = new URL(platform.app.url);
	for (const origin of [`http://localhost:${Number(port) + 1}`, `http://127.0.0.1.nip.io:${port}`, EVIL, 'null']) {
		const res = await call(platform.app.url, 'GET', '/functions', { origin });
		assert.is(res.status, 403, origin);
		assert.is(res.body.error.code, 'origin_not_allowed');
	}
});

browser.run();

const allowed = suite('browser: LOWCODE_FAAS_ALLOWED_HOSTS and LOWCODE_FAAS_ALLOWED_ORIGINS');

allowed('listed hosts and origins are served; others still are not', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_ALLOWED_HOSTS: 'faas.example.com, proxy.internal:8443', LOWCODE_FAAS_ALLOWED_ORIGINS: 'https://dash.example.com' });
	try {
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'faas.example.com' })).status, 200);
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'FAAS.example.com:443' })).status, 200, 'any port when none is listed');
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'proxy.internal:8443' })).status, 200);
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'proxy.internal:9999' })).status, 421, 'a listed port must match');
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'other.example.com' })).status, 421);
		const proxied = { host: 'faas.example.com', origin: 'https://faas.example.com', 'sec-fetch-site': 'same-origin' };
		assert.is((await call(p.app.url, 'GET', '/functions', proxied)).status, 200, 'the page served through the proxy');
		assert.is((await call(p.app.url, 'GET', '/functions', { origin: 'https://dash.example.com', 'sec-fetch-site': 'same-site' })).status, 200);
		assert.is((await call(p.app.url, 'GET', '/functions', { origin: 'https://evil.example.com', 'sec-fetch-site': 'same-site' })).status, 403);
	} finally {
		await p.close();
	}
});

allowed('LOWCODE_FAAS_ALLOWED_HOSTS=* turns the Host check off; the Origin check stays', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_ALLOWED_HOSTS: '*' });
	try {
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'anything.example:1234' })).status, 200);
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'anything.example', origin: 'http://anything.example' })).status, 200);
		assert.is((await call(p.app.url, 'GET', '/functions', { host: 'anything.example', origin: EVIL })).status, 403);
	} finally {
		await p.close();
	}
});

allowed('bound to 0.0.0.0, the machine’s own addresses are its own; a rebinding name is not', async () => {
	const p = await startPlatform({ LOWCODE_FAAS_HOST: '0.0.0.0', LOWCODE_FAAS_TOKEN: 'front-door-token-0123456789' });
	try {
		const auth = { authorization: 'Bearer front-door-token-0123456789' };
		const { port } = new URL(p.app.url);
		const own = Object.values(networkInterfaces())
			.flat()
			.find((a) => a && a.family === 'IPv4' && !a.internal);
		if (own) assert.is((await call(p.app.url, 'GET', '/functions', { ...auth, host: `${own.address}:${port}` })).status, 200, own.address);
		assert.is((await call(p.app.url, 'GET', '/functions', { ...auth, host: `localhost:${port}` })).status, 200);
		const res = await call(p.app.url, 'GET', '/functions', { ...auth, host: `rebind.attacker.example:${port}` });
		assert.is(res.status, 421);
		assert.match(res.body.error.message, /LOWCODE_FAAS_ALLOWED_HOSTS/);
	} finally {
		await p.close();
	}
});

allowed('bad lists stop the start with a message naming the variable', async () => {
	const { loadConfig } = await import('../src/config.js');
	assert.throws(() => loadConfig({ LOWCODE_FAAS_ALLOWED_HOSTS: 'http://x.example' }), /LOWCODE_FAAS_ALLOWED_HOSTS/);
	assert.throws(() => loadConfig({ LOWCODE_FAAS_ALLOWED_ORIGINS: 'dash.example.com' }), /LOWCODE_FAAS_ALLOWED_ORIGINS/);
	assert.throws(() => loadConfig({ LOWCODE_FAAS_ALLOWED_ORIGINS: 'https://dash.example.com/path' }), /LOWCODE_FAAS_ALLOWED_ORIGINS/);
	assert.equal(loadConfig({}).allowedHosts, []);
	assert.equal(loadConfig({ LOWCODE_FAAS_ALLOWED_ORIGINS: 'HTTPS://Dash.example.com:443' }).allowedOrigins, ['https://dash.example.com']);
});

allowed.run();

const clients = suite('browser: curl and the CLI are unchanged');

clients('the CLI sends a Host that matches its URL and no Origin', async () => {
	const seen: Record<string, string | string[] | undefined>[] = [];
	const spy = createServer((req, res) => {
		seen.push(req.headers);
		res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
	});
	await new Promise<void>((resolve) => spy.listen(0, '127.0.0.1', resolve));
	try {
		const { port } = spy.address() as AddressInfo;
		const res = await execa('node', ['dist/src/cli.js', 'list'], { reject: false, env: { LOWCODE_FAAS_URL: `http://localhost:${port}` } });
		assert.is(res.exitCode, 0, res.stderr);
		assert.is(seen[0]?.host, `localhost:${port}`);
		assert.is(seen[0]?.origin, undefined);
		assert.is(seen[0]?.['sec-fetch-site'], undefined);
	} finally {
		spy.close();
	}
});

clients('the CLI and curl work against a platform with ALLOWED_HOSTS unset', async () => {
	const p = await startPlatform();
	try {
		const { port } = new URL(p.app.url);
		const dir = p.dataDir;
		await writeFile(join(dir, 'hello.py'), await fixture('echo.py'));
		for (const base of [p.app.url, `http://localhost:${port}`]) {
			const env = { LOWCODE_FAAS_URL: base, LOWCODE_FAAS_TOKEN: '' };
			const deployed = await execa('node', ['dist/src/cli.js', 'deploy', join(dir, 'hello.py')], { reject: false, env });
			assert.is(deployed.exitCode, 0, deployed.stderr);
			const list = await execa('node', ['dist/src/cli.js', 'list'], { reject: false, env });
			assert.match(list.stdout, /^hello\tpython\t/);
			const curl = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `${base}/functions/hello/invoke`, '-H', 'Content-Type: application/json', '-d', '{"input": 1}']);
			assert.is(curl.stdout, '200', `curl ${base}`);
			const bare = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `${base}/functions/hello/invoke`]);
			assert.is(bare.stdout, '200', 'a bodiless POST needs no Content-Type');
		}
		await p.app.scheduler.drain();
	} finally {
		await p.close();
	}
});

clients('curl uploads through the raw route with its Expect: 100-continue as before', async () => {
	const p = await startPlatform({}, { 'raw.ts': await fixture('raw.ts') });
	try {
		const file = join(p.dataDir, 'upload.bin');
		await writeFile(file, Buffer.alloc(3 * 1024 * 1024, 7));
		const res = await execa('curl', ['-sS', '-v', '-X', 'PUT', '--data-binary', `@${file}`, '-w', '\\n%{http_code}', `${p.app.url}/fn/raw/upload`]);
		const [body, code] = res.stdout.split('\n');
		assert.is(code, '200', res.stdout);
		assert.is(JSON.parse(body!).length, 3 * 1024 * 1024);
		// The platform answers Expect itself; the function gets a plainly framed request.
		assert.match(res.stderr, /> Expect: 100-continue/i, 'curl sent Expect');
		assert.match(res.stderr, /< HTTP\/1\.1 100 Continue/i, 'and was told to go on');
		assert.is(JSON.parse(body!).headers.expect, undefined, 'Expect is hop-by-hop: not forwarded');
		await p.app.scheduler.drain();
	} finally {
		await p.close();
	}
});

clients.run();
