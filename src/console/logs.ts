import { ApiError, call, fnPath, json } from './api.js';
import { MAX_SHOWN_CHARS, MAX_SHOWN_LINES, clip, h, replace, uid } from './dom.js';
import { functionFrame } from './frame.js';
import { clearError, showError } from './notify.js';

/** #/functions/NAME/logs: what its containers printed, the last `tail` lines of each, refreshed on demand. */
export async function logsView(root: HTMLElement, name: string): Promise<void> {
	const tailId = uid('tail');
	const tail = h('input', { id: tailId, type: 'number', min: 1, max: 10000, step: 1, value: 200, inputmode: 'numeric', 'aria-describedby': `${tailId}-error` });
	const tailError = h('p', { id: `${tailId}-error`, class: 'error field-error' });
	const output = h('pre', { class: 'logs', id: 'logs', tabindex: 0, 'aria-label': `Logs of ${name}` });
	const stamp = h('p', { class: 'hint', 'aria-live': 'polite' });
	const load = async () => {
		clearError();
		replace(tailError);
		tail.removeAttribute('aria-invalid');
		try {
			const { text } = await call('GET', `${fnPath(name)}/logs?tail=${encodeURIComponent(tail.value || '200')}`);
			const shown = clip(text, 'end');
			replace(
				output,
				shown.cut ? `(the first lines are cut: the page shows at most the last ${MAX_SHOWN_LINES} lines or ${MAX_SHOWN_CHARS} characters)\n` : '',
				shown.text || '(nothing yet: logs show what the function printed since the platform started)',
			);
			replace(stamp, `Refreshed at ${new Date().toLocaleTimeString()}.`);
		} catch (err) {
			if (err instanceof ApiError && err.code === 'invalid_tail') {
				replace(tailError, err.message);
				tail.setAttribute('aria-invalid', 'true');
			}
			showError(err);
		}
	};
	const form = h('form', { class: 'inline-form' }, h('label', { for: tailId }, 'Lines per container'), tail, h('button', { type: 'submit' }, 'Refresh'), tailError);
	form.addEventListener('submit', (event) => {
		event.preventDefault();
		void load();
	});
	// The function must exist: a link to any name would otherwise show that name as a function's screen.
	await json('GET', fnPath(name));
	await load();
	replace(root, functionFrame(name, 'logs', h('section', { class: 'panel', 'aria-labelledby': 'logs-title' }, h('h2', { id: 'logs-title' }, 'Logs'), form, stamp, output)));
}
