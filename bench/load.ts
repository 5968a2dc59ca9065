/**
 * What every part of the bench measures with: a load loop, an HTTP client that is cheap enough not to be
 * what gets measured, the platform's API calls and the figures' formatting.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';

export const SECONDS_PER_CELL = Number(process.env.BENCH_SECONDS ?? 4);

export interface Stats {
	p50: number;
	p99: number;
	rps: number;
	errors: number;
	/** Requests completed in the measured window. */
	count: number;
}

/** Sends requests from `concurrency` loops for SECONDS_PER_CELL seconds; latencies in ms. */
export async function load(call: () => Promise<boolean>, concurrency: number, cpuOf?: number): Promise<Stats & { cpuUs: number }> {
	// Warm up at the same concurrency: connections opened, replicas started, code paths optimised.
	const warmUntil = performance.now() + 1_000;
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (performance.now() < warmUntil) await call().catch(() => false);
		}),
	);
	const latencies: number[] = [];
	let errors = 0;
	// CPU of the process under test (the platform), over the measured window only.
	const cpuBefore = cpuOf ? await cpuSeconds(cpuOf) : 0;
	const until = performance.now() + SECONDS_PER_CELL * 1000;
	const started = performance.now();
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (performance.now() < until) {
				const t = performance.now();
				const ok = await call().catch(() => false);
				latencies.push(performance.now() - t);
				if (!ok) errors++;
			}
		}),
	);
	const elapsed = (performance.now() - started) / 1000;
	latencies.sort((a, b) => a - b);
	const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
	const cpuUs = cpuOf ? (((await cpuSeconds(cpuOf)) - cpuBefore) / latencies.length) * 1e6 : 0;
	return { p50: at(0.5), p99: at(0.99), rps: latencies.length / elapsed, errors, count: latencies.length, cpuUs };
}

/** User + system CPU seconds a process has used so far (from /proc, in clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
	const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
	return (Number(fields[11]) + Number(fields[12])) / 100;
}

// The load generator shares the machine: it uses the cheapest client (node:http, keep-alive) for the
// baseline and the platform alike, so that it is not what gets measured.
const agent = new Agent({ keepAlive: true });

export function post(url: string, body: string, retry = true): Promise<{ status: number; text: string }> {
	return new Promise((resolve, reject) => {
		const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => (text += chunk));
			res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
			res.on('error', reject);
		});
		req.on('error', (err: NodeJS.ErrnoException) => {
			// A kept-alive socket that the server closed as this request went out (Node's documented race, when
			// calls are seconds apart): nothing was read, so it goes again once, on a new socket.
			if (retry && req.reusedSocket && err.code === 'ECONNRESET') resolve(post(url, body, false));
			else reject(err);
		});
		req.end(body);
	});
}

/** A call straight to a function's server, as the platform forwards it: POST / with the input. */
export async function postOk(url: string, body: string): Promise<boolean> {
	const res = await post(url, body);
	return res.status === 200 && res.text.length > 0;
}

/** Polls a function's server until it answers; the time from `started` to that answer, in ms. */
export async function firstAnswer(url: string, started: number): Promise<number> {
	for (;;) {
		try {
			const res = await fetch(url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(200) });
			await res.text();
			return performance.now() - started;
		} catch {
			await new Promise((done) => setTimeout(done, 15));
		}
	}
}

/** One invocation through the platform: its run result. */
export async function invokeRun(base: string, name: string, input: unknown, timeoutMs?: number): Promise<{ status: string; cold_start: boolean }> {
	const res = await post(`${base}/functions/${name}/invoke`, JSON.stringify({ input, timeout_ms: timeoutMs }));
	// Any other answer stands in the status, so that an error message shows it.
	return res.status === 200 ? (JSON.parse(res.text) as { status: string; cold_start: boolean }) : { status: `HTTP ${res.status}: ${res.text.slice(0, 300)}`, cold_start: false };
}

export async function invokeOk(base: string, name: string, input: unknown): Promise<boolean> {
	return (await invokeRun(base, name, input)).status === 'success';
}

export async function createFn(base: string, name: string, language: string, source: string, settings: Record<string, unknown> = {}): Promise<void> {
	const res = await post(`${base}/functions`, JSON.stringify({ name, language, source_code: source, ...settings }));
	if (res.status !== 201) throw new Error(`creating ${name}: ${res.status} ${res.text}`);
}

export function freePort(): Promise<number> {
	return new Promise((resolve) => {
		const server = createServer().listen(0, '127.0.0.1', () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.9) - 1)]!;
export const f = (n: number, digits = 2) => n.toFixed(digits);

/** A markdown table, its columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
	const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
	return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
