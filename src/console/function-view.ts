import { ApiError, type FunctionRecord, type RunResult, fnPath, json } from './api.js';
import { h, replace, time, uid } from './dom.js';
import { createEditor } from './editor.js';
import { fnHash, functionFrame } from './frame.js';
import { announce, clearError, showError } from './notify.js';
import { renderResult } from './result.js';

const TIMEOUT_MAX = 300_000;

/** How long a background run is followed before the screen stops asking (it keeps running). */
const FOLLOW_MS = 10 * 60_000;

/** The input as typed: parsed JSON, or why it is not. Empty means "no input" (the function gets {}). */
function parseInput(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
	if (!text.trim()) return { ok: true, value: undefined };
	try {
		return { ok: true, value: JSON.parse(text) };
	} catch (err) {
		return { ok: false, message: err instanceof Error ? err.message : String(err) };
	}
}

/** #/functions/NAME: the source in the editor, the input panel, and the last result. */
export async function functionView(root: HTMLElement, name: string): Promise<void> {
	const fn = await json<FunctionRecord>('GET', fnPath(name));
	let saved = fn.source_code;
	let version = fn.version;
	let busy = false;

	const saveState = h('span', { class: 'save-state', id: 'save-state' });
	const editor = createEditor({
		id: 'source',
		label: `Source (${fn.language === 'python' ? 'Python' : 'Deno TypeScript'})`,
		language: fn.language,
		value: fn.source_code,
		onSave: () => void save(),
		onRun: () => void invoke(),
		onChange: () => showSaveState(),
	});
	const showSaveState = () => replace(saveState, editor.value === saved ? `Saved${version ? ` · version ${version}` : ''}` : 'Unsaved changes');
	showSaveState();

	const inputId = uid('input');
	const inputHint = uid('input-hint');
	const input = h('textarea', { id: inputId, class: 'code input-json', rows: 6, spellcheck: 'false', 'aria-describedby': inputHint });
	input.value = '{"name": "World"}';
	const inputMessage = h('p', { id: inputHint, class: 'hint', 'aria-live': 'polite' });
	const timeoutId = uid('timeout');
	const timeout = h('input', { id: timeoutId, type: 'number', min: 1, max: TIMEOUT_MAX, step: 1, inputmode: 'numeric', placeholder: String(fn.settings?.timeout_ms ?? 5000), 'aria-describedby': `${timeoutId}-hint` });
	const asyncId = uid('async');
	const background = h('input', { id: asyncId, type: 'checkbox' });
	const invokeButton = h('button', { type: 'submit' }, 'Invoke');
	const saveButton = h('button', { type: 'button' }, 'Save');
	const resultBox = h('div', { class: 'result-box', id: 'result' }, h('p', { class: 'hint' }, 'No run yet: Invoke shows its result here.'));

	const validate = () => {
		const parsed = parseInput(input.value);
		input.setAttribute('aria-invalid', String(!parsed.ok));
		replace(inputMessage, parsed.ok ? (parsed.value === undefined ? 'Empty: the function gets {}.' : 'Valid JSON.') : `Invalid JSON: ${parsed.message}`);
		inputMessage.classList.toggle('error', !parsed.ok);
		return parsed;
	};
	validate();
	input.addEventListener('input', validate);
	const runKeys = (event: KeyboardEvent) => {
		if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
			event.preventDefault();
			void invoke();
		}
	};
	input.addEventListener('keydown', runKeys);
	timeout.addEventListener('keydown', runKeys);
	saveButton.addEventListener('click', () => void save());

	async function save(): Promise<boolean> {
		clearError();
		try {
			const answer = await json<FunctionRecord>('POST', '/functions', { name, language: fn.language, source_code: editor.value });
			saved = answer.source_code ?? editor.value;
			version = answer.version;
			showSaveState();
			announce(`Saved ${name}${version ? ` as version ${version}` : ''}.`);
			return true;
		} catch (err) {
			showError(err);
			return false;
		}
	}

	async function invoke(): Promise<void> {
		if (busy) return;
		const parsed = validate();
		if (!parsed.ok) {
			input.focus();
			showError(new Error(`The input is not valid JSON: ${parsed.message}`));
			return;
		}
		const body: { input?: unknown; timeout_ms?: number } = {};
		if (parsed.value !== undefined) body.input = parsed.value;
		if (timeout.value) body.timeout_ms = Number(timeout.value);
		busy = true;
		invokeButton.disabled = true;
		clearError();
		try {
			// Invoke runs what is saved: unsaved edits are saved first.
			if (editor.value !== saved && !(await save())) return;
			replace(resultBox, h('p', { class: 'hint' }, 'Running…'));
			announce('Running…');
			let run: RunResult;
			if (background.checked) {
				const queued = await json<{ run_id: string }>('POST', `${fnPath(name)}/invoke?async=true`, body);
				replace(resultBox, h('p', { class: 'hint' }, `Queued as run ${queued.run_id}; waiting for it to finish…`));
				run = await follow(queued.run_id);
			} else run = await json<RunResult>('POST', `${fnPath(name)}/invoke`, body);
			replace(resultBox, renderResult(run));
			announce(`Run ${run.status}${run.http_status_code ? `, HTTP ${run.http_status_code}` : ''}${run.duration_ms !== undefined ? `, ${run.duration_ms} ms` : ''}.`);
		} catch (err) {
			replace(resultBox, h('p', { class: 'hint' }, 'The run could not be made: see the message above.'));
			showError(err);
		} finally {
			busy = false;
			invokeButton.disabled = false;
		}
	}

	const form = h(
		'form',
		{ class: 'invoke-form', 'aria-labelledby': 'input-title' },
		h('h2', { id: 'input-title' }, 'Input'),
		h('label', { for: inputId }, 'Input (JSON)'),
		input,
		inputMessage,
		h('label', { for: timeoutId }, 'Timeout (ms)'),
		timeout,
		h('p', { class: 'hint', id: `${timeoutId}-hint` }, `1 to ${TIMEOUT_MAX}; empty uses the function's setting, else 5000.`),
		h('div', { class: 'check' }, background, h('label', { for: asyncId }, 'Run in the background (async): follow it in History')),
		h('div', { class: 'actions' }, invokeButton, h('span', { class: 'hint' }, h('kbd', {}, 'Ctrl'), '+', h('kbd', {}, 'Enter'))),
	);
	form.addEventListener('submit', (event) => {
		event.preventDefault();
		void invoke();
	});

	replace(
		root,
		functionFrame(
			name,
			'code',
			h(
				'div',
				{ class: 'workbench' },
				h(
					'section',
					{ class: 'panel source-panel', 'aria-labelledby': 'source-title' },
					h('h2', { id: 'source-title' }, 'Source'),
					h('p', { class: 'hint fn-meta' }, fn.language === 'python' ? 'Python' : 'Deno', ' · created ', time(fn.created_at), ' · id ', h('code', {}, fn.id ?? '—'), ' · ', settingsSummary(fn)),
					editor.element,
					h('div', { class: 'actions' }, saveButton, saveState),
				),
				h('div', { class: 'panel run-panel' }, form, h('section', { 'aria-labelledby': 'result-title' }, h('h2', { id: 'result-title' }, 'Result'), resultBox)),
			),
		),
	);
}

/** Polls a background run until it is done. */
async function follow(runId: string): Promise<RunResult> {
	const until = Date.now() + FOLLOW_MS;
	for (let delay = 200; Date.now() < until; delay = Math.min(delay * 1.5, 2000)) {
		const run = await json<RunResult>('GET', `/runs/${encodeURIComponent(runId)}`);
		if (run.status !== 'queued' && run.status !== 'running') return run;
		await new Promise((resolve) => setTimeout(resolve, delay));
	}
	throw new ApiError(0, 'still_running', `Run ${runId} is still running; see History.`);
}

/** The settings that are set, in a few words, linking to the settings screen. */
function settingsSummary(fn: FunctionRecord): HTMLElement {
	const set = Object.entries(fn.settings ?? {}).map(([key, value]) => (key === 'env' ? `env ${Array.isArray(value) ? value.join(', ') : Object.keys(value as object).join(', ')}` : `${key} ${value}`));
	return h('a', { href: fnHash(fn.name, '/settings') }, set.length ? `settings: ${set.join('; ')}` : 'default settings');
}
