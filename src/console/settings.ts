import { ApiError, type FunctionRecord, type Settings, fnPath, json } from './api.js';
import { h, replace } from './dom.js';
import { functionFrame } from './frame.js';
import { announce, clearError, showError } from './notify.js';

type NumberField = 'timeout_ms' | 'memory_mb' | 'cpus' | 'max_replicas' | 'min_warm';

const FIELDS: [NumberField, string, string, string][] = [
	['timeout_ms', 'Timeout (ms)', '1', 'Default deadline of its invocations, 1 to 300000. Empty: 5000.'],
	['memory_mb', 'Memory (MiB)', '1', "Memory limit of its containers, from 16 to the operator's cap. Empty: the platform's default."],
	['cpus', 'CPUs', '0.01', "CPU limit of its containers, from 0.01 to the operator's cap. Empty: the platform's default."],
	['max_replicas', 'Max replicas', '1', "How many containers it may run at once, up to the operator's cap. Empty: the platform's default."],
	['min_warm', 'Min warm', '1', 'Containers kept warm even when idle, at most max replicas. Empty: none.'],
];

/** #/functions/NAME/settings: env as rows, the numeric settings, the API's validation message beside its field. */
export async function settingsView(root: HTMLElement, name: string): Promise<void> {
	const fn = await json<FunctionRecord>('GET', `${fnPath(name)}?show_env=true`);
	const settings: Settings = fn.settings ?? {};
	const errors = new Map<string, HTMLElement>();
	const inputs = new Map<NumberField, HTMLInputElement>();

	const errorBox = (field: string) => {
		const box = h('p', { id: `error-${field}`, class: 'error field-error' });
		errors.set(field, box);
		return box;
	};

	const rows = h('div', { class: 'env-rows' });
	let rowSerial = 0;
	const addRow = (key = '', value = '') => {
		const n = ++rowSerial;
		const keyInput = h('input', { id: `env-name-${n}`, class: 'env-name', autocomplete: 'off', spellcheck: 'false', value: key, 'aria-describedby': 'error-env' });
		const valueInput = h('input', { id: `env-value-${n}`, class: 'env-value', autocomplete: 'off', spellcheck: 'false', value: value, 'aria-describedby': 'error-env' });
		const remove = h('button', { type: 'button', class: 'secondary' }, 'Remove', h('span', { class: 'visually-hidden' }, ` variable ${n}`));
		const row = h('div', { class: 'env-row' }, h('div', { class: 'field' }, h('label', { for: keyInput.id }, `Name ${n}`), keyInput), h('div', { class: 'field' }, h('label', { for: valueInput.id }, `Value ${n}`), valueInput), remove);
		remove.addEventListener('click', () => {
			row.remove();
			addButton.focus();
		});
		rows.append(row);
		return keyInput;
	};
	const addButton = h('button', { type: 'button', class: 'secondary' }, 'Add variable');
	addButton.addEventListener('click', () => addRow().focus());
	const env = settings.env && !Array.isArray(settings.env) ? settings.env : {};
	for (const [key, value] of Object.entries(env)) addRow(key, value);

	const numberFields = FIELDS.map(([field, label, step, hint]) => {
		const id = `setting-${field}`;
		const value = settings[field];
		const input = h('input', { id, name: field, type: 'number', step, min: 0, inputmode: step === '1' ? 'numeric' : 'decimal', value: value ?? null, 'aria-describedby': `${id}-hint error-${field}` });
		inputs.set(field, input);
		return h('div', { class: 'field' }, h('label', { for: id }, label), input, h('p', { class: 'hint', id: `${id}-hint` }, hint), errorBox(field));
	});

	const form = h(
		'form',
		{ class: 'settings-form', novalidate: true },
		h(
			'fieldset',
			{ 'aria-describedby': 'env-hint error-env' },
			h('legend', {}, 'Environment variables'),
			h('p', { class: 'hint', id: 'env-hint' }, 'Passed to its containers; PORT is the platform’s. Changes apply from the next container on.'),
			rows,
			addButton,
			errorBox('env'),
		),
		...numberFields,
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save settings')),
	);
	form.addEventListener('submit', async (event) => {
		event.preventDefault();
		clearError();
		for (const box of errors.values()) replace(box);
		for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
		const patch: Record<string, unknown> = {};
		const envValue: Record<string, string> = {};
		for (const row of rows.querySelectorAll('.env-row')) {
			const key = (row.querySelector('.env-name') as HTMLInputElement).value.trim();
			const value = (row.querySelector('.env-value') as HTMLInputElement).value;
			if (key || value) envValue[key] = value;
		}
		patch.env = Object.keys(envValue).length ? envValue : null;
		for (const [field, input] of inputs) patch[field] = input.value.trim() === '' ? null : Number(input.value);
		try {
			await json<FunctionRecord>('PATCH', fnPath(name), patch);
			announce(`Saved the settings of ${name}; they apply from its next container.`);
		} catch (err) {
			const field = err instanceof ApiError ? /^invalid_(.+)$/.exec(err.code)?.[1] : undefined;
			const box = field ? errors.get(field) : undefined;
			if (box && err instanceof Error) {
				replace(box, err.message);
				const target = field === 'env' ? rows.querySelector('input') : inputs.get(field as NumberField);
				target?.setAttribute('aria-invalid', 'true');
				(target ?? addButton).focus();
			}
			showError(err);
		}
	});
	replace(root, functionFrame(name, 'settings', h('section', { class: 'panel', 'aria-labelledby': 'settings-title' }, h('h2', { id: 'settings-title' }, 'Settings'), form)));
}
