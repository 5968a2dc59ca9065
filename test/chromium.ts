import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';

/**
 * The browser the console tests drive: Debian's chromium (installed by scripts/setup.sh for the tests),
 * headless, through playwright-core, which downloads no browser. LOWCODE_FAAS_CHROMIUM names another.
 */
const EXECUTABLE = process.env.LOWCODE_FAAS_CHROMIUM ?? '/usr/bin/chromium';

/** Where the tests leave a screenshot of each main screen; printed once, overridable. */
export const SCREENSHOTS = process.env.LOWCODE_FAAS_SCREENSHOTS ?? join(tmpdir(), 'lowcode-faas-screenshots');

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface ConsolePage {
	page: Page;
	context: BrowserContext;
	/** What the page broke: uncaught errors, failed console.error calls, Content-Security-Policy violations. */
	problems: string[];
}

export async function launch(): Promise<Browser> {
	// Chromium's own sandbox needs user namespaces that a root test run here does not get; the page is ours.
	const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
	return chromium.launch({ executablePath: EXECUTABLE, args, headless: true });
}

/** A fresh context (its own sessionStorage) on `url`, with every page error and CSP violation recorded. */
export async function openPage(browser: Browser, url: string, viewport = { width: 1280, height: 800 }): Promise<ConsolePage> {
	const context = await browser.newContext({ viewport });
	const page = await context.newPage();
	const problems: string[] = [];
	page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
	page.on('console', (message) => {
		if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) problems.push(`console error: ${message.text()}`);
	});
	// Injected by the browser itself, not by the page: it runs whatever the policy says.
	await page.addInitScript({ content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));" });
	await page.goto(url);
	await scriptsRan(page);
	return { page, context, problems };
}

/**
 * Waits until the console's scripts have run (main.ts marks #app). Chromium aborts requests still
 * connecting whenever the host's interfaces change (ERR_NETWORK_CHANGED), which Docker does at every
 * container start of any test on the machine: a page whose script load was lost so is reloaded, as a
 * person would, twice at most, so that a page that never starts still fails.
 */
async function scriptsRan(page: Page): Promise<void> {
	for (let attempt = 0; ; attempt++) {
		try {
			await page.locator('#app[data-ready]').waitFor({ timeout: attempt < 2 ? 5_000 : 15_000 });
			return;
		} catch (err) {
			if (attempt >= 2) throw err;
			await page.reload();
		}
	}
}

/** axe-core's violations on the page as it is now, as readable lines; [] when it passes. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
	// Evaluated over the DevTools protocol, which the page's CSP does not govern: the page itself still may not eval.
	await page.evaluate(AXE_SOURCE);
	// Page-side code as text: this file is compiled for Node, without the DOM's types.
	const violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] = await page.evaluate("axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations)");
	return violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

let announced = false;

/** Saves a screenshot of the page as SCREENSHOTS/NAME.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
	await mkdir(SCREENSHOTS, { recursive: true });
	if (!announced) {
		announced = true;
		console.log(`console screenshots: ${SCREENSHOTS}`);
	}
	const path = join(SCREENSHOTS, `${name}.png`);
	await page.screenshot({ path, fullPage: true });
	return path;
}
