import { ApiError, FUNCTION_NAME } from './api.js';
import { createView } from './create.js';
import { h, replace } from './dom.js';
import { functionView } from './function-view.js';
import { historyView } from './history.js';
import { listView } from './list.js';
import { logsView } from './logs.js';
import { clearError, clearStaleStatus, showError } from './notify.js';
import { settingsView } from './settings.js';
import { forgetToken, storedToken } from './token.js';
import { versionsView } from './versions.js';

/**
 * The console's entry: routes by the URL's hash (#/, #/new, #/functions/NAME[/history|logs|settings|versions]),
 * so that reload, back and links work, and keeps the "Forget token" button in step with sessionStorage.
 */
const app = document.getElementById('app') as HTMLElement;
// Screens go into #view, not #app itself: what else is mounted in <main> (a test's components) is left alone.
const view = document.getElementById('view') as HTMLElement;
const forget = document.getElementById('forget-token') as HTMLButtonElement;

type View = (root: HTMLElement, name: string) => Promise<void>;
const FUNCTION_VIEWS: Record<string, View> = { '': functionView, history: historyView, logs: logsView, settings: settingsView, versions: versionsView };

let generation = 0;

/** The hash's name as text; a malformed escape (any link can hold one) is no name at all. */
function decoded(part: string): string {
	try {
		return decodeURIComponent(part);
	} catch {
		return '';
	}
}

async function route(moveFocus: boolean): Promise<void> {
	const current = ++generation;
	const hash = location.hash || '#/';
	const root = h('div', { class: 'view' });
	clearError();
	clearStaleStatus();
	app.setAttribute('aria-busy', 'true');
	try {
		const match = /^#\/functions\/([^/]+)(?:\/(history|logs|settings|versions))?$/.exec(hash);
		if (hash === '#/' || hash === '#') await listView(root);
		else if (hash === '#/new') await createView(root);
		else if (match && FUNCTION_NAME.test(decoded(match[1]!))) await FUNCTION_VIEWS[match[2] ?? '']!(root, decoded(match[1]!));
		else replace(root, h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/' }, 'Back to the functions')));
	} catch (err) {
		if (current !== generation) return;
		const again = h('button', { type: 'button' }, 'Try again');
		again.addEventListener('click', () => void route(true));
		replace(
			root,
			h('h1', { tabindex: -1 }, err instanceof ApiError && err.status === 404 ? 'Not found' : 'Could not load this page'),
			h('p', {}, 'See the message above. ', h('a', { href: '#/' }, 'Back to the functions')),
			h('div', { class: 'actions' }, again),
		);
		showError(err);
	}
	if (current !== generation) return;
	replace(view, root);
	app.removeAttribute('aria-busy');
	const title = root.querySelector('h1')?.textContent ?? '';
	document.title = `${title} · lowcode-faas`;
	// After a navigation, focus goes to the new screen's heading, so keyboard and screen-reader users start there.
	if (moveFocus) root.querySelector<HTMLElement>('h1')?.focus();
	app.dataset.route = hash;
}

function showTokenState(): void {
	forget.hidden = storedToken() === null;
}

forget.addEventListener('click', () => {
	forgetToken();
	void route(true);
});
document.addEventListener('token-change', showTokenState);
// The skip link moves focus to the content without touching the hash (which is the route).
document.getElementById('skip')?.addEventListener('click', (event) => {
	event.preventDefault();
	(app.querySelector<HTMLElement>('h1') ?? app).focus();
});
window.addEventListener('hashchange', () => void route(true));
showTokenState();
// The scripts ran (the first screen may still wait for the API, or for a token).
app.dataset.ready = 'true';
void route(false);
