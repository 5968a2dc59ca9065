/** Prometheus metrics, kept in memory and rendered in the text exposition format (version 0.0.4). */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

interface Histogram {
	counts: number[];
	sum: number;
	count: number;
}

export interface Gauges {
	containers: Map<string, number>;
	queueDepth: number;
	/** Stem cells ready to be claimed, by language. */
	stemCells: Record<string, number>;
	/** Instances started, by path (stem, classic); null when stem cells are off. */
	starts: Record<string, number> | null;
}

const escapeLabel = (value: string) => value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
const label = (labels: Record<string, string>) =>
	`{${Object.entries(labels)
		.map(([k, v]) => `${k}="${escapeLabel(v)}"`)
		.join(',')}}`;

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
	const invocations = new Map<string, number>(); // "function\0status" → count
	const coldStarts = new Map<string, number>();
	const durations = new Map<string, Histogram>();
	const startedAt = Date.now() / 1000;

	/** Counts one finished invocation. */
	function observe(fn: string, status: string, seconds: number, cold: boolean) {
		const key = `${fn}\0${status}`;
		invocations.set(key, (invocations.get(key) ?? 0) + 1);
		if (cold) coldStarts.set(fn, (coldStarts.get(fn) ?? 0) + 1);
		let h = durations.get(fn);
		if (!h) durations.set(fn, (h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
		for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.counts[i]!++;
		h.sum += seconds;
		h.count++;
	}

	function render(gauges: Gauges): string {
		const out: string[] = [];
		const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

		family('lowcode_faas_invocations_total', 'counter', 'Invocations finished, by function and status.');
		for (const [key, value] of invocations) {
			const [fn, status] = key.split('\0') as [string, string];
			out.push(`lowcode_faas_invocations_total${label({ function: fn, status })} ${value}`);
		}
		family('lowcode_faas_invocation_duration_seconds', 'histogram', 'Wall time of invocations, container start included.');
		for (const [fn, h] of durations) {
			for (const [i, le] of BUCKETS.entries()) out.push(`lowcode_faas_invocation_duration_seconds_bucket${label({ function: fn, le: String(le) })} ${h.counts[i]}`);
			out.push(`lowcode_faas_invocation_duration_seconds_bucket${label({ function: fn, le: '+Inf' })} ${h.count}`);
			out.push(`lowcode_faas_invocation_duration_seconds_sum${label({ function: fn })} ${h.sum}`);
			out.push(`lowcode_faas_invocation_duration_seconds_count${label({ function: fn })} ${h.count}`);
		}
		family('lowcode_faas_cold_starts_total', 'counter', 'Invocations that waited for a container to start.');
		for (const [fn, value] of coldStarts) out.push(`lowcode_faas_cold_starts_total${label({ function: fn })} ${value}`);
		family('lowcode_faas_containers', 'gauge', 'Containers the platform runs now, by function.');
		for (const [fn, value] of gauges.containers) out.push(`lowcode_faas_containers${label({ function: fn })} ${value}`);
		family('lowcode_faas_stem_cells', 'gauge', 'Pre-started runtime containers ready to be handed a function, by language.');
		for (const [language, value] of Object.entries(gauges.stemCells)) out.push(`lowcode_faas_stem_cells${label({ language })} ${value}`);
		if (gauges.starts) {
			family('lowcode_faas_instance_starts_total', 'counter', 'Containers started for a function, by path: a stem cell handed the function, or a classic docker run.');
			for (const [path, value] of Object.entries(gauges.starts)) out.push(`lowcode_faas_instance_starts_total${label({ path })} ${value}`);
		}
		family('lowcode_faas_queue_depth', 'gauge', 'Invocations waiting for a container.');
		out.push(`lowcode_faas_queue_depth ${gauges.queueDepth}`);
		family('process_resident_memory_bytes', 'gauge', 'Resident memory of the platform process.');
		out.push(`process_resident_memory_bytes ${process.memoryUsage.rss()}`);
		family('process_start_time_seconds', 'gauge', 'Start time of the platform process, in seconds since the epoch.');
		out.push(`process_start_time_seconds ${startedAt}`);
		family('lowcode_faas_uptime_seconds', 'gauge', 'Seconds since the platform started.');
		out.push(`lowcode_faas_uptime_seconds ${Date.now() / 1000 - startedAt}`);
		return out.join('\n') + '\n';
	}

	return { observe, render };
}
