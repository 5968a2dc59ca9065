import { type FunctionMeta, type RunResult, call, json } from './api.js';
import { h, replace, statusBadge, time, uid } from './dom.js';
import { fnHash } from './frame.js';
import { showError } from './notify.js';

/** At most this many functions are read, page by page (the API's pages hold up to 1000). */
const MAX_PAGES = 10;

/** Every function, following the list's `Link: <…>; rel="next"` pages. */
async function allFunctions(): Promise<FunctionMeta[]> {
	const all: FunctionMeta[] = [];
	let path: string | null = '/functions?limit=1000';
	for (let page = 0; path && page < MAX_PAGES; page++) {
		const answer = await call('GET', path);
		all.push(...(JSON.parse(answer.text) as FunctionMeta[]));
		const next = /<([^>]+)>;\s*rel="next"/.exec(answer.headers.get('link') ?? '');
		path = next?.[1]?.startsWith('/functions?') ? next[1] : null;
	}
	return all;
}

interface Counts {
	total: number;
	failed: number;
}

/** Invocations by function and status since the platform started, from GET /metrics. */
async function invocationCounts(): Promise<Map<string, Counts>> {
	const counts = new Map<string, Counts>();
	const { text } = await call('GET', '/metrics');
	for (const line of text.split('\n')) {
		const match = /^lowcode_faas_invocations_total\{function="((?:[^"\\]|\\.)*)",status="(\w+)"\} (\d+)/.exec(line);
		if (!match) continue;
		const [, fn = '', status, value] = match;
		const entry = counts.get(fn) ?? { total: 0, failed: 0 };
		entry.total += Number(value);
		if (status !== 'success') entry.failed += Number(value);
		counts.set(fn, entry);
	}
	return counts;
}

/** The newest recorded run of each function, from the last 1000 runs across all functions. */
async function lastRuns(): Promise<Map<string, RunResult>> {
	const last = new Map<string, RunResult>();
	for (const run of await json<RunResult[]>('GET', '/runs?limit=1000')) if (run.function && !last.has(run.function)) last.set(run.function, run);
	return last;
}

/** #/: the functions, filterable by name or language. */
export async function listView(root: HTMLElement): Promise<void> {
	// The figures are a bonus: the list still shows when they cannot be read.
	const shown =
		<T>(fallback: T) =>
		(err: unknown): T => {
			showError(err);
			return fallback;
		};
	const [functions, counts, last] = await Promise.all([allFunctions(), invocationCounts().catch(shown(new Map<string, Counts>())), lastRuns().catch(shown(new Map<string, RunResult>()))]);
	const filterId = uid('filter');
	const filter = h('input', { id: filterId, type: 'search', autocomplete: 'off', 'aria-controls': functions.length ? 'function-table' : null, 'aria-describedby': 'filter-count' });
	const count = h('p', { id: 'filter-count', class: 'hint', 'aria-live': 'polite' });
	const rows = functions.map((fn) => {
		const run = last.get(fn.name);
		const c = counts.get(fn.name);
		const row = h(
			'tr',
			{},
			h('th', { scope: 'row' }, fn.error ? fn.name : h('a', { href: fnHash(fn.name) }, fn.name)),
			h('td', {}, fn.language === 'python' ? 'Python' : 'Deno'),
			h('td', { class: 'num' }, fn.version ?? '—'),
			h('td', {}, fn.error ? h('span', { class: 'error' }, fn.error.message) : run ? [statusBadge(run.status), ' ', time(run.finished_at ?? run.created_at)] : 'never run'),
			h('td', { class: 'num' }, c ? c.total : 0),
			h('td', { class: 'num' }, c?.total ? `${Math.round((100 * c.failed) / c.total)} %` : '—'),
		);
		return { row, text: `${fn.name} ${fn.language}`.toLowerCase() };
	});
	const applyFilter = () => {
		const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
		let shown = 0;
		for (const { row, text } of rows) {
			row.hidden = !words.every((word) => text.includes(word));
			if (!row.hidden) shown++;
		}
		replace(count, `${shown} of ${rows.length} function${rows.length === 1 ? '' : 's'} shown.`);
	};
	filter.addEventListener('input', applyFilter);
	applyFilter();
	replace(
		root,
		h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Functions'), h('a', { class: 'button', href: '#/new' }, 'New function')),
		h('div', { class: 'filter' }, h('label', { for: filterId }, 'Filter by name or language'), filter, count),
		rows.length
			? h(
					'div',
					{ class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Functions' },
					h(
						'table',
						{ id: 'function-table' },
						h('caption', { class: 'visually-hidden' }, 'Functions; invocations and error rate since the platform started'),
						h(
							'thead',
							{},
							h(
								'tr',
								{},
								...['Name', 'Language', 'Version', 'Last run', 'Invocations', 'Error rate'].map((title) => h('th', { scope: 'col', class: title === 'Version' || title === 'Invocations' || title === 'Error rate' ? 'num' : null }, title)),
							),
						),
						h('tbody', {}, ...rows.map(({ row }) => row)),
					),
				)
			: h('p', {}, 'No functions yet. ', h('a', { href: '#/new' }, 'Create one'), '.'),
		h('p', { class: 'hint' }, 'Invocations and error rate count since the platform started (GET /metrics); the last run is from the run history.'),
	);
}
