import { h, uid } from './dom.js';

/**
 * Stand-in for editor.ts (branch `editor`) with the same interface: a labelled textarea where Tab
 * indents (Esc, then Tab, leaves), Ctrl/Cmd+S saves and Ctrl/Cmd+Enter runs.
 */
export interface EditorOptions {
	id?: string;
	label: string;
	language: string;
	value: string;
	onSave?: () => void;
	onRun?: () => void;
	onChange?: (value: string) => void;
}

export interface Editor {
	element: HTMLElement;
	readonly value: string;
	setLanguage(language: string): void;
	focus(): void;
}

export function createEditor(options: EditorOptions): Editor {
	const id = options.id ?? uid('editor');
	const area = h('textarea', { id, class: 'code', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', wrap: 'off', rows: 20 });
	area.value = options.value;
	let escaped = false;
	area.addEventListener('keydown', (event) => {
		const mod = event.ctrlKey || event.metaKey;
		if (mod && event.key.toLowerCase() === 's') {
			event.preventDefault();
			options.onSave?.();
		} else if (mod && event.key === 'Enter') {
			event.preventDefault();
			options.onRun?.();
		} else if (event.key === 'Escape') escaped = true;
		else if (event.key === 'Tab' && !escaped && !event.shiftKey) {
			event.preventDefault();
			area.setRangeText('    ', area.selectionStart, area.selectionEnd, 'end');
			options.onChange?.(area.value);
		} else escaped = false;
	});
	area.addEventListener('input', () => options.onChange?.(area.value));
	const element = h('div', { class: 'editor' }, h('label', { for: id }, options.label), area);
	return {
		element,
		get value() {
			return area.value;
		},
		setLanguage() {},
		focus: () => area.focus(),
	};
}
