import type { Browser, Page, Request } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { launch } from './chromium.js';
import { type Platform, deploy, startPlatform } from './helpers.js';

// Attacks on the console's page itself: a hostile function's output, headers and logs, and links to the
// console whose hash route names something that is not a function.
const test = suite('console: attacks on the page');
let platform: Platform;
let browser: Browser;

test.before(async () => {
	[platform, browser] = await Promise.all([startPlatform({ LOWCODE_FAAS_STEM_CELLS: '0' }), launch()]);
	await deploy(platform, 'hostile', 'hostile.py');
});
test.after(async () => {
	await browser?.close();
	await platform?.close();
});

/** Opens the console at `hash`, recording every request the page sends to the platform. */
async function openAt(hash: string) {
	const requests: string[] = [];
	const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
	const page = await context.newPage();
	const problems: string[] = [];
	page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
	page.on('request', (req: Request) => {
		const url = new URL(req.url());
		requests.push(`${req.method()} ${url.origin === platform.app.url ? '' : url.origin}${url.pathname}${url.search}`);
	});
	await page.goto(`${platform.app.url}/${hash}`);
	// Chromium aborts requests being connected when Docker adds an interface (see console-e2e): reload once then.
	await page
		.locator('#app[data-ready]')
		.waitFor({ timeout: 5_000 })
		.catch(() => page.reload());
	await page.locator('#app[data-ready]').waitFor();
	await page.locator('#app[data-route]:not([aria-busy])').waitFor();
	return { page, context, problems, requests };
}

async function heading(page: Page): Promise<string> {
	return ((await page.locator('#view h1').textContent()) ?? '').trim();
}

for (const hash of [
	'#/functions/..',
	'#/functions/.',
	'#/functions/../logs',
	'#/functions/../versions',
	'#/functions/%2e%2e/history',
	'#/functions/%E0%A4%A',
	`#/functions/${'a'.repeat(5000)}`,
	'#/functions/Session%20expired%3A%20sign%20in%20at%20evil.example/logs',
]) {
	test(`a link to ${hash.slice(0, 60)} shows Not found and asks the platform nothing`, async () => {
		const { page, context, requests, problems } = await openAt(hash);
		try {
			assert.is(await heading(page), 'Not found');
			assert.equal(
				requests.filter((r) => !/^GET \/(console\/|$)/.test(r)),
				[],
				'requests sent',
			);
			assert.equal(problems, []);
		} finally {
			await context.close();
		}
	});
}

for (const tab of ['', '/history', '/logs', '/settings', '/versions']) {
	test(`a link to a function that does not exist (${tab || 'code'}) shows Not found, not its screen`, async () => {
		const { page, context, problems } = await openAt(`#/functions/Session-expired-sign-in-at-evil-example${tab}`);
		try {
			assert.is(await heading(page), 'Not found');
			assert.is(await page.getByRole('button', { name: 'Delete…' }).count(), 0);
			assert.equal(problems, []);
		} finally {
			await context.close();
		}
	});
}

test('opening any screen from a link sends only GET requests (a link cannot change anything)', async () => {
	for (const hash of ['#/', '#/new', '#/functions/hostile', '#/functions/hostile/history', '#/functions/hostile/logs', '#/functions/hostile/settings', '#/functions/hostile/versions']) {
		const { context, requests, problems } = await openAt(hash);
		try {
			assert.ok(requests.length > 0, hash);
			assert.equal(
				requests.filter((r) => !r.startsWith('GET /')),
				[],
				hash,
			);
			assert.equal(problems, [], hash);
		} finally {
			await context.close();
		}
	}
});

/** No element that markup from the function could have made, and no script of it ran. */
async function noInjection(page: Page, problems: string[]): Promise<void> {
	assert.is(await page.locator('#pwned, #view img, #view script, #view b').count(), 0, 'markup from the function became elements');
	assert.not.match(await page.title(), /^[12]$/);
	assert.equal(problems, []);
}

test("a function's markup in its output, headers, logs and history is shown as text", async () => {
	const { page, context, problems } = await openAt('#/functions/hostile');
	try {
		await page.getByRole('button', { name: 'Invoke' }).click();
		await page.locator('#result pre.output').filter({ hasText: 'onerror' }).waitFor();
		assert.match((await page.textContent('#result pre.output')) ?? '', /<img src=x id=pwned/);
		await page.locator('#result details.headers summary').click();
		assert.match((await page.textContent('#result .header-list')) ?? '', /x-markup\s*<img src=x id=pwned/i);
		await noInjection(page, problems);
		await page.getByRole('link', { name: 'Logs' }).click();
		await page.locator('#logs').filter({ hasText: '<script>' }).waitFor();
		await noInjection(page, problems);
		await page.getByRole('link', { name: 'History' }).click();
		await page.locator('#runs details.run').first().waitFor();
		await page.locator('#runs details.run summary').first().click();
		assert.match((await page.textContent('#runs')) ?? '', /<img src=x id=pwned/);
		await noInjection(page, problems);
	} finally {
		await context.close();
	}
});

test('markup in env names and values stays in the inputs', async () => {
	const markup = '<img src=x id=pwned onerror="document.title=1">';
	await platform.request('PATCH', '/functions/hostile', { env: { MARKUP: markup } });
	const { page, context, problems } = await openAt('#/functions/hostile/settings');
	try {
		assert.is(await page.locator('.env-value').first().inputValue(), markup);
		await page.getByRole('link', { name: 'Code & run' }).click();
		await page.locator('#source').waitFor();
		await noInjection(page, problems);
	} finally {
		await context.close();
		await platform.request('PATCH', '/functions/hostile', { env: null });
	}
});

for (const input of ['{"big": true}', '{"wide": true}'])
	test(`a 4-6 MB output (${input}) is shown without freezing the page`, async () => {
		const { page, context, problems } = await openAt('#/functions/hostile');
		try {
			await page.getByLabel('Input (JSON)').fill(input);
			const started = Date.now();
			await page.getByRole('button', { name: 'Invoke' }).click();
			await page.locator('#result .result').waitFor({ timeout: 30_000 });
			// The page still answers: a round trip through its event loop.
			assert.is(await page.evaluate('1 + 1'), 2);
			// A 2-million-element array is 2 million lines pretty-printed: the page shows its start, and says so.
			if (input.includes('wide')) assert.match((await page.textContent('#result .output-cut')) ?? '', /Cut here/);
			assert.ok(((await page.textContent('#result pre.output')) ?? '').length <= 1_000_000);
			assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
			assert.equal(problems, []);
		} finally {
			await context.close();
		}
	});

test('the diff of two huge sources is shown without freezing the page', async () => {
	// 1 MB of lines each way (the largest source): every line differs, so the diff has 2 million of them.
	const huge = (c: string) => `${c}\n`.repeat(500_000);
	await platform.request('POST', '/functions', { name: 'lines', language: 'python', source_code: huge('a') });
	await platform.request('POST', '/functions', { name: 'lines', language: 'python', source_code: huge('b') });
	const { page, context, problems } = await openAt('#/functions/lines/versions');
	try {
		const started = Date.now();
		await page.getByRole('button', { name: 'Compare version 1' }).click();
		await page.locator('#diff').waitFor({ timeout: 30_000 });
		assert.is(await page.evaluate('1 + 1'), 2);
		assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
		assert.match((await page.textContent('#version-detail')) ?? '', /500000 lines removed, 500000 added/);
		assert.match((await page.textContent('#version-detail .diff-cut')) ?? '', /first 20000 of the diff's 1000001 lines/);
		assert.equal(problems, []);
	} finally {
		await context.close();
	}
});

test.run();
