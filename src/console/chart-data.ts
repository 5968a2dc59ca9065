/**
 * The geometry of the console's duration chart, apart from drawing it (chart.ts), so that it is
 * unit-tested in Node: one bar per run, oldest on the left, on a y axis rounded up to a "nice" value.
 */
export interface RunPoint {
	duration_ms: number;
	status: string;
	started_at?: string;
}

export interface Bar {
	x: number;
	y: number;
	width: number;
	height: number;
	duration_ms: number;
	status: string;
	/** Anything but a success: drawn differently, counted in the summary. */
	failed: boolean;
	started_at?: string;
}

export interface Tick {
	value: number;
	y: number;
	label: string;
}

export interface ChartGeometry {
	width: number;
	height: number;
	/** The area the bars are drawn in; the axis labels sit left of it. */
	plot: { x: number; y: number; width: number; height: number };
	bars: Bar[];
	/** The top of the y axis: the longest duration (at least 1 ms) rounded up to a nice value (niceCeiling). */
	max: number;
	median: number;
	/** Where the median line is drawn (y of the plot); absent without runs. */
	medianY?: number;
	longest: number;
	failed: number;
	ticks: Tick[];
}

export const CHART_WIDTH = 320;
export const CHART_HEIGHT = 120;

// Room for the y labels on the left and a little air on the other sides.
const MARGIN = { left: 50, right: 6, top: 8, bottom: 8 };

/** The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k that is ≥ value (1 for nothing): the bars fill most of the height, and half of it is a round number too. */
export function niceCeiling(value: number): number {
	if (!(value > 0) || !Number.isFinite(value)) return 1;
	const power = 10 ** Math.floor(Math.log10(value));
	// Below about 1e-308 the power underflows to 0.
	if (!(power > 0)) return 1;
	for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
		// The tolerance absorbs floating point (0.3 / 0.1 is 2.9999…).
		// Rounded to 12 digits: 3 × 0.1 is 0.30000000000000004, and the label would say so.
		if (step * power >= value * (1 - 1e-12)) return Number((step * power).toPrecision(12));
	}
	return 10 * power;
}

export function median(values: readonly number[]): number {
	if (values.length === 0) return 0;
	const sorted = [...values].sort((a, b) => a - b);
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** A duration for people: "0.4 ms", "12 ms", "1.5 s". */
export function formatDuration(ms: number): string {
	if (ms >= 1000) return `${Number((ms / 1000).toFixed(ms >= 10_000 ? 0 : 1))} s`;
	if (ms < 10 && ms !== Math.round(ms)) return `${Number(ms.toFixed(1))} ms`;
	return `${Math.round(ms)} ms`;
}

/** A duration that is not a finite, non-negative number counts as 0 (a run that never got one). */
function cleanDuration(value: number): number {
	return Number.isFinite(value) && value > 0 ? value : 0;
}

const MAX_BAR = 24;

export function chartGeometry(runs: readonly RunPoint[], width = CHART_WIDTH, height = CHART_HEIGHT): ChartGeometry {
	const plot = {
		x: MARGIN.left,
		y: MARGIN.top,
		width: Math.max(1, width - MARGIN.left - MARGIN.right),
		height: Math.max(1, height - MARGIN.top - MARGIN.bottom),
	};
	const durations = runs.map((run) => cleanDuration(run.duration_ms));
	const longest = durations.reduce((a, b) => Math.max(a, b), 0);
	// Never below 1 ms: sub-millisecond runs are drawn short on a readable axis, not magnified to noise.
	const max = niceCeiling(Math.max(1, longest));
	const mid = median(durations);
	const slot = runs.length ? plot.width / runs.length : plot.width;
	// Gaps of a quarter slot between bars, but a bar is never thinner than a pixel, nor wider than
	// MAX_BAR: one or two runs read as bars, not as a filled plot.
	const barWidth = Math.min(MAX_BAR, Math.max(1, slot * 0.75));
	const scale = (value: number) => (value / max) * plot.height;
	const bars = runs.map((run, n): Bar => {
		const duration = durations[n] as number;
		// A run that took any time at all stays visible as at least one pixel.
		const barHeight = duration > 0 ? Math.max(1, scale(duration)) : 0;
		const bar: Bar = {
			x: plot.x + n * slot + (slot - barWidth) / 2,
			y: plot.y + plot.height - barHeight,
			width: barWidth,
			height: barHeight,
			duration_ms: duration,
			status: run.status,
			failed: run.status !== 'success',
		};
		if (run.started_at !== undefined) bar.started_at = run.started_at;
		return bar;
	});
	const ticks = [0, max / 2, max].map((value) => ({ value, y: plot.y + plot.height - scale(value), label: formatDuration(value) }));
	const geometry: ChartGeometry = { width, height, plot, bars, max, median: mid, longest, failed: bars.filter((bar) => bar.failed).length, ticks };
	if (runs.length) geometry.medianY = plot.y + plot.height - scale(mid);
	return geometry;
}

/** What a screen reader hears for the whole chart. */
export function chartSummary(geometry: ChartGeometry): string {
	const count = geometry.bars.length;
	if (count === 0) return 'No runs yet';
	const runs = count === 1 ? 'the last run' : `the last ${count} runs`;
	return `Durations of ${runs}: median ${formatDuration(geometry.median)}, max ${formatDuration(geometry.longest)}, ${geometry.failed} failed`;
}
