import { h, modal, uid } from './dom.js';

/**
 * The API token: asked for once when the API answers 401, kept in sessionStorage only (gone when the
 * tab closes; never in a URL, a cookie or localStorage), sent as a Bearer header.
 */
const KEY = 'lowcode-faas-token';

export function storedToken(): string | null {
	return sessionStorage.getItem(KEY);
}

export function forgetToken(): void {
	sessionStorage.removeItem(KEY);
	document.dispatchEvent(new CustomEvent('token-change'));
}

let pending: Promise<string | null> | null = null;

/**
 * Asks for the token in a modal form; resolves to it, or null when the person cancels. Concurrent
 * 401s share one prompt. `refused` says the token just sent was wrong.
 */
export function askToken(refused: boolean): Promise<string | null> {
	pending ??= promptToken(refused).finally(() => (pending = null));
	return pending;
}

function promptToken(refused: boolean): Promise<string | null> {
	const inputId = uid('token');
	const hintId = uid('token-hint');
	const input = h('input', { id: inputId, name: 'token', type: 'password', autocomplete: 'current-password', required: true, 'aria-describedby': hintId, spellcheck: 'false' });
	const message = h('p', { class: 'error', role: 'alert', id: 'token-error' }, refused ? 'Wrong token: the server refused it. Try again.' : '');
	const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
	const form = h(
		'form',
		{ method: 'dialog', class: 'token-form' },
		h('h2', { id: 'token-title' }, 'This server needs a token'),
		h('p', { id: hintId }, 'The token is kept in this tab only (sessionStorage) and sent as a Bearer header. It is the value of LOWCODE_FAAS_TOKEN or of the token file.'),
		h('label', { for: inputId }, 'API token'),
		input,
		message,
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Use token'), cancel),
	);
	const dialog = h('dialog', { class: 'token-dialog', 'aria-labelledby': 'token-title' }, form);
	return modal<string | null>(dialog, { focus: input, cancel, cancelled: null }, (close) =>
		form.addEventListener('submit', (event) => {
			event.preventDefault();
			const token = input.value.trim();
			if (!token) return;
			sessionStorage.setItem(KEY, token);
			document.dispatchEvent(new CustomEvent('token-change'));
			close(token);
		}),
	);
}
