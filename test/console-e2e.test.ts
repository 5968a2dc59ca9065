import { copyFile, mkdir } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accessibilityViolations, launch, openPage, screenshot } from './chromium.js';
import { type Platform, startPlatform } from './helpers.js';

// The console driven in a real browser against a real platform and real containers, as a person would.
const test = suite('console: end to end in a browser');
let platform: Platform;
let browser: Browser;

test.before(async () => {
	[platform, browser] = await Promise.all([startPlatform({ LOWCODE_FAAS_STEM_CELLS: '0' }), launch()]);
});
test.after(async () => {
	await browser?.close();
	await platform?.close();
});

/** Waits until the console has rendered the screen of `hash` (the router marks it on #app). */
async function onScreen(page: Page, hash: string): Promise<void> {
	// Locators, not waitForFunction: that evaluates a string in the page, which its CSP (no eval) refuses.
	await page.locator(`#app[data-route=${JSON.stringify(hash)}]:not([aria-busy])`).waitFor();
}

/** Waits until the element `selector` shows text matching `pattern`. */
async function showing(page: Page, selector: string, pattern: RegExp): Promise<void> {
	await page.locator(selector).filter({ hasText: pattern }).first().waitFor();
}

/** The output shown in the result panel, once it holds `text`. */
async function outputHolding(page: Page, text: string): Promise<unknown> {
	await showing(page, '#result pre.output', new RegExp(text));
	return JSON.parse((await page.textContent('#result pre.output')) ?? '');
}

async function noAxeViolations(page: Page, screen: string): Promise<void> {
	assert.equal(await accessibilityViolations(page), [], `axe on the ${screen} screen`);
}

/** No horizontal scrolling of the page itself (wide tables and code scroll inside their own boxes). */
async function fitsWidth(page: Page, screen: string): Promise<void> {
	const { scroll, inner }: { scroll: number; inner: number } = await page.evaluate('({ scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth })');
	assert.ok(scroll <= inner, `${screen}: the page is ${scroll} px wide in a ${inner} px window`);
}

test('create from the template, edit, save, invoke, history, settings, versions and rollback, delete', async () => {
	const { page, context, problems } = await openPage(browser, platform.app.url);
	try {
		await onScreen(page, '#/');
		await noAxeViolations(page, 'empty list');

		await page.getByRole('link', { name: 'New function' }).first().click();
		await onScreen(page, '#/new');
		await page.getByLabel('Name', { exact: true }).fill('hello');
		await page.getByRole('button', { name: 'Create function' }).click();
		await onScreen(page, '#/functions/hello');
		assert.match((await page.textContent('#save-state')) ?? '', /version 1/);

		// Edit: the answer's key changes, then Ctrl+S saves it as version 2.
		const source = page.locator('#source');
		await source.fill(((await source.inputValue()) as string).replace('{"message":', '{"greeting":'));
		assert.match((await page.textContent('#save-state')) ?? '', /Unsaved/);
		await source.press('Control+s');
		await showing(page, '#save-state', /Saved · version 2/);

		// Invoke with an input, by Ctrl+Enter in the input panel.
		const input = page.getByLabel('Input (JSON)');
		await input.fill('{"name": ');
		await page.waitForSelector('textarea[aria-invalid="true"]');
		assert.match((await page.locator(`#${await input.getAttribute('aria-describedby')}`).textContent()) ?? '', /Invalid JSON/);
		await input.fill('{"name": "Ada"}');
		await input.press('Control+Enter');
		assert.equal(await outputHolding(page, 'Ada'), { greeting: 'Hello, Ada' });
		const result = (await page.textContent('#result')) ?? '';
		assert.match(result, /success/);
		assert.match(result, /HTTP status\s*200/);
		assert.match(result, /Cold start\s*yes/);
		assert.match(result, /Version\s*2/);
		await noAxeViolations(page, 'function (editor and result)');
		await mkdir('docs', { recursive: true });
		await copyFile(await screenshot(page, 'function'), 'docs/console-function.png');

		// The run in the history, with its details.
		await page.getByRole('link', { name: 'History' }).click();
		await onScreen(page, '#/functions/hello/history');
		const run = page.locator('details.run').first();
		await run.locator(':scope > summary').click();
		assert.match((await run.locator('pre.output').textContent()) ?? '', /Hello, Ada/);
		await noAxeViolations(page, 'history');
		await screenshot(page, 'history');

		await page.getByRole('link', { name: 'Logs' }).click();
		await onScreen(page, '#/functions/hello/logs');
		assert.match((await page.textContent('#logs')) ?? '', /POST \/ HTTP/);
		await noAxeViolations(page, 'logs');
		await screenshot(page, 'logs');

		// Settings: the API's validation message beside its field, then an env value that reaches the function.
		await page.getByRole('link', { name: 'Settings' }).click();
		await onScreen(page, '#/functions/hello/settings');
		await page.getByRole('button', { name: 'Add variable' }).click();
		await page.getByLabel('Name 1').fill('GREETING');
		await page.getByLabel('Value 1').fill('Howdy');
		await page.getByLabel('Memory (MiB)').fill('999999');
		await page.getByRole('button', { name: 'Save settings' }).click();
		await showing(page, '#error-memory_mb', /memory_mb must be/);
		assert.is(await page.getAttribute('#setting-memory_mb', 'aria-invalid'), 'true');
		assert.match((await page.textContent('#alert')) ?? '', /invalid_memory_mb/);
		await noAxeViolations(page, 'settings with an error');
		await page.getByLabel('Memory (MiB)').fill('');
		await page.getByRole('button', { name: 'Save settings' }).click();
		await showing(page, '#status', /Saved the settings/);
		await screenshot(page, 'settings');

		await page.getByRole('link', { name: 'Code & run' }).click();
		await onScreen(page, '#/functions/hello');
		await page.getByLabel('Input (JSON)').fill('{"name": "Ada"}');
		await page.getByRole('button', { name: 'Invoke' }).click();
		assert.equal(await outputHolding(page, 'Howdy'), { greeting: 'Howdy, Ada' });

		// Versions: the diff of version 1 against the current source, then a rollback to it.
		await page.getByRole('link', { name: 'Versions' }).click();
		await onScreen(page, '#/functions/hello/versions');
		assert.is(await page.locator('#version-table tbody tr').count(), 2);
		await page.getByRole('button', { name: 'Compare version 1' }).click();
		await page.waitForSelector('.diff .diff-del');
		assert.match((await page.textContent('.diff .diff-del')) ?? '', /^- .*"message"/);
		assert.match((await page.textContent('.diff .diff-add')) ?? '', /^\+ .*"greeting"/);
		await noAxeViolations(page, 'versions');
		await screenshot(page, 'versions');
		await page.getByRole('button', { name: 'Roll back to version 1' }).click();
		await showing(page, '#status', /Rolled hello back to version 1: it is now version 3/);
		await page.getByRole('link', { name: 'Code & run' }).click();
		await onScreen(page, '#/functions/hello');
		await page.getByLabel('Input (JSON)').fill('{"name": "Ada"}');
		await page.getByLabel('Input (JSON)').press('Control+Enter');
		assert.equal(await outputHolding(page, 'message'), { message: 'Howdy, Ada' });
		assert.match((await page.textContent('#result')) ?? '', /Version\s*3/);

		// The list shows it with its last run and counts; reload keeps the screen.
		await page.getByRole('link', { name: 'Functions', exact: true }).click();
		await onScreen(page, '#/');
		const row = page.locator('#function-table tbody tr', { hasText: 'hello' });
		assert.match((await row.textContent()) ?? '', /success/);
		assert.match((await row.textContent()) ?? '', /3/);
		await noAxeViolations(page, 'list');
		await page.goto(`${platform.app.url}/#/functions/hello/history`);
		await onScreen(page, '#/functions/hello/history');

		// Delete, through the confirmation dialog.
		await page.getByRole('button', { name: 'Delete…' }).click();
		const dialog = page.getByRole('dialog');
		await dialog.waitFor();
		await noAxeViolations(page, 'delete confirmation');
		await dialog.getByRole('button', { name: 'Delete function' }).click();
		await onScreen(page, '#/');
		assert.is((await platform.request('GET', '/functions/hello')).status, 404);
		assert.equal(problems, []);
	} finally {
		await context.close();
	}
});

test.run();
