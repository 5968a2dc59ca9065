import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, loadConfig } from '../src/config.js';
import { type Platform, containersOf, dataFiles, fixture, request, startPlatform } from './helpers.js';

const TOKEN = 'correct-horse-battery-staple-42';
let platform: Platform;

const auth = suite('auth: bearer token');
auth.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_TOKEN: TOKEN });
});
auth.after(async () => {
	await platform.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

auth('without the token every endpoint is 401 with WWW-Authenticate', async () => {
	for (const [method, path] of [
		['GET', '/functions'],
		['GET', '/functions/x'],
		['DELETE', '/functions/x'],
		['POST', '/functions/x/invoke'],
		['GET', '/nope'],
	] as const) {
		const res = await request(platform.app.url, method, path);
		assert.is(res.status, 401, `${method} ${path}`);
		assert.is(res.body.error.code, 'unauthorized');
		assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
	}
});

auth('a wrong token, another scheme or an empty one is 401', async () => {
	for (const headers of [bearer('x'), bearer(TOKEN + 'x'), bearer(TOKEN.slice(0, -1)), { authorization: `Basic ${TOKEN}` }, { authorization: TOKEN }, { authorization: '' }]) {
		assert.is((await request(platform.app.url, 'GET', '/functions', undefined, headers)).status, 401, JSON.stringify(headers));
	}
});

auth('the right token opens the API; /healthz needs none', async () => {
	assert.is((await request(platform.app.url, 'GET', '/functions', undefined, bearer(TOKEN))).status, 200);
	assert.is((await request(platform.app.url, 'GET', '/healthz')).status, 200);
});

auth('a rejected request has no side effect: no file written, no container started', async () => {
	const source = await fixture('echo.py');
	const create = await request(platform.app.url, 'POST', '/functions', { name: 'sneaky', language: 'python', source_code: source }, bearer('wrong'));
	assert.is(create.status, 401);
	assert.equal(await dataFiles(platform.dataDir), []);
	await writeFile(join(platform.dataDir, 'functions/dropped.py'), source);
	const invoke = await request(platform.app.url, 'POST', '/functions/dropped/invoke', {}, bearer('wrong'));
	assert.is(invoke.status, 401);
	assert.equal(await containersOf(platform.config), [], 'no container was started');
	assert.equal(await dataFiles(platform.dataDir), ['functions/dropped.py'], 'not even an id was recorded');
});

auth.run();

const binding = suite('auth: binding beyond loopback');

binding('a non-loopback address without a token refuses to start', () => {
	try {
		loadConfig({ LOWCODE_FAAS_HOST: '0.0.0.0' });
		assert.unreachable('should refuse');
	} catch (err) {
		assert.instance(err, ConfigError);
		assert.match((err as Error).message, /LOWCODE_FAAS_TOKEN/);
	}
});

binding('with a token, a token file, or LOWCODE_FAAS_INSECURE=1 it starts', async () => {
	assert.is(loadConfig({ LOWCODE_FAAS_HOST: '0.0.0.0', LOWCODE_FAAS_TOKEN: TOKEN }).token, TOKEN);
	const file = join(tmpdir(), `lowcode-faas-token-${process.pid}`);
	await writeFile(file, `${TOKEN}\n`);
	assert.is(loadConfig({ LOWCODE_FAAS_HOST: '0.0.0.0', LOWCODE_FAAS_TOKEN_FILE: file }).token, TOKEN);
	assert.is(loadConfig({ LOWCODE_FAAS_HOST: '0.0.0.0', LOWCODE_FAAS_INSECURE: '1' }).token, null);
	assert.is(loadConfig({ LOWCODE_FAAS_HOST: '127.0.0.2' }).token, null, 'loopback needs no token');
});

binding('a short token is refused', () => {
	assert.throws(() => loadConfig({ LOWCODE_FAAS_TOKEN: 'short' }), /at least 16/);
});

binding.run();
