import type { Browser } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ConsolePage, accessibilityViolations, launch, openPage } from './chromium.js';
import { type Platform, startPlatform } from './helpers.js';

// The console's editor and chart components, mounted on the served page and driven by a real keyboard.
const test = suite('console components: editor and duration chart in Chromium');
let platform: Platform;
let browser: Browser;
let tab: ConsolePage;

/*
 * Page-side code is text: this file is compiled for Node, without the DOM's types. The components are
 * imported from the platform itself (so the page's CSP applies to them) and mounted into the page.
 */
const MOUNT = `(async () => {
	const { createEditor } = await import('/console/editor.js');
	const { durationChart } = await import('/console/chart.js');
	const link = document.createElement('link');
	link.rel = 'stylesheet';
	link.href = '/console/components.css';
	const loaded = new Promise((resolve) => link.addEventListener('load', resolve));
	document.head.append(link);
	await loaded;
	window.calls = [];
	const app = document.getElementById('app');
	app.replaceChildren();
	const heading = document.createElement('h1');
	heading.textContent = 'Components';
	const before = document.createElement('button');
	before.id = 'before';
	before.textContent = 'Before';
	const after = document.createElement('button');
	after.id = 'after';
	after.textContent = 'After';
	const editor = createEditor({
		id: 'source', label: 'Source code', language: 'python', value: '',
		onSave: () => window.calls.push('save'), onRun: () => window.calls.push('run'), onChange: () => window.calls.push('change'),
	});
	window.editor = editor;
	const runs = [
		{ duration_ms: 12, status: 'success' }, { duration_ms: 48, status: 'failed' },
		{ duration_ms: 9, status: 'success' }, { duration_ms: 30, status: 'timeout' },
	];
	app.append(heading, before, editor.element, after, durationChart(runs), durationChart([]));
})()`;

/** The textarea's value and selection. */
function state(): Promise<{ value: string; start: number; end: number }> {
	return tab.page.evaluate("(() => { const a = document.getElementById('source'); return { value: a.value, start: a.selectionStart, end: a.selectionEnd }; })()");
}

/**
 * Polls a page-side expression until it is true. Not page.waitForFunction: that evaluates the text with
 * the page's own eval, which the console's CSP rightly refuses (and reports as a violation).
 */
async function until(expression: string, timeoutMs = 5000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await tab.page.evaluate(expression))) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
}

/** Waits until the highlighted layer has caught up with the textarea (it is re-painted once per frame, only the lines in view). */
async function rendered(): Promise<void> {
	await until(
		"(() => { const v = document.getElementById('source').value; const lines = v.split('\\n'); const shown = document.querySelector('.lf-editor-code').textContent; return document.querySelector('.lf-editor').dataset.lines === String(lines.length) && (lines.length > 50 || shown === v + '\\n'); })()",
	);
}

async function setValue(value: string, caret: number): Promise<void> {
	await tab.page.evaluate(`(() => { window.editor.value = ${JSON.stringify(value)}; const a = document.getElementById('source'); a.focus(); a.setSelectionRange(${caret}, ${caret}); })()`);
}

test.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_STEM_CELLS: '0' });
	browser = await launch();
	tab = await openPage(browser, `${platform.app.url}/`);
	await tab.page.evaluate(MOUNT);
});
test.after(async () => {
	await browser?.close();
	await platform?.close();
});

test('the textarea is labelled, unchecked for spelling, and described by the visible hint', async () => {
	const label = await tab.page.evaluate("document.querySelector('label[for=source]').textContent");
	assert.is(label, 'Source code');
	const attrs = await tab.page.evaluate("(() => { const a = document.getElementById('source'); return [a.spellcheck, a.getAttribute('autocapitalize'), document.getElementById(a.getAttribute('aria-describedby')).textContent]; })()");
	assert.equal(attrs, [false, 'off', 'Tab indents · Esc then Tab leaves the editor · Ctrl+S saves · Ctrl+Enter runs']);
	assert.is(await tab.page.evaluate("document.querySelector('.lf-editor-highlight').getAttribute('aria-hidden')"), 'true');
});

test('typed Python is highlighted by kind, and the gutter numbers every line', async () => {
	await setValue('', 0);
	await tab.page.keyboard.type('def f(x):');
	await tab.page.keyboard.press('Enter');
	await tab.page.keyboard.type("return 'hi'  # done");
	await tab.page.keyboard.press('Enter');
	await tab.page.keyboard.type('42');
	await rendered();
	assert.is((await state()).value, "def f(x):\n    return 'hi'  # done\n    42", 'Enter keeps the indentation, one level more after a colon');
	const spans = await tab.page.evaluate("[...document.querySelectorAll('.lf-editor-code span span')].map((s) => s.className + ' ' + s.textContent)");
	assert.equal(spans, ['lf-tok-keyword def', 'lf-tok-keyword return', "lf-tok-string 'hi'", 'lf-tok-comment # done', 'lf-tok-number 42']);
	assert.is(await tab.page.evaluate("document.querySelector('.lf-editor-numbers').textContent"), '1\n2\n3');
	assert.ok(await tab.page.evaluate("window.calls.includes('change')"), 'onChange was called');
});

test('Tab indents at the caret; with a selection it indents the lines, Shift+Tab outdents them', async () => {
	await setValue('a\nb\nc', 0);
	await tab.page.keyboard.press('Tab');
	assert.equal(await state(), { value: '    a\nb\nc', start: 4, end: 4 });
	await tab.page.evaluate("document.getElementById('source').setSelectionRange(5, 8)");
	await tab.page.keyboard.press('Tab');
	assert.is((await state()).value, '        a\n    b\nc', 'both touched lines indented, the third untouched');
	await tab.page.keyboard.press('Shift+Tab');
	assert.is((await state()).value, '    a\nb\nc');
	await tab.page.keyboard.press('Shift+Tab');
	assert.is((await state()).value, 'a\nb\nc');
	assert.is(await tab.page.evaluate('document.activeElement.id'), 'source', 'focus stayed in the editor');
});

test('indentation is one step of the browser undo stack', async () => {
	await setValue('a\nb', 0);
	await tab.page.keyboard.type('x');
	await tab.page.keyboard.press('Tab');
	assert.is((await state()).value, 'x    a\nb');
	await tab.page.keyboard.press('Control+z');
	assert.is((await state()).value, 'xa\nb', 'Ctrl+Z took back the indentation only');
});

test('Deno indents by two spaces and highlights TypeScript', async () => {
	await tab.page.evaluate("window.editor.setLanguage('deno')");
	await setValue('', 0);
	await tab.page.keyboard.type('export default {');
	await tab.page.keyboard.press('Enter');
	await tab.page.keyboard.type('a: `t` // c');
	await rendered();
	assert.is((await state()).value, 'export default {\n  a: `t` // c');
	const spans = await tab.page.evaluate("[...document.querySelectorAll('.lf-editor-code span span')].map((s) => s.className + ' ' + s.textContent)");
	assert.equal(spans, ['lf-tok-keyword export', 'lf-tok-keyword default', 'lf-tok-string `t`', 'lf-tok-comment // c']);
	await tab.page.evaluate("window.editor.setLanguage('python')");
});

test('Ctrl+S saves and Ctrl+Enter runs, without typing anything', async () => {
	await setValue('x = 1', 5);
	await tab.page.evaluate('window.calls = []');
	await tab.page.keyboard.press('Control+s');
	await tab.page.keyboard.press('Control+Enter');
	await tab.page.keyboard.press('Meta+s');
	assert.equal(await tab.page.evaluate('window.calls'), ['save', 'run', 'save']);
	assert.is((await state()).value, 'x = 1');
});

test('Escape then Tab leaves the editor (no keyboard trap); Shift+Tab after Escape goes back', async () => {
	await setValue('x', 1);
	await tab.page.keyboard.press('Escape');
	await tab.page.keyboard.press('Tab');
	assert.is(await tab.page.evaluate('document.activeElement.id'), 'after');
	await tab.page.keyboard.press('Shift+Tab');
	assert.is(await tab.page.evaluate('document.activeElement.id'), 'source');
	await tab.page.keyboard.press('Tab');
	assert.is(await tab.page.evaluate('document.activeElement.id'), 'source', 'without Escape, Tab indents again');
	await tab.page.keyboard.press('Escape');
	await tab.page.keyboard.press('Shift+Tab');
	assert.is(await tab.page.evaluate('document.activeElement.id'), 'before');
});

test('a 5,000-line source is highlighted, and typing at its end costs about what a bare textarea costs', async () => {
	const big = Array.from({ length: 5000 }, (_, n) => `    value_${n} = compute(${n}, "text")  # line ${n}`).join('\n');
	await setValue(big, big.length);
	await rendered();
	// Median milliseconds from a keystroke to the next frame painted, in the editor and in a plain textarea with the same text.
	const [editor, bare]: number[] = await tab.page.evaluate(`(async () => {
		const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
		async function typing(area) {
			area.focus();
			area.setSelectionRange(area.value.length, area.value.length);
			await frame();
			const times = [];
			for (let n = 0; n < 9; n++) {
				const t0 = performance.now();
				document.execCommand('insertText', false, 'z');
				await frame();
				times.push(performance.now() - t0);
			}
			return times.sort((a, b) => a - b)[4];
		}
		const editor = await typing(document.getElementById('source'));
		const plain = document.createElement('textarea');
		plain.className = 'lf-editor-input';
		plain.wrap = 'off';
		plain.value = ${JSON.stringify(big)};
		const box = document.createElement('div');
		box.className = 'lf-editor-frame';
		box.append(plain);
		document.body.append(box);
		const bare = await typing(plain);
		box.remove();
		return [editor, bare];
	})()`);
	await rendered();
	assert.ok((editor as number) < 2 * (bare as number) + 50, `a keystroke took ${editor?.toFixed(1)} ms in the editor, ${bare?.toFixed(1)} ms in a bare textarea`);
	assert.is(await tab.page.evaluate("document.querySelector('.lf-editor').dataset.lines"), '5000');
	const last = await tab.page.evaluate("[...document.querySelectorAll('.lf-editor-line')].at(-1).textContent");
	assert.is(last, '    value_4999 = compute(4999, "text")  # line 4999zzzzzzzzz\n', 'the last line is drawn, highlighted up to the end');
});

test('the highlighted text and the line numbers follow the textarea when it scrolls', async () => {
	await tab.page.evaluate("document.getElementById('source').scrollTop = 21 * 3000");
	await until("[...document.querySelectorAll('.lf-editor-line')].some((l) => l.textContent.includes('value_3000 '))");
	// Line 3001 of the highlight, its number in the gutter and the textarea's own line 3001 are at the same height.
	const tops: number[] = await tab.page.evaluate(`(() => {
		const a = document.getElementById('source');
		const line = [...document.querySelectorAll('.lf-editor-line')].find((l) => l.textContent.includes('value_3000 '));
		const first = Number(document.querySelector('.lf-editor').dataset.firstLine);
		const numbers = document.querySelector('.lf-editor-numbers');
		const numberTop = numbers.getBoundingClientRect().top + 8 + (3001 - first) * 21;
		const areaTop = a.getBoundingClientRect().top + 8 + 3000 * 21 - a.scrollTop;
		return [Math.round(line.getBoundingClientRect().top), Math.round(numberTop), Math.round(areaTop), numbers.textContent.split('\\n').includes('3001') ? 1 : 0];
	})()`);
	const [highlightTop, gutterTop, areaTop] = tops as [number, number, number];
	// An inline span's box is its font's height, centred in the 21px line: a few pixels below the line's top, never a line off.
	assert.ok(highlightTop >= areaTop && highlightTop - areaTop <= 4, `highlight ${highlightTop} vs textarea ${areaTop}`);
	assert.is(gutterTop, areaTop, 'the gutter line is level with the textarea line');
	assert.is(tops[3], 1, 'the gutter shows line 3001');
	// Sideways too: a long line scrolled left moves its highlighted copy by as much.
	await setValue(`${'x'.repeat(400)} = 1`, 0);
	const sideways: number = await tab.page.evaluate("(() => { const a = document.getElementById('source'); a.scrollLeft = 120; return a.scrollLeft; })()");
	assert.ok(sideways > 0, 'the textarea scrolls sideways');
	await until(`document.querySelector('.lf-editor-highlight').style.transform.startsWith('translate(-${sideways}px,')`);
});

test('the chart is an image with a summary, a title per bar, and failed bars marked by class', async () => {
	const chart: { role: string; label: string; titles: string[]; failed: number; marks: number } = await tab.page.evaluate(
		"(() => { const s = document.querySelector('svg.lf-chart'); return { role: s.getAttribute('role'), label: s.getAttribute('aria-label'), titles: [...s.querySelectorAll('.lf-chart-bar title')].map((t) => t.textContent), failed: s.querySelectorAll('g.lf-chart-bar-failed').length, marks: s.querySelectorAll('.lf-chart-mark').length }; })()",
	);
	assert.is(chart.role, 'img');
	assert.is(chart.label, 'Durations of the last 4 runs: median 21 ms, max 48 ms, 2 failed');
	assert.equal(chart.titles, ['12 ms, success', '48 ms, failed', '9 ms, success', '30 ms, timeout']);
	assert.is(chart.failed, 2);
	assert.is(chart.marks, 2);
	const empty = await tab.page.evaluate("document.querySelectorAll('svg.lf-chart')[1].getAttribute('aria-label')");
	assert.is(empty, 'No runs yet');
});

test('the page passes axe-core with the components mounted, and nothing broke the CSP', async () => {
	assert.equal(await accessibilityViolations(tab.page), []);
	assert.equal(tab.problems, []);
});

test('at phone width the editor scrolls sideways instead of widening the page', async () => {
	await tab.page.setViewportSize({ width: 360, height: 740 });
	await setValue(`x = "${'long '.repeat(100)}"`, 0);
	const widths = await tab.page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth, document.getElementById('source').scrollWidth > document.getElementById('source').clientWidth]");
	assert.equal(widths, [360, 360, true]);
	await tab.page.setViewportSize({ width: 1280, height: 800 });
});

test.run();
