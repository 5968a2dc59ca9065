import { type HighlightedLines, type Language, type Token, highlightLines } from './highlight.js';

/**
 * The console's code editor: a real <textarea> (so typing, selection, undo, IME, screen readers and
 * mobile keyboards are the browser's own) whose text is transparent, laid exactly over an aria-hidden
 * <pre> that shows the same text highlighted, with a line-number gutter; both follow the textarea's
 * scrolling. No npm editor: this is a few hundred lines, served under the page's strict CSP.
 */
export interface Editor {
	element: HTMLElement;
	value: string;
	setLanguage(language: Language): void;
	focus(): void;
}

export interface EditorOptions {
	id: string;
	label: string;
	language: Language;
	value?: string;
	onSave?: () => void;
	onRun?: () => void;
	onChange?: (value: string) => void;
}

export const EDITOR_HINT = 'Tab indents · Esc then Tab leaves the editor · Ctrl+S saves · Ctrl+Enter runs';

const MODIFIERS = new Set(['Shift', 'Control', 'Alt', 'Meta', 'AltGraph', 'CapsLock']);

// Lines drawn above and below the visible ones, so a fast scroll shows no blank before the next frame.
const OVERSCAN = 30;

const INDENT: Readonly<Record<Language, string>> = { python: '    ', deno: '  ' };

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
	const node = document.createElement(tag);
	node.className = className;
	if (text !== undefined) node.textContent = text;
	return node;
}

function renderLine(line: Token[]): HTMLElement {
	const node = element('span', 'lf-editor-line');
	for (const token of line) {
		if (token.type === 'plain') node.append(token.text);
		else node.append(element('span', `lf-tok-${token.type}`, token.text));
	}
	node.append('\n');
	return node;
}

/** The start of the line holding `index`. */
function lineStart(text: string, index: number): number {
	return text.lastIndexOf('\n', index - 1) + 1;
}

/**
 * Replaces the textarea's [start, end) with `text` the way typing would, so the browser's undo
 * stack keeps it (execCommand still does that where setRangeText does not), then selects [selStart, selEnd).
 */
function replaceRange(area: HTMLTextAreaElement, start: number, end: number, text: string, selStart: number, selEnd: number): void {
	area.setSelectionRange(start, end);
	if (!document.execCommand('insertText', false, text)) {
		area.setRangeText(text, start, end, 'end');
		area.dispatchEvent(new Event('input', { bubbles: true }));
	}
	area.setSelectionRange(selStart, selEnd);
}

/** Tab: indent at the caret, or every line the selection touches; Shift+Tab: outdent those lines. */
function indent(area: HTMLTextAreaElement, unit: string, outdent: boolean): void {
	const { value, selectionStart: start, selectionEnd: end } = area;
	const multiLine = value.slice(start, end).includes('\n');
	if (!outdent && !multiLine) {
		replaceRange(area, start, end, unit, start + unit.length, start + unit.length);
		return;
	}
	const from = lineStart(value, start);
	// A selection ending at the very start of a line does not take that line along.
	const lastIndex = end > start && value[end - 1] === '\n' ? end - 1 : end;
	const toNewline = value.indexOf('\n', lastIndex);
	const to = toNewline === -1 ? value.length : toNewline;
	const lines = value.slice(from, to).split('\n');
	let firstShift = 0;
	let total = 0;
	const changed = lines.map((line, n) => {
		let shift: number;
		let result: string;
		if (outdent) {
			const match = /^(?: +|\t)/.exec(line)?.[0] ?? '';
			const cut = match === '\t' ? 1 : Math.min(match.length, unit.length);
			result = line.slice(cut);
			shift = -cut;
		} else {
			result = line ? unit + line : line;
			shift = result.length - line.length;
		}
		if (n === 0) firstShift = shift;
		total += shift;
		return result;
	});
	if (total === 0) return;
	// A selection that began at the line's start keeps the whole first line selected.
	const selStart = start === from ? from : Math.max(from, start + firstShift);
	const selEnd = multiLine ? end + total : Math.max(from, end + firstShift);
	replaceRange(area, from, to, changed.join('\n'), selStart, selEnd);
}

/** Enter: a new line with the current line's indentation, one level more after a `:` (Python) or an opening bracket. */
function newline(area: HTMLTextAreaElement, unit: string, language: Language): void {
	const { value, selectionStart: start, selectionEnd: end } = area;
	const line = value.slice(lineStart(value, start), start);
	let indentation = /^[ \t]*/.exec(line)?.[0] ?? '';
	const trimmed = line.trimEnd();
	const opens = language === 'python' ? /[:([{]$/ : /[([{]$/;
	if (opens.test(trimmed)) indentation += unit;
	const text = `\n${indentation}`;
	replaceRange(area, start, end, text, start + text.length, start + text.length);
}

export function createEditor(options: EditorOptions): Editor {
	let language = options.language;
	const root = element('div', 'lf-editor');
	const label = element('label', 'lf-editor-label', options.label);
	label.htmlFor = options.id;
	const frame = element('div', 'lf-editor-frame');
	const gutter = element('div', 'lf-editor-gutter');
	gutter.setAttribute('aria-hidden', 'true');
	const numbers = element('pre', 'lf-editor-numbers');
	gutter.append(numbers);
	const body = element('div', 'lf-editor-body');
	const highlight = element('pre', 'lf-editor-highlight');
	highlight.setAttribute('aria-hidden', 'true');
	const code = element('code', 'lf-editor-code');
	highlight.append(code);
	const area = element('textarea', 'lf-editor-input');
	area.id = options.id;
	area.spellcheck = false;
	area.wrap = 'off';
	area.setAttribute('autocapitalize', 'off');
	area.setAttribute('autocomplete', 'off');
	area.setAttribute('autocorrect', 'off');
	area.dataset.language = language;
	const hint = element('p', 'lf-editor-hint', EDITOR_HINT);
	hint.id = `${options.id}-hint`;
	area.setAttribute('aria-describedby', hint.id);
	body.append(highlight, area);
	frame.append(gutter, body);
	root.append(label, frame, hint);

	/*
	 * Only the lines in view (and a margin) are drawn, and only the text up to them is tokenized,
	 * from the first line an edit touched (highlight.ts highlightLines): a keystroke costs about the
	 * same at line 10 or at line 5,000 of a long source.
	 */
	let highlighted: HighlightedLines | undefined;
	let pending = 0;
	let lineHeight = 0;

	function lineCount(text: string): number {
		let count = 1;
		for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
		return count;
	}

	function paint(): void {
		pending = 0;
		// Measured once shown (0 while detached); the stylesheet fixes it in px, so it does not drift.
		if (!lineHeight) lineHeight = Number.parseFloat(getComputedStyle(area).lineHeight) || 0;
		const step = lineHeight || 21;
		const top = area.scrollTop;
		const total = lineCount(area.value);
		const first = Math.min(total, Math.max(0, Math.floor(top / step) - OVERSCAN));
		const last = Math.min(total, Math.ceil((top + (area.clientHeight || 800)) / step) + OVERSCAN);
		// A screenful beyond the view is tokenized too, so scrolling on does not re-tokenize at every frame.
		if (!highlighted || highlighted.text !== area.value || highlighted.language !== language || (!highlighted.complete && highlighted.lines.length < last)) {
			highlighted = highlightLines(area.value, language, last + 2 * OVERSCAN, highlighted);
		}
		const fragment = document.createDocumentFragment();
		for (let n = first; n < last; n++) fragment.append(renderLine(highlighted.lines[n] ?? []));
		code.replaceChildren(fragment);
		numbers.textContent = Array.from({ length: last - first }, (_, n) => String(first + n + 1)).join('\n');
		const shift = first * step - top;
		highlight.style.transform = `translate(${-area.scrollLeft}px, ${shift}px)`;
		numbers.style.transform = `translateY(${shift}px)`;
		root.dataset.lines = String(total);
		root.dataset.firstLine = String(first + 1);
		// The gutter is as wide as the largest number, not just the ones in view.
		numbers.style.minWidth = `${String(total).length + 1}ch`;
	}

	// Typing and scrolling bursts are coalesced to one paint per frame.
	function schedule(): void {
		if (!pending) pending = requestAnimationFrame(paint);
	}

	// After Escape, the next Tab is the browser's again (WCAG 2.1.2, no keyboard trap).
	let released = false;
	area.addEventListener('keydown', (event) => {
		// Keys that compose a character (an IME, a dead key) are the input method's.
		if (event.isComposing) return;
		const command = event.ctrlKey || event.metaKey;
		// Shift pressed on its way to Shift+Tab must not cancel an Escape.
		if (MODIFIERS.has(event.key)) return;
		if (event.key === 'Escape') {
			released = true;
			return;
		}
		const wasReleased = released;
		released = false;
		if (event.key === 'Tab' && !command && !event.altKey) {
			if (wasReleased) return;
			event.preventDefault();
			indent(area, INDENT[language], event.shiftKey);
		} else if (command && !event.altKey && event.key.toLowerCase() === 's') {
			event.preventDefault();
			options.onSave?.();
		} else if (command && event.key === 'Enter') {
			event.preventDefault();
			options.onRun?.();
		} else if (event.key === 'Enter' && !event.shiftKey && !event.altKey) {
			event.preventDefault();
			newline(area, INDENT[language], language);
		}
	});
	area.addEventListener('blur', () => {
		released = false;
	});
	area.addEventListener('input', () => {
		schedule();
		options.onChange?.(area.value);
	});
	area.addEventListener('scroll', schedule, { passive: true });
	// Mounted, shown after being hidden, or resized by its handle: more or fewer lines are in view.
	new ResizeObserver(() => {
		// The styles may have changed too (the stylesheet arrived, a larger font): measure the line height again.
		lineHeight = 0;
		schedule();
	}).observe(area);

	area.value = options.value ?? '';
	paint();

	return {
		element: root,
		get value() {
			return area.value;
		},
		set value(text: string) {
			area.value = text;
			paint();
		},
		setLanguage(next: Language) {
			language = next;
			area.dataset.language = next;
			paint();
		},
		focus() {
			area.focus();
		},
	};
}
