/**
 * A tiny element builder. Every string becomes a text node, never markup: function names, sources,
 * outputs, logs and error messages come from the API and are untrusted.
 */
export type Child = Node | string | number | null | undefined | false;

type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
	const element = document.createElement(tag);
	for (const [key, value] of Object.entries(attributes)) {
		if (value === null || value === undefined || value === false) continue;
		if (typeof value === 'function') element.addEventListener(key.replace(/^on/, ''), value);
		else if (value === true) element.setAttribute(key, '');
		else element.setAttribute(key, String(value));
	}
	append(element, children);
	return element;
}

export function append(parent: Node, children: (Child | Child[])[]): void {
	for (const child of children.flat()) {
		if (child === null || child === undefined || child === false) continue;
		parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
	}
}

/** Replaces everything inside `parent`. */
export function replace(parent: Node, ...children: (Child | Child[])[]): void {
	while (parent.firstChild) parent.removeChild(parent.firstChild);
	append(parent, children);
}

/** A unique id for label/for and aria-describedby pairs. */
let serial = 0;
export const uid = (base: string) => `${base}-${++serial}`;

/** How a modal dialog opens and is dismissed: focus starts on `focus`; `cancel` (a button) and Esc answer `cancelled`. */
export interface ModalOptions<T> {
	focus: HTMLElement;
	cancel: HTMLElement;
	cancelled: T;
}

/**
 * Shows `dialog` as a modal (Tab stays inside) until `cancel`, Esc or the `close` that `wire` is given
 * answers; then removes it, gives focus back to where it was, and resolves to the answer.
 */
export function modal<T>(dialog: HTMLDialogElement, { focus, cancel, cancelled }: ModalOptions<T>, wire: (close: (answer: T) => void) => void): Promise<T> {
	return new Promise((resolve) => {
		const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
		const close = (answer: T) => {
			dialog.close();
			dialog.remove();
			before?.focus();
			resolve(answer);
		};
		cancel.addEventListener('click', () => close(cancelled));
		// Esc: the dialog's own cancel would close it without an answer; it is the Cancel button's instead.
		dialog.addEventListener('cancel', (event) => {
			event.preventDefault();
			close(cancelled);
		});
		wire(close);
		document.body.append(dialog);
		dialog.showModal();
		focus.focus();
	});
}

/** A time as the browser's locale shows it, with the ISO form in a <time> element. */
export function time(iso: string | undefined | null): HTMLElement | string {
	if (!iso) return '—';
	const date = new Date(iso);
	if (Number.isNaN(date.getTime())) return iso;
	return h('time', { datetime: iso, title: iso }, relative(date));
}

function relative(date: Date): string {
	const seconds = Math.round((Date.now() - date.getTime()) / 1000);
	if (seconds < 5) return 'just now';
	if (seconds < 60) return `${seconds} s ago`;
	if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
	if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
	return date.toLocaleString();
}

/** A run's status as a badge: a word and a symbol, so that it never relies on colour alone. */
export function statusBadge(status: string): HTMLElement {
	const symbol = status === 'success' ? '✓' : status === 'queued' || status === 'running' ? '…' : '✗';
	return h('span', { class: `badge badge-${status.replace(/[^a-z]/g, '')}` }, h('span', { 'aria-hidden': 'true' }, symbol), ` ${status}`);
}

/*
 * Text from the API is shown whole up to these bounds, then cut: a function's 6 MB output pretty-printed
 * (a 2-million-element array is 2 million lines) or a huge log in a <pre> freezes the tab in layout.
 */
export const MAX_SHOWN_CHARS = 1_000_000;
export const MAX_SHOWN_LINES = 20_000;

/** `text` within the bounds, kept from its start (an output) or its end (a log's tail); `cut` says it was cut. */
export function clip(text: string, keep: 'start' | 'end' = 'start'): { text: string; cut: boolean } {
	if (keep === 'start') {
		let end = Math.min(text.length, MAX_SHOWN_CHARS);
		let lines = 0;
		for (let at = text.indexOf('\n'); at !== -1 && at < end; at = text.indexOf('\n', at + 1)) if (++lines >= MAX_SHOWN_LINES) end = at + 1;
		return { text: text.slice(0, end), cut: end < text.length };
	}
	let start = Math.max(0, text.length - MAX_SHOWN_CHARS);
	let lines = 0;
	// The last line's own newline does not count: the tail keeps MAX_SHOWN_LINES whole lines.
	for (let at = text.lastIndexOf('\n', text.length - 2); at !== -1 && at >= start; at = at > 0 ? text.lastIndexOf('\n', at - 1) : -1) if (++lines >= MAX_SHOWN_LINES) start = at + 1;
	return { text: text.slice(start), cut: start > 0 };
}
