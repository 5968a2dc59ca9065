import { ApiError, type FunctionRecord, fnPath, json } from './api.js';
import { h, replace, uid } from './dom.js';
import { fnHash } from './frame.js';
import { announce, clearError, showError } from './notify.js';
import { type Language, TEMPLATES } from './templates.js';

/** #/new: a name and a language; the function starts as that language's template. */
export async function createView(root: HTMLElement): Promise<void> {
	const nameId = uid('name');
	const nameError = h('p', { id: `${nameId}-error`, class: 'error field-error' });
	const name = h('input', { id: nameId, name: 'name', required: true, maxlength: 64, pattern: '[A-Za-z0-9][A-Za-z0-9_\\-]*', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${nameId}-hint ${nameId}-error` });
	const radio = (language: Language, label: string, checked: boolean) => {
		const id = uid(`lang-${language}`);
		return h('div', { class: 'check' }, h('input', { id, type: 'radio', name: 'language', value: language, checked }), h('label', { for: id }, label));
	};
	const preview = h('pre', { class: 'code preview', tabindex: 0, 'aria-label': 'Template source' }, TEMPLATES.python);
	const form = h(
		'form',
		{ class: 'create-form', novalidate: true },
		h('label', { for: nameId }, 'Name'),
		name,
		h('p', { id: `${nameId}-hint`, class: 'hint' }, '1–64 characters of A–Z, a–z, 0–9, _ and -, starting with a letter or digit.'),
		nameError,
		h('fieldset', {}, h('legend', {}, 'Language and template'), radio('python', 'Python 3.11 (http.server)', true), radio('deno', 'Deno (Deno.serve, TypeScript)', false)),
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create function'), h('a', { href: '#/' }, 'Cancel')),
		h('h2', {}, 'The template'),
		preview,
	);
	const language = () => ((form.querySelector('input[name="language"]:checked') as HTMLInputElement | null)?.value ?? 'python') as Language;
	form.addEventListener('change', () => replace(preview, TEMPLATES[language()]));
	form.addEventListener('submit', async (event) => {
		event.preventDefault();
		clearError();
		replace(nameError);
		name.removeAttribute('aria-invalid');
		try {
			// POST /functions replaces an existing function: a new one must not overwrite one by accident.
			if (await exists(name.value.trim())) {
				replace(nameError, `A function named ${name.value.trim()} already exists: choose another name, or open it from the list.`);
				name.setAttribute('aria-invalid', 'true');
				name.focus();
				return;
			}
			const created = await json<FunctionRecord>('POST', '/functions', { name: name.value.trim(), language: language(), source_code: TEMPLATES[language()] });
			announce(`Created ${created.name}.`, true);
			location.hash = fnHash(created.name);
		} catch (err) {
			if (err instanceof ApiError && err.code === 'invalid_name') {
				replace(nameError, err.message);
				name.setAttribute('aria-invalid', 'true');
				name.focus();
			}
			showError(err);
		}
	});
	replace(root, h('h1', { tabindex: -1 }, 'New function'), form);
}

async function exists(name: string): Promise<boolean> {
	try {
		await json('GET', fnPath(name));
		return true;
	} catch (err) {
		if (err instanceof ApiError && (err.code === 'function_not_found' || err.code === 'invalid_name')) return false;
		throw err;
	}
}
