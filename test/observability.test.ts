import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PythonImage } from '../src/config.js';
import { type Platform, deploy, eventually, startPlatform } from './helpers.js';

interface Sample {
	name: string;
	labels: Record<string, string>;
	value: number;
}

/**
 * A strict reader of the Prometheus text format (0.0.4): every line must be a HELP, a TYPE or a
 * sample; names and labels must be well formed; a family's TYPE comes before its samples, which are
 * contiguous; histogram buckets are cumulative and end with +Inf equal to _count.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
	assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
	const types = new Map<string, string>();
	const samples: Sample[] = [];
	const finished = new Set<string>();
	let current = '';
	const familyOf = (name: string) => {
		for (const suffix of ['_bucket', '_sum', '_count']) {
			const base = name.slice(0, -suffix.length);
			if (name.endsWith(suffix) && types.get(base) === 'histogram') return base;
		}
		return name;
	};
	for (const line of text.slice(0, -1).split('\n')) {
		const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
		if (meta) {
			if (meta[1] === 'TYPE') {
				assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]!), `type of ${meta[2]}`);
				assert.not.ok(types.has(meta[2]!), `one TYPE for ${meta[2]}`);
				types.set(meta[2]!, meta[3]!);
			}
			continue;
		}
		const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)( -?\d+)?$/.exec(line);
		assert.ok(sample, `a well-formed sample: ${JSON.stringify(line)}`);
		const labels: Record<string, string> = {};
		if (sample![3]) {
			const body = sample![3];
			const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
			let at = 0;
			while (at < body.length) {
				pair.lastIndex = at;
				const m = pair.exec(body);
				assert.ok(m, `well-formed labels: ${body}`);
				assert.not.ok(m![1]! in labels, `no repeated label in ${line}`);
				labels[m![1]!] = m![2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
				at = pair.lastIndex;
			}
		}
		const family = familyOf(sample![1]!);
		assert.ok(types.has(family), `TYPE before the samples of ${family}`);
		if (family !== current) {
			assert.not.ok(finished.has(family), `the samples of ${family} are contiguous`);
			if (current) finished.add(current);
			current = family;
		}
		const value = Number(sample![4]!.replace('+Inf', 'Infinity').replace('-Inf', '-Infinity'));
		assert.ok(!Number.isNaN(value) || sample![4] === 'NaN', `a number: ${line}`);
		samples.push({ name: sample![1]!, labels, value });
	}
	for (const [family, type] of types) {
		if (type !== 'histogram') continue;
		const series = new Map<string, Sample[]>();
		for (const s of samples.filter((s) => s.name === `${family}_bucket`)) {
			const { le, ...rest } = s.labels;
			assert.ok(le !== undefined, 'a bucket has le');
			const key = JSON.stringify(rest);
			series.set(key, [...(series.get(key) ?? []), s]);
		}
		for (const [key, buckets] of series) {
			for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `cumulative buckets for ${key}`);
			assert.is(buckets.at(-1)!.labels.le, '+Inf');
			const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
			assert.is(count?.value, buckets.at(-1)!.value, '+Inf equals _count');
			assert.ok(
				samples.some((s) => s.name === `${family}_sum` && JSON.stringify(s.labels) === key),
				'_sum present',
			);
		}
	}
	return { types, samples };
}

let platform: Platform;
const obs = suite('health and metrics');
obs.before(async () => {
	platform = await startPlatform();
});
obs.after(async () => {
	await platform.close();
});

obs('GET /metrics is valid Prometheus text with the platform’s series', async () => {
	await deploy(platform, 'echo', 'echo.py');
	await deploy(platform, 'crash', 'crash.py');
	for (let i = 0; i < 3; i++) assert.is((await platform.request('POST', '/functions/echo/invoke', {})).body.status, 'success');
	assert.is((await platform.request('POST', '/functions/crash/invoke', {})).body.status, 'failed');
	const res = await fetch(`${platform.app.url}/metrics`);
	assert.is(res.status, 200);
	assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
	const { types, samples } = parseExposition(await res.text());
	const value = (name: string, labels: Record<string, string> = {}) => samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
	assert.is(types.get('lowcode_faas_invocations_total'), 'counter');
	assert.is(types.get('lowcode_faas_invocation_duration_seconds'), 'histogram');
	assert.is(value('lowcode_faas_invocations_total', { function: 'echo', status: 'success' }), 3);
	assert.is(value('lowcode_faas_invocations_total', { function: 'crash', status: 'failed' }), 1);
	assert.is(value('lowcode_faas_invocation_duration_seconds_count', { function: 'echo' }), 3);
	assert.is(value('lowcode_faas_cold_starts_total', { function: 'echo' }), 1);
	assert.is(value('lowcode_faas_containers', { function: 'echo' }), 1);
	assert.is(value('lowcode_faas_queue_depth'), 0);
	assert.is(types.get('lowcode_faas_stem_cells'), 'gauge');
	assert.ok(value('lowcode_faas_stem_cells', { language: 'python' }) !== undefined && value('lowcode_faas_stem_cells', { language: 'deno' }) !== undefined);
	assert.is(types.get('lowcode_faas_instance_starts_total'), 'counter');
	assert.is((value('lowcode_faas_instance_starts_total', { path: 'stem' }) ?? 0) + (value('lowcode_faas_instance_starts_total', { path: 'classic' }) ?? 0), 2, 'echo and crash each started once');
	assert.ok((value('process_resident_memory_bytes') ?? 0) > 1e6);
	assert.ok((value('lowcode_faas_uptime_seconds') ?? -1) >= 0);
});

obs('the strict reader refuses malformed text', () => {
	for (const bad of ['x 1', '# TYPE x counter\nx{a="1} 1\n', '# TYPE x counter\nx{a="1",a="2"} 1\n', '# TYPE x counter\nx one\n', '# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx 2\n']) {
		let refused = false;
		try {
			parseExposition(bad.endsWith('\n') ? bad : bad + '\n');
		} catch {
			refused = true; // uvu's assert.throws would let the reader's own assertion escape
		}
		assert.ok(refused, JSON.stringify(bad));
	}
});

obs('GET /healthz is 200 while serving', async () => {
	assert.equal((await platform.request('GET', '/healthz')).body, { status: 'ok' });
});

obs.run();

const ready = suite('readyz');

ready('GET /readyz turns 503 when a runtime image is removed', async () => {
	const tag = `lowcode-faas/python:readyz-${process.pid}`;
	await execa('docker', ['tag', PythonImage, tag]);
	const p = await startPlatform({ LOWCODE_FAAS_PYTHON_IMAGE: tag });
	try {
		const body = (await p.request('GET', '/readyz')).body;
		assert.is(body.status, 'ready');
		assert.equal(Object.keys(body.stem_cells), ['python', 'deno'], 'with the stem cells ready per language');
		await execa('docker', ['rmi', tag]);
		// The probe's answer is cached for a while: wait for the change, not for the cache's lifetime.
		const res = await eventually(
			'/readyz to turn 503',
			() => p.request('GET', '/readyz'),
			(r) => r.status === 503,
		);
		assert.match(res.body.reason, new RegExp(`${tag.replace(/[/.]/g, '\\$&')} is missing`));
	} finally {
		await execa('docker', ['rmi', tag], { reject: false });
		await p.close();
	}
});

ready.run();
