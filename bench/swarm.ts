/**
 * `node dist/bench/swarm.js` (on a swarm manager): the Swarm backend against the Docker backend in the
 * same run: cold starts (a new service; a parked one scaled 0 -> 1) and warm throughput.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { loadConfig } from '../src/config.js';
import { spawnServer } from '../test/helpers.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const COLD = Number(process.env.BENCH_COLD ?? 3);
const agent = new Agent({ keepAlive: true });

function invoke(base: string, name: string, timeoutMs = 5_000): Promise<{ ok: boolean; cold: boolean }> {
	const body = JSON.stringify({ input: { name: 'bench' }, timeout_ms: timeoutMs });
	return new Promise((done, fail) => {
		const req = request(`${base}/functions/${name}/invoke`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => (text += chunk));
			res.on('end', () => {
				const run = res.statusCode === 200 ? (JSON.parse(text) as { status: string; cold_start: boolean }) : null;
				done({ ok: run?.status === 'success', cold: run?.cold_start ?? false });
			});
		});
		req.on('error', fail);
		req.end(body);
	});
}

async function load(base: string, name: string, concurrency: number) {
	const latencies: number[] = [];
	let errors = 0;
	const run = async (until: number, keep: boolean) => {
		while (performance.now() < until) {
			const t = performance.now();
			const { ok } = await invoke(base, name).catch(() => ({ ok: false }));
			if (keep) latencies.push(performance.now() - t);
			if (keep && !ok) errors++;
		}
	};
	await Promise.all(Array.from({ length: concurrency }, () => run(performance.now() + 1_000, false)));
	const started = performance.now();
	await Promise.all(Array.from({ length: concurrency }, () => run(started + SECONDS * 1000, true)));
	latencies.sort((a, b) => a - b);
	return { p50: latencies[Math.floor(latencies.length / 2)] ?? 0, rps: latencies.length / ((performance.now() - started) / 1000), errors };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const f = (n: number, digits = 0) => n.toFixed(digits);

async function create(base: string, name: string, source: string) {
	const res = await fetch(`${base}/functions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, language: 'python', source_code: source }) });
	if (res.status !== 201) throw new Error(`creating ${name}: ${res.status} ${await res.text()}`);
}

async function timed(base: string, name: string): Promise<number> {
	const t = performance.now();
	const r = await invoke(base, name, 60_000);
	if (!r.ok || !r.cold) throw new Error(`${name}: not a successful cold start`);
	return performance.now() - t;
}

/** Measures one platform (`env` picks the backend); returns its cells. */
async function measure(env: Record<string, string>, source: string) {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-bench-swarm-'));
	await mkdir(join(dataDir, 'functions'));
	const { child, url } = await spawnServer(dataDir, { LOWCODE_FAAS_IDLE_S: '2', ...env });
	try {
		const created: number[] = [];
		for (let i = 0; i < COLD; i++) {
			await create(url, `new${i}`, source);
			created.push(await timed(url, `new${i}`));
		}
		// Idle past LOWCODE_FAAS_IDLE_S: the instance goes (a parked service at zero replicas in a swarm), and comes back.
		const again: number[] = [];
		for (let i = 0; i < COLD; i++) {
			await invoke(url, 'new0', 60_000);
			const instance = loadConfig({ LOWCODE_FAAS_DATA: dataDir }).instance;
			for (;;) {
				const { stdout } = await execa('docker', ['ps', '-q', '--filter', `label=lowcode-faas.instance=${instance}`, '--filter', 'label=lowcode-faas.function=new0']);
				if (!stdout.trim()) break;
				await sleep(100);
			}
			again.push(await timed(url, 'new0'));
		}
		await create(url, 'greet', source);
		await invoke(url, 'greet', 60_000);
		const c1 = await load(url, 'greet', 1);
		const c16 = await load(url, 'greet', 16);
		return { created, again, c1, c16 };
	} finally {
		process.kill(child.pid!, 'SIGTERM');
		await child;
		await rm(dataDir, { recursive: true, force: true });
	}
}

async function main() {
	const source = await readFile(resolve('data/functions/greet.py'), 'utf8');
	const docker = await measure({ LOWCODE_FAAS_STEM_CELLS: '0' }, source);
	const swarm = await measure({ LOWCODE_FAAS_BACKEND: 'swarm' }, source);
	const rows = [
		['cold: first invoke after create', `${f(median(docker.created))} ms (docker run)`, `${f(median(swarm.created))} ms (service create)`],
		['cold: after idle removal', `${f(median(docker.again))} ms (docker run)`, `${f(median(swarm.again))} ms (scale 0 -> 1)`],
		['warm greet c=1', `p50 ${f(docker.c1.p50, 2)} ms, ${f(docker.c1.rps)} req/s`, `p50 ${f(swarm.c1.p50, 2)} ms, ${f(swarm.c1.rps)} req/s`],
		['warm greet c=16', `p50 ${f(docker.c16.p50, 2)} ms, ${f(docker.c16.rps)} req/s`, `p50 ${f(swarm.c16.p50, 2)} ms, ${f(swarm.c16.rps)} req/s${swarm.c16.errors ? ` (${swarm.c16.errors} errors)` : ''}`],
	];
	console.log(`\nSwarm vs Docker backend (python greet, median of ${COLD} cold starts, ${SECONDS} s per warm cell; no stem cells on either side)\n`);
	console.log('| case | docker backend | swarm backend |\n|---|---|---|');
	for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

await main();
