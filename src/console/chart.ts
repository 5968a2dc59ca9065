import { type Bar, type RunPoint, chartGeometry, chartSummary, formatDuration } from './chart-data.js';

/**
 * A small SVG bar chart of recent run durations, drawn with createElementNS (no markup strings, no
 * inline styles: the classes are styled by components.css). Failed runs differ by colour, by a hatch
 * and by a cross above the bar, so colour is never the only sign. The SVG is one image to assistive
 * technology (role="img" and a summary); each bar still carries a <title> shown on hover.
 */
const SVG = 'http://www.w3.org/2000/svg';

type Attributes = Record<string, string | number>;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Attributes, className?: string): SVGElementTagNameMap[K] {
	const node = document.createElementNS(SVG, tag);
	for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
	if (className) node.setAttribute('class', className);
	return node;
}

// Pattern ids must be unique in the document: several charts may share a page.
let charts = 0;

function hatch(id: string): SVGPatternElement {
	const pattern = svg('pattern', { id, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
	pattern.append(svg('rect', { width: 6, height: 6 }, 'lf-chart-hatch-bg'), svg('line', { x1: 0, y1: 0, x2: 0, y2: 6 }, 'lf-chart-hatch-line'));
	return pattern;
}

function barTitle(bar: Bar): string {
	const when = bar.started_at ? `, ${bar.started_at}` : '';
	return `${formatDuration(bar.duration_ms)}, ${bar.status}${when}`;
}

function drawBar(bar: Bar, hatchId: string): SVGGElement {
	const group = svg('g', {}, `lf-chart-bar ${bar.failed ? 'lf-chart-bar-failed' : 'lf-chart-bar-ok'}`);
	const title = svg('title', {});
	title.textContent = barTitle(bar);
	group.append(title);
	const rect = svg('rect', { x: bar.x, y: bar.y, width: bar.width, height: bar.height }, 'lf-chart-rect');
	// A presentation attribute, not a style attribute: the CSP's style-src does not govern it.
	if (bar.failed) rect.setAttribute('fill', `url(#${hatchId})`);
	group.append(rect);
	if (bar.failed) {
		// A small × above the bar: the mark that survives greyscale and colour blindness.
		const cx = bar.x + bar.width / 2;
		const size = Math.min(3, Math.max(1.5, bar.width / 2));
		const top = bar.y - size - 2;
		group.append(svg('path', { d: `M${cx - size} ${top - size}L${cx + size} ${top + size}M${cx + size} ${top - size}L${cx - size} ${top + size}` }, 'lf-chart-mark'));
	}
	return group;
}

export function durationChart(runs: readonly RunPoint[], options: { width?: number; height?: number } = {}): SVGSVGElement {
	const geometry = chartGeometry(runs, options.width, options.height);
	const { width, height, plot } = geometry;
	const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': chartSummary(geometry) }, 'lf-chart');
	root.append(svg('rect', { x: 0.5, y: 0.5, width: width - 1, height: height - 1, rx: 3 }, 'lf-chart-frame'));
	if (geometry.bars.length === 0) {
		const text = svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', 'dominant-baseline': 'middle' }, 'lf-chart-empty');
		text.textContent = 'No runs yet';
		root.append(text);
		return root;
	}
	const hatchId = `lf-chart-hatch-${++charts}`;
	const defs = svg('defs', {});
	defs.append(hatch(hatchId));
	root.append(defs);
	for (const tick of geometry.ticks) {
		root.append(svg('line', { x1: plot.x, y1: tick.y, x2: plot.x + plot.width, y2: tick.y }, tick.value === 0 ? 'lf-chart-axis' : 'lf-chart-grid'));
		const label = svg('text', { x: plot.x - 4, y: tick.y, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, 'lf-chart-label');
		label.textContent = tick.label;
		root.append(label);
	}
	for (const bar of geometry.bars) root.append(drawBar(bar, hatchId));
	if (geometry.medianY !== undefined) {
		const line = svg('line', { x1: plot.x, y1: geometry.medianY, x2: plot.x + plot.width, y2: geometry.medianY }, 'lf-chart-median');
		const title = svg('title', {});
		title.textContent = `median ${formatDuration(geometry.median)}`;
		line.append(title);
		root.append(line);
	}
	return root;
}
