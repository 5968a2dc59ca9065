import type { RunResult } from './api.js';
import { MAX_SHOWN_CHARS, MAX_SHOWN_LINES, clip, h, statusBadge, time } from './dom.js';

/** A run's output as text: JSON pretty-printed, a string as it is, never as markup. */
export function outputText(output: unknown): string {
	if (output === null || output === undefined) return '(empty)';
	if (typeof output === 'string') return output;
	return JSON.stringify(output, null, 2);
}

const yesNo = (value: boolean | undefined) => (value === undefined ? '—' : value ? 'yes' : 'no');

/** A RunResult, readably: status, HTTP status, duration, cold start, version, error, output, headers. */
export function renderResult(run: RunResult): HTMLElement {
	const facts: [string, Node | string][] = [
		['Status', statusBadge(run.status)],
		['HTTP status', run.http_status_code === null || run.http_status_code === undefined ? 'none (no answer)' : String(run.http_status_code)],
		['Duration', run.duration_ms === undefined ? '—' : `${run.duration_ms} ms`],
		['Cold start', yesNo(run.cold_start)],
		['Version', run.version === undefined ? '—' : String(run.version)],
		['Run id', h('code', {}, run.run_id)],
	];
	if (run.created_at) facts.push(['Started', time(run.created_at)]);
	if (run.finished_at) facts.push(['Finished', time(run.finished_at)]);
	const headers = Object.entries(run.http_headers ?? {});
	const output = clip(outputText(run.output));
	return h(
		'div',
		{ class: 'result', 'data-status': run.status },
		h('dl', { class: 'facts' }, ...facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
		run.error_message ? h('p', { class: 'run-error' }, h('strong', {}, 'Error: '), run.error_message) : null,
		h('h3', { class: 'small-heading' }, 'Output', run.output_truncated ? ' (truncated in history)' : ''),
		h('pre', { class: 'output', tabindex: 0, 'aria-label': 'Output' }, output.text),
		output.cut ? h('p', { class: 'hint output-cut' }, `Cut here: the page shows at most ${MAX_SHOWN_LINES} lines or ${MAX_SHOWN_CHARS} characters of an output.`) : null,
		h(
			'details',
			{ class: 'headers' },
			h('summary', {}, `Response headers (${headers.length})`),
			headers.length ? h('dl', { class: 'header-list' }, ...headers.map(([name, value]) => [h('dt', {}, name), h('dd', {}, Array.isArray(value) ? value.join(', ') : value)])) : h('p', {}, 'None.'),
		),
	);
}
