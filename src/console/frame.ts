import { call, fnPath } from './api.js';
import { confirmDialog } from './confirm.js';
import { h } from './dom.js';
import { announce, showError } from './notify.js';

export type Tab = 'code' | 'history' | 'logs' | 'settings' | 'versions';

const TABS: [Tab, string, string][] = [
	['code', 'Code & run', ''],
	['history', 'History', '/history'],
	['logs', 'Logs', '/logs'],
	['settings', 'Settings', '/settings'],
	['versions', 'Versions', '/versions'],
];

export const fnHash = (name: string, suffix = '') => `#/functions/${encodeURIComponent(name)}${suffix}`;

/** What every screen of one function shares: its name as the heading, the tabs, and Delete. */
export function functionFrame(name: string, active: Tab, ...content: Node[]): HTMLElement {
	const remove = h('button', { type: 'button', class: 'danger' }, 'Delete…');
	remove.addEventListener('click', async () => {
		const yes = await confirmDialog(`Delete ${name}?`, `This removes the function ${name}: its source, settings, versions and run history, and stops its containers. It cannot be undone.`, 'Delete function');
		if (!yes) return;
		try {
			await call('DELETE', fnPath(name));
			announce(`Deleted ${name}.`, true);
			location.hash = '#/';
		} catch (err) {
			showError(err);
		}
	});
	const label = TABS.find(([tab]) => tab === active)?.[1] ?? '';
	return h(
		'div',
		{ class: 'function' },
		h('div', { class: 'function-head' }, h('h1', { tabindex: -1 }, h('span', { class: 'visually-hidden' }, 'Function '), name, h('span', { class: 'visually-hidden' }, `: ${label}`)), remove),
		h(
			'nav',
			{ class: 'tabs', 'aria-label': `${name} sections` },
			h('ul', { class: 'nav-list' }, ...TABS.map(([tab, text, suffix]) => h('li', {}, h('a', { href: fnHash(name, suffix), 'aria-current': tab === active ? 'page' : null }, text)))),
		),
		...content,
	);
}
