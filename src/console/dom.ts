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
