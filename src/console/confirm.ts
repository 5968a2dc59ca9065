import { h } from './dom.js';

/**
 * Asks a yes/no question in a modal <dialog>: focus moves into it (on Cancel, the safe answer), Tab
 * stays inside, Esc cancels, and focus returns to where it was. Resolves to true on confirm.
 */
export function confirmDialog(title: string, text: string, confirmLabel: string): Promise<boolean> {
	return new Promise((resolve) => {
		const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
		const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
		const confirm = h('button', { type: 'button', class: 'danger' }, confirmLabel);
		const dialog = h(
			'dialog',
			{ class: 'confirm-dialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
			h('h2', { id: 'confirm-title' }, title),
			h('p', { id: 'confirm-text' }, text),
			h('div', { class: 'actions' }, confirm, cancel),
		);
		const close = (answer: boolean) => {
			dialog.close();
			dialog.remove();
			before?.focus();
			resolve(answer);
		};
		confirm.addEventListener('click', () => close(true));
		cancel.addEventListener('click', () => close(false));
		dialog.addEventListener('cancel', (event) => {
			event.preventDefault();
			close(false);
		});
		document.body.append(dialog);
		dialog.showModal();
		cancel.focus();
	});
}
