import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chartGeometry, chartSummary, formatDuration, median, niceCeiling } from '../../src/console/chart-data.js';

const chart = suite('duration chart geometry');

chart('nice ceilings are 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten, at or above the value', () => {
	assert.equal([0, 0.3, 1, 7, 11, 20, 21, 48, 54, 240, 251, 999, 1001].map(niceCeiling), [1, 0.3, 1, 8, 15, 20, 25, 50, 60, 250, 300, 1000, 1500]);
	fc.assert(
		fc.property(fc.double({ min: 1e-3, max: 1e9, noNaN: true }), (value) => {
			const nice = niceCeiling(value);
			const mantissa = nice / 10 ** Math.floor(Math.log10(nice) + 1e-9);
			return nice >= value * (1 - 1e-9) && nice <= value * 1.5 + 1e-9 && [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8].some((m) => Math.abs(m - mantissa) < 1e-9);
		}),
	);
});

chart('median of odd and even counts; durations formatted for people', () => {
	assert.is(median([]), 0);
	assert.is(median([5, 1, 3]), 3);
	assert.is(median([9, 12, 30, 48]), 21);
	assert.equal([0, 0.42, 7, 12.6, 999, 1500, 65_000].map(formatDuration), ['0 ms', '0.4 ms', '7 ms', '13 ms', '999 ms', '1.5 s', '65 s']);
});

chart('one bar per run, oldest on the left, heights to scale on a nice axis, failures counted', () => {
	const runs = [
		{ duration_ms: 12, status: 'success', started_at: '2026-01-01T00:00:00Z' },
		{ duration_ms: 48, status: 'failed' },
		{ duration_ms: 9, status: 'success' },
		{ duration_ms: 30, status: 'timeout' },
	];
	const g = chartGeometry(runs, 200, 100);
	assert.is(g.max, 50);
	assert.is(g.median, 21);
	assert.is(g.longest, 48);
	assert.is(g.failed, 2);
	assert.equal(
		g.bars.map((b) => b.failed),
		[false, true, false, true],
	);
	assert.is(g.bars[0]?.started_at, '2026-01-01T00:00:00Z');
	// One run is a bar, not a plot filled from side to side.
	const single = chartGeometry([{ duration_ms: 5, status: 'success' }], 320, 120);
	assert.ok((single.bars[0]?.width ?? 0) <= 24, `one bar is at most 24 px wide, not ${single.bars[0]?.width}`);
	const bottom = g.plot.y + g.plot.height;
	for (const [n, bar] of g.bars.entries()) {
		assert.ok(Math.abs(bar.y + bar.height - bottom) < 1e-9, 'bars stand on the axis');
		assert.ok(Math.abs(bar.height - ((runs[n]?.duration_ms ?? 0) / 50) * g.plot.height) < 1e-9, 'to scale');
		assert.ok(bar.x >= g.plot.x && bar.x + bar.width <= g.plot.x + g.plot.width + 1e-9, 'inside the plot');
		if (n > 0) assert.ok(bar.x > (g.bars[n - 1]?.x ?? 0) + (g.bars[n - 1]?.width ?? 0), 'left to right, not overlapping');
	}
	assert.equal(
		g.ticks.map((t) => t.label),
		['0 ms', '25 ms', '50 ms'],
	);
	assert.is(g.medianY, bottom - (21 / 50) * g.plot.height);
	assert.is(chartSummary(g), 'Durations of the last 4 runs: median 21 ms, max 48 ms, 2 failed');
});

chart('no runs, zero or bad durations, and a single run are drawn without NaN', () => {
	const empty = chartGeometry([]);
	assert.equal(empty.bars, []);
	assert.is(chartSummary(empty), 'No runs yet');
	assert.is(empty.medianY, undefined);
	const odd = chartGeometry([
		{ duration_ms: 0, status: 'success' },
		{ duration_ms: Number.NaN, status: 'failed' },
		{ duration_ms: -5, status: 'success' },
		{ duration_ms: 0.01, status: 'success' },
		{ duration_ms: 1000, status: 'success' },
	]);
	assert.ok(odd.bars.every((b) => [b.x, b.y, b.width, b.height].every(Number.isFinite)));
	assert.is(odd.bars[0]?.height, 0);
	assert.is(odd.bars[3]?.height, 1, 'a run that took any time shows at least a pixel');
	assert.is(chartSummary(chartGeometry([{ duration_ms: 5, status: 'success' }])), 'Durations of the last run: median 5 ms, max 5 ms, 0 failed');
});

chart('any runs, any size: every bar is finite and inside the chart (property)', () => {
	const run = fc.record({ duration_ms: fc.double({ min: 0, max: 1e7, noNaN: true }), status: fc.constantFrom('success', 'failed', 'timeout') });
	fc.assert(
		fc.property(fc.array(run, { maxLength: 200 }), fc.integer({ min: 60, max: 2000 }), fc.integer({ min: 40, max: 800 }), (runs, width, height) => {
			const g = chartGeometry(runs, width, height);
			return g.bars.length === runs.length && g.bars.every((b) => b.x >= 0 && b.y >= 0 && b.x + b.width <= width + 1 && b.y + b.height <= height && b.height >= 0) && g.max >= g.longest;
		}),
	);
});

chart.run();
