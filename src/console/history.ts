import { type RunResult, fnPath, json } from './api.js';
import { durationChart } from './chart.js';
import { h, replace, statusBadge, time } from './dom.js';
import { functionFrame } from './frame.js';
import { clearError, showError } from './notify.js';
import { renderResult } from './result.js';

const LIMIT = 50;

function runItem(run: RunResult): HTMLElement {
	const summary = h(
		'summary',
		{},
		statusBadge(run.status),
		' ',
		time(run.created_at),
		h(
			'span',
			{ class: 'run-meta' },
			run.duration_ms === undefined ? '' : ` · ${run.duration_ms} ms`,
			run.cold_start ? ' · cold start' : '',
			run.version === undefined ? '' : ` · version ${run.version}`,
			run.http_status_code ? ` · HTTP ${run.http_status_code}` : '',
		),
	);
	return h('li', {}, h('details', { class: 'run', 'data-run-id': run.run_id }, summary, renderResult(run)));
}

/** #/functions/NAME/history: the chart of recent durations and each recent run with its details. */
export async function historyView(root: HTMLElement, name: string): Promise<void> {
	const list = h('div', { id: 'runs' });
	const chartBox = h('div', { class: 'chart-box' });
	const refresh = h('button', { type: 'button' }, 'Refresh');
	const load = async () => {
		clearError();
		try {
			const runs = await json<RunResult[]>('GET', `/runs?function=${encodeURIComponent(name)}&limit=${LIMIT}`);
			const finished = runs.filter((run) => run.duration_ms !== undefined) as (RunResult & { duration_ms: number })[];
			replace(chartBox, finished.length ? chartOf(finished) : h('p', { class: 'hint' }, 'No finished run to chart yet.'));
			replace(list, runs.length ? h('ol', { class: 'runs' }, ...runs.map(runItem)) : h('p', {}, 'No runs yet.'));
		} catch (err) {
			showError(err);
		}
	};
	refresh.addEventListener('click', () => void load());
	// The function must exist: a link to any name would otherwise show that name as a function's screen.
	await json('GET', fnPath(name));
	await load();
	replace(
		root,
		functionFrame(
			name,
			'history',
			h('section', { 'aria-labelledby': 'chart-title', class: 'panel' }, h('h2', { id: 'chart-title' }, 'Recent durations'), chartBox),
			h('section', { 'aria-labelledby': 'runs-title', class: 'panel' }, h('div', { class: 'section-head' }, h('h2', { id: 'runs-title' }, `Last ${LIMIT} runs, newest first`), refresh), list),
		),
	);
}

/** The finished runs' durations, oldest on the left; a failed run is hatched and marked (chart.ts). */
function chartOf(runs: (RunResult & { duration_ms: number })[]): Element {
	const points = runs.map((run) => ({ duration_ms: run.duration_ms, status: run.status, ...(run.created_at ? { started_at: run.created_at } : {}) })).reverse();
	return durationChart(points, { width: 640, height: 160 });
}
