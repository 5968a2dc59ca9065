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

test.run();
