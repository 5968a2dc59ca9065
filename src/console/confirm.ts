import { h, modal } from './dom.js';

/**
 * Asks a yes/no question in a modal <dialog>: focus moves into it (on Cancel, the safe answer), Tab
 * stays inside, Esc cancels, and focus returns to where it was. Resolves to true on confirm.
 */
export function confirmDialog(title: string, text: string, confirmLabel: string): Promise<boolean> {
	const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
	const confirm = h('button', { type: 'button', class: 'danger' }, confirmLabel);
	const dialog = h(
		'dialog',
		{ class: 'confirm-dialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
		h('h2', { id: 'confirm-title' }, title),
		h('p', { id: 'confirm-text' }, text),
		h('div', { class: 'actions' }, confirm, cancel),
	);
	return modal(dialog, { focus: cancel, cancel, cancelled: false }, (close) => confirm.addEventListener('click', () => close(true)));
}
