import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accessibilityViolations, launch, openPage, screenshot } from './chromium.js';
import { type Platform, createFunction, invoke, startPlatform } from './helpers.js';

// The console driven in a real browser against a real platform and real containers, as a person would.
const test = suite('console: end to end in a browser');
let platform: Platform;
let browser: Browser;

test.before(async () => {
	// The shipped examples, so that the list has neighbours; greet has run once.
	const seed = { 'greet.py': await readFile('data/functions/greet.py', 'utf8'), 'web.ts': await readFile('data/functions/web.ts', 'utf8') };
	[platform, browser] = await Promise.all([startPlatform({ LOWCODE_FAAS_STEM_CELLS: '0' }, seed), launch()]);
	await invoke(platform, 'greet', { input: { name: 'console' } });
});
test.after(async () => {
	await browser?.close();
	await platform?.close();
});

/** With UPDATE_DOCS=1, a screenshot also becomes the README's picture in docs/ (not on every run: times in it differ). */
async function toDocs(shot: string, name: string): Promise<void> {
	if (process.env.UPDATE_DOCS !== '1') return;
	await mkdir('docs', { recursive: true });
	await copyFile(shot, join('docs', name));
}

/** The pages opened, with their problems, for failure messages. */
const pages = new WeakMap<Page, { problems: string[] }>();

async function open(url: string, viewport?: { width: number; height: number }) {
	// openPage waits until the scripts ran, reloading a page whose scripts Chromium dropped.
	const opened = await openPage(browser, url, viewport);
	pages.set(opened.page, opened);
	return opened;
}

/** Waits until the console has rendered the screen of `hash` (the router marks it on #app). */
async function onScreen(page: Page, hash: string): Promise<void> {
	// Locators, not waitForFunction: that evaluates a string in the page, which its CSP (no eval) refuses.
	try {
		await page.locator(`#app[data-route=${JSON.stringify(hash)}]:not([aria-busy])`).waitFor({ timeout: 15_000 });
	} catch (err) {
		const state = await page.evaluate(
			"({ url: location.href, route: document.getElementById('app').dataset.route, busy: document.getElementById('app').getAttribute('aria-busy'), alert: document.getElementById('alert').textContent, app: document.getElementById('app').textContent.slice(0, 300) })",
		);
		const { problems } = pages.get(page) ?? { problems: [] };
		throw new Error(`screen ${hash} not shown: ${JSON.stringify(state)}; problems: ${JSON.stringify(problems)}`, { cause: err });
	}
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
	const { page, context, problems } = await open(platform.app.url);
	try {
		await onScreen(page, '#/');
		await noAxeViolations(page, 'list');
		assert.is(await page.locator('#function-table tbody tr').count(), 2);
		await page.getByLabel('Filter by name or language').fill('deno');
		assert.is(await page.locator('#function-table tbody tr:not([hidden])').count(), 1, 'the filter leaves web.ts');
		await page.getByLabel('Filter by name or language').fill('');

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
		// For the picture: the source from its first line.
		await page.evaluate("(() => { const source = document.getElementById('source'); source.setSelectionRange(0, 0); source.scrollTop = 0; })()");
		await page.locator('.lf-editor[data-first-line="1"]').waitFor();
		await toDocs(await screenshot(page, 'function'), 'console-function.png');

		// The run in the history, with its details.
		await page.getByRole('link', { name: 'History' }).click();
		await onScreen(page, '#/functions/hello/history');
		const run = page.locator('details.run').first();
		await run.locator(':scope > summary').click();
		assert.match((await run.locator('pre.output').textContent()) ?? '', /Hello, Ada/);
		assert.match((await page.getAttribute('.chart-box svg', 'aria-label')) ?? '', /Durations of the last run/);
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
		// In the background: queued, then followed until done.
		await page.getByLabel('Run in the background (async): follow it in History').check();
		await page.getByLabel('Input (JSON)').fill('{"name": "Bo"}');
		await page.getByRole('button', { name: 'Invoke' }).click();
		assert.equal(await outputHolding(page, 'Bo'), { greeting: 'Howdy, Bo' });
		await page.getByLabel('Run in the background (async): follow it in History').uncheck();

		// Versions: the diff of version 1 against the current source, then a rollback to it.
		await page.getByRole('link', { name: 'Versions' }).click();
		await onScreen(page, '#/functions/hello/versions');
		assert.is(await page.locator('#version-table tbody tr').count(), 2);
		await page.getByRole('button', { name: 'Compare version 1' }).click();
		await page.locator('#diff .lf-diff-del').waitFor();
		assert.match((await page.textContent('#diff .lf-diff-del')) ?? '', /"message"/);
		assert.match((await page.textContent('#diff .lf-diff-add')) ?? '', /"greeting"/);
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
		assert.match((await row.textContent()) ?? '', /Python\s*3\s*✓ success.*4\s*0 %/, 'version 3, 4 runs, none failed');
		await noAxeViolations(page, 'list');
		await toDocs(await screenshot(page, 'list'), 'console-list.png');
		await page.goto(`${platform.app.url}/#/functions/hello/history`);
		await onScreen(page, '#/functions/hello/history');

		// Delete, through the confirmation dialog.
		await page.getByRole('button', { name: 'Delete…' }).click();
		const dialog = page.getByRole('dialog');
		await dialog.waitFor();
		await noAxeViolations(page, 'delete confirmation');
		// Cancel answers no: the dialog goes, focus returns to Delete, the function stays.
		await dialog.getByRole('button', { name: 'Cancel' }).click();
		await dialog.waitFor({ state: 'detached' });
		assert.is(await page.evaluate('document.activeElement.textContent'), 'Delete…', 'focus returns to Delete after Cancel');
		assert.is((await platform.request('GET', '/functions/hello')).status, 200, 'Cancel deletes nothing');
		await page.getByRole('button', { name: 'Delete…' }).click();
		await dialog.getByRole('button', { name: 'Delete function' }).click();
		await onScreen(page, '#/');
		assert.is((await platform.request('GET', '/functions/hello')).status, 404);
		assert.equal(problems, []);
	} finally {
		await context.close();
	}
});

/** Presses Tab until the focused element matches `selector` (at most 40 times): how a keyboard user gets there. */
async function tabTo(page: Page, selector: string): Promise<void> {
	for (let i = 0; i < 40; i++) {
		await page.keyboard.press('Tab');
		if (await page.evaluate(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) return;
	}
	assert.unreachable(`Tab never reached ${selector}`);
}

const focusOutline = (page: Page): Promise<string> => page.evaluate('getComputedStyle(document.activeElement).outlineStyle');

test('keyboard alone: skip link, create, save with Ctrl+S, invoke with Ctrl+Enter, delete through the dialog', async () => {
	const { page, context, problems } = await open(platform.app.url);
	try {
		await onScreen(page, '#/');
		await page.keyboard.press('Tab');
		assert.is(await page.evaluate('document.activeElement.id'), 'skip', 'the first Tab reaches the skip link');
		assert.is.not(await focusOutline(page), 'none', 'focus is visible');
		await tabTo(page, 'a[href="#/new"]');
		await page.keyboard.press('Enter');
		await onScreen(page, '#/new');
		await tabTo(page, 'input[name="name"]');
		await page.keyboard.type('kb');
		await tabTo(page, 'button[type="submit"]');
		assert.is.not(await focusOutline(page), 'none', 'focus is visible on buttons');
		await page.keyboard.press('Enter');
		await onScreen(page, '#/functions/kb');

		await tabTo(page, '#source');
		await page.keyboard.press('Control+End');
		await page.keyboard.type('# edited with the keyboard\n');
		await page.keyboard.press('Control+s');
		await showing(page, '#save-state', /Saved · version 2/);
		// Esc, then Tab, leaves the editor instead of indenting.
		await page.keyboard.press('Escape');
		await tabTo(page, 'textarea.input-json');
		await page.keyboard.press('Control+a');
		await page.keyboard.type('{"name": "Kay"}');
		await page.keyboard.press('Control+Enter');
		assert.equal(await outputHolding(page, 'Kay'), { message: 'Hello, Kay' });

		// Delete: Esc cancels and gives focus back; then confirm.
		await page.keyboard.press('Shift+Tab');
		await tabTo(page, 'button.danger');
		await page.keyboard.press('Enter');
		await page.getByRole('dialog').waitFor();
		assert.is(await page.evaluate('document.activeElement.textContent'), 'Cancel', 'the dialog opens on its safe answer');
		await page.keyboard.press('Escape');
		await page.getByRole('dialog').waitFor({ state: 'detached' });
		assert.is(await page.evaluate('document.activeElement.textContent'), 'Delete…', 'focus returns to Delete');
		await page.keyboard.press('Enter');
		await page.getByRole('dialog').waitFor();
		await page.keyboard.press('Shift+Tab');
		await page.keyboard.press('Enter');
		await onScreen(page, '#/');
		await showing(page, '#status', /Deleted kb/);
		assert.is((await platform.request('GET', '/functions/kb')).status, 404);
		assert.equal(problems, []);
	} finally {
		await context.close();
	}
});

test('at phone width every main screen fits without horizontal scrolling', async () => {
	await createFunction(platform, 'phone-width-function-with-a-long-name', 'python', await readFile('data/functions/greet.py', 'utf8'), { env: { GREETING: 'Hi' } });
	await invoke(platform, 'phone-width-function-with-a-long-name', { input: { name: 'a-rather-long-name-'.repeat(8) } });
	const { page, context, problems } = await open(platform.app.url, { width: 390, height: 844 });
	try {
		const base = '#/functions/phone-width-function-with-a-long-name';
		for (const [hash, shot] of [
			['#/', 'phone-list'],
			['#/new', 'phone-new'],
			[base, 'phone-function'],
			[`${base}/history`, 'phone-history'],
			[`${base}/logs`, 'phone-logs'],
			[`${base}/settings`, 'phone-settings'],
			[`${base}/versions`, 'phone-versions'],
		] as const) {
			await page.goto(`${platform.app.url}/${hash}`);
			await onScreen(page, hash);
			if (hash === base) {
				await page.getByRole('button', { name: 'Invoke' }).click();
				await page.locator('#result .result').waitFor();
			}
			if (hash.endsWith('/history')) await page.locator('details.run > summary').first().click();
			if (hash.endsWith('/versions')) await page.getByRole('button', { name: 'Compare version 1' }).click();
			await fitsWidth(page, hash);
			await screenshot(page, shot);
		}
		assert.equal(problems, []);
	} finally {
		await context.close();
	}
});

test('with a token: the prompt, a wrong token refused, the right one kept for the tab only, then forgotten', async () => {
	const guarded = await startPlatform({ LOWCODE_FAAS_TOKEN: 'e2e-console-token', LOWCODE_FAAS_STEM_CELLS: '0' });
	// Opened inside the try: the second platform is closed whatever happens.
	let context: BrowserContext | undefined;
	try {
		const opened = await open(guarded.app.url);
		context = opened.context;
		const { page, problems } = opened;
		const dialog = page.getByRole('dialog', { name: 'This server needs a token' });
		await dialog.waitFor();
		assert.is(await page.evaluate('document.activeElement.name'), 'token', 'the prompt opens on its field');
		await noAxeViolations(page, 'token prompt');
		await screenshot(page, 'token');
		await dialog.getByLabel('API token').fill('not-the-token');
		await dialog.getByRole('button', { name: 'Use token' }).click();
		await showing(page, '#token-error', /Wrong token/);
		assert.is(await page.evaluate("sessionStorage.getItem('lowcode-faas-token')"), null, 'a refused token is not kept');
		await noAxeViolations(page, 'token prompt saying wrong token');
		await page.getByRole('dialog').getByLabel('API token').fill('e2e-console-token');
		await page.getByRole('dialog').getByRole('button', { name: 'Use token' }).click();
		await onScreen(page, '#/');
		assert.is(await page.evaluate("sessionStorage.getItem('lowcode-faas-token')"), 'e2e-console-token');
		assert.is(await page.evaluate('localStorage.length + document.cookie.length'), 0, 'never in localStorage or a cookie');
		assert.not.match(page.url(), /e2e-console-token/);

		// The token works for everything: create and invoke.
		await page.getByRole('link', { name: 'New function' }).first().click();
		await onScreen(page, '#/new');
		await page.getByLabel('Name', { exact: true }).fill('guarded');
		await page.getByLabel('Deno (Deno.serve, TypeScript)').check();
		await page.getByRole('button', { name: 'Create function' }).click();
		await onScreen(page, '#/functions/guarded');
		await page.getByLabel('Input (JSON)').press('Control+Enter');
		assert.equal(await outputHolding(page, 'World'), { message: 'Hello, World' });

		await page.getByRole('button', { name: 'Forget token' }).click();
		await page.getByRole('dialog').waitFor();
		assert.is(await page.evaluate("sessionStorage.getItem('lowcode-faas-token')"), null);
		await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
		await showing(page, '#alert', /unauthorized/);
		// Esc cancels too, and focus goes back to Try again (before the failed screen is drawn anew).
		await page.getByRole('button', { name: 'Try again' }).click();
		await page.getByRole('dialog').waitFor();
		// The button is marked when it gets focus back: the failed screen then replaces it.
		await page.evaluate("(() => { const before = document.querySelector('.view .actions button'); before.addEventListener('focus', () => (before.dataset.focusBack = 'yes')); window.tokenBefore = before; })()");
		await page.keyboard.press('Escape');
		await page.getByRole('dialog').waitFor({ state: 'detached' });
		assert.is(await page.evaluate('window.tokenBefore.dataset.focusBack'), 'yes', 'focus returns to Try again');
		await showing(page, '#alert', /unauthorized/);
		// Asked again when the person tries again.
		await page.getByRole('button', { name: 'Try again' }).click();
		await page.getByRole('dialog').getByLabel('API token').fill('e2e-console-token');
		await page.getByRole('dialog').getByRole('button', { name: 'Use token' }).click();
		await onScreen(page, '#/functions/guarded');
		assert.equal(problems, []);
	} finally {
		await context?.close();
		await guarded.close();
	}
});

test.run();
