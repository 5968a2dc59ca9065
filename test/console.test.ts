import { request as httpRequest } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accessibilityViolations, launch, openPage } from './chromium.js';
import { type Platform, startPlatform } from './helpers.js';

// How the console's files are served: headers, the token, and paths that must reach no file.
const test = suite('console: serving');
let platform: Platform;

test.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_TOKEN: 'console-secret-token', LOWCODE_FAAS_STEM_CELLS: '0' });
});
test.after(() => platform.close());

/** One GET with exactly these headers and the raw path as written (fetch would resolve `..`). */
function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
	const { hostname, port } = new URL(platform.app.url);
	return new Promise((resolve, reject) => {
		const req = httpRequest({ host: hostname, port, path, method: 'GET', headers, agent: false }, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => (text += chunk));
			res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
		});
		req.on('error', reject);
		req.end();
	});
}

test('the page is served at / without the token, with a policy that allows no inline script and no framing', async () => {
	const page = await get('/');
	assert.is(page.status, 200);
	assert.match(String(page.headers['content-type']), /^text\/html/);
	const csp = String(page.headers['content-security-policy']);
	assert.match(csp, /default-src 'self'/);
	assert.match(csp, /script-src 'self'(;|$)/, 'no unsafe-inline or unsafe-eval');
	assert.match(csp, /frame-ancestors 'none'/);
	assert.is(page.headers['x-content-type-options'], 'nosniff');
	assert.is(page.headers['x-frame-options'], 'DENY');
	assert.match(page.text, /<script type="module" src="\/console\/main\.js"><\/script>/);
	assert.not.match(page.text, /<script>/, 'no inline script');
});

test('its scripts are served as JavaScript with the same headers; the API still asks for the token', async () => {
	const script = await get('/console/main.js');
	assert.is(script.status, 200);
	assert.match(String(script.headers['content-type']), /^text\/javascript/);
	assert.is(script.headers['x-content-type-options'], 'nosniff');
	assert.is((await get('/functions')).status, 401);
	assert.is((await get('/functions', { authorization: 'Bearer console-secret-token' })).status, 200);
});

test('an unchanged file is answered 304 to its ETag', async () => {
	const first = await get('/console/console.css');
	const etag = String(first.headers.etag);
	assert.match(etag, /^"[\w-]+"$/);
	const again = await get('/console/console.css', { 'if-none-match': etag });
	assert.is(again.status, 304);
	assert.is(again.text, '');
});

test('no path outside the console files reaches a file, and nothing else is opened without the token', async () => {
	for (const path of ['/console/../package.json', '/console/%2e%2e/package.json', '/console/..%2fpackage.json', '/console/nope.js', '/console/tsconfig.json', '/console/a/main.js', '/console/']) {
		const answer = await get(path);
		assert.is(answer.status, 404, path);
		assert.is(JSON.parse(answer.text).error.code, 'not_found', path);
	}
	// Outside the console's folder: the token is asked for first.
	assert.is((await get('/console')).status, 401);
	assert.is((await get('/consolefunctions')).status, 401);
});

test('a link from another site opens the page, but another site cannot read its scripts or call the API', async () => {
	const navigation = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
	assert.is((await get('/', navigation)).status, 200);
	assert.is((await get('/console/main.js', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'script' })).status, 403);
	assert.is((await get('/functions', { ...navigation, authorization: 'Bearer console-secret-token' })).status, 403);
	// A DNS-rebound name is refused before anything is served.
	assert.is((await get('/', { host: 'attacker.example' })).status, 421);
});

test('in a real browser the page loads with no error and no policy violation', async () => {
	const browser = await launch();
	try {
		const { page, problems } = await openPage(browser, platform.app.url);
		await page.waitForSelector('#app[data-ready="true"]');
		assert.equal(problems, []);
		assert.equal(await accessibilityViolations(page), []);
	} finally {
		await browser.close();
	}
});

test.run();
