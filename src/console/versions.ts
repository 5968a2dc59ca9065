import { type FunctionRecord, type VersionMeta, type VersionRecord, fnPath, json } from './api.js';
import { diffLines } from './diff.js';
import { MAX_SHOWN_LINES, h, replace, time } from './dom.js';
import { functionFrame } from './frame.js';
import { announce, clearError, showError } from './notify.js';

/** A unified view of the change from `before` to `after`: each line marked by a sign, not by colour alone. */
function renderDiff(before: string, after: string): HTMLElement {
	const lines = diffLines(before, after);
	const added = lines.filter((line) => line.op === 'add').length;
	const removed = lines.filter((line) => line.op === 'del').length;
	return h(
		'div',
		{ class: 'diff-box' },
		h('p', { class: 'hint' }, added || removed ? `${removed} line${removed === 1 ? '' : 's'} removed, ${added} added, going from this version to the current one.` : 'Identical to the current source.'),
		h(
			'pre',
			{ class: 'lf-diff', id: 'diff', tabindex: 0, 'aria-label': 'Differences: lines marked − are only in this version, lines marked + only in the current one' },
			// A line each: two huge sources (1 MB of short lines) make millions of them, which freeze the tab.
			...lines.slice(0, MAX_SHOWN_LINES).map((line) => h('span', { class: `lf-diff-line lf-diff-${line.op}` }, `${line.text}\n`)),
		),
		lines.length > MAX_SHOWN_LINES ? h('p', { class: 'hint diff-cut' }, `Cut here: the page shows the first ${MAX_SHOWN_LINES} of the diff's ${lines.length} lines.`) : null,
	);
}

/** #/functions/NAME/versions: the kept versions, newest first; each one's diff against the current source, and Rollback. */
export async function versionsView(root: HTMLElement, name: string): Promise<void> {
	const [fn, versions] = await Promise.all([json<FunctionRecord>('GET', fnPath(name)), json<VersionMeta[]>('GET', `${fnPath(name)}/versions`)]);
	const detail = h('div', { id: 'version-detail', 'aria-live': 'polite' });

	const show = async (meta: VersionMeta, button: HTMLButtonElement) => {
		clearError();
		try {
			const version = await json<VersionRecord>('GET', `${fnPath(name)}/versions/${meta.version}`);
			const rollback = h('button', { type: 'button' }, `Roll back to version ${meta.version}`);
			rollback.addEventListener('click', async () => {
				clearError();
				try {
					const now = await json<FunctionRecord>('POST', `${fnPath(name)}/rollback`, { version: meta.version });
					announce(`Rolled ${name} back to version ${meta.version}${now.version ? `: it is now version ${now.version}` : ''}.`);
					await versionsView(root, name);
					root.querySelector<HTMLElement>('h1')?.focus();
				} catch (err) {
					showError(err);
				}
			});
			replace(
				detail,
				h(
					'section',
					{ class: 'panel', 'aria-labelledby': 'diff-title' },
					h('h2', { id: 'diff-title', tabindex: -1 }, `Version ${meta.version} against the current source`),
					meta.current ? h('p', {}, 'This is the current version.') : h('div', { class: 'actions' }, rollback, h('span', { class: 'hint' }, 'Rolling back makes it current as a new version; history is never rewritten.')),
					renderDiff(version.source_code, fn.source_code),
				),
			);
			for (const other of root.querySelectorAll('button[aria-pressed]')) other.setAttribute('aria-pressed', String(other === button));
			detail.querySelector<HTMLElement>('h2')?.focus();
		} catch (err) {
			showError(err);
		}
	};

	const rows = versions.map((meta) => {
		const button = h('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false' }, `Compare version ${meta.version}`);
		button.addEventListener('click', () => void show(meta, button));
		return h(
			'tr',
			{},
			h('th', { scope: 'row' }, String(meta.version), meta.current ? h('span', { class: 'tag' }, ' current') : null),
			h('td', {}, time(meta.created_at)),
			h('td', { class: 'num' }, `${meta.size} B`),
			h('td', {}, meta.language === 'python' ? 'Python' : 'Deno'),
			h('td', {}, button),
		);
	});
	replace(
		root,
		functionFrame(
			name,
			'versions',
			h(
				'section',
				{ class: 'panel', 'aria-labelledby': 'versions-title' },
				h('h2', { id: 'versions-title' }, 'Versions, newest first'),
				versions.length
					? h(
							'div',
							{ class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Table of versions' },
							h('table', { id: 'version-table' }, h('thead', {}, h('tr', {}, ...['Version', 'Saved', 'Size', 'Language', 'Diff'].map((title) => h('th', { scope: 'col' }, title)))), h('tbody', {}, ...rows)),
						)
					: h('p', {}, 'No versions kept yet.'),
			),
			detail,
		),
	);
}
