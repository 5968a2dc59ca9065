/**
 * `npm run bench`: what the platform costs, measured against a baseline in the same run on the same
 * machine. Prints a table of ratios; nothing here is a pass/fail test.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { DenoImage, PythonImage, loadConfig } from '../src/config.js';
import { envFileText, runArgs } from '../src/docker.js';
import { spawnServer } from '../test/helpers.js';

const SECONDS_PER_CELL = Number(process.env.BENCH_SECONDS ?? 4);

const echoTs = `Deno.serve({ port: Number(Deno.env.get("PORT") ?? "8080") }, async (req) =>
  req.method === "POST" ? new Response(await req.text(), { headers: { "content-type": "application/json" } }) : new Response(null, { status: 204 }));
`;

interface Stats {
	p50: number;
	p99: number;
	rps: number;
	errors: number;
	/** Requests completed in the measured window. */
	count: number;
}

/** Sends requests from `concurrency` loops for SECONDS_PER_CELL seconds; latencies in ms. */
async function load(call: () => Promise<boolean>, concurrency: number, cpuOf?: number): Promise<Stats & { cpuUs: number }> {
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

// The load generator shares the machine: it uses the cheapest client (node:http, keep-alive) for the
// baseline and the platform alike, so that it is not what gets measured.
const agent = new Agent({ keepAlive: true });

function post(url: string, body: string): Promise<{ status: number; text: string }> {
	return new Promise((resolve, reject) => {
		const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => (text += chunk));
			res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
			res.on('error', reject);
		});
		req.on('error', reject);
		req.end(body);
	});
}

async function postOk(url: string, body: string): Promise<boolean> {
	const res = await post(url, body);
	return res.status === 200 && res.text.length > 0;
}

async function invokeOk(base: string, name: string, input: unknown): Promise<boolean> {
	const res = await post(`${base}/functions/${name}/invoke`, JSON.stringify({ input }));
	return res.status === 200 && (JSON.parse(res.text) as { status: string }).status === 'success';
}

/** Runs a function's container by hand, the way the platform does, and waits for its first answer. */
/**
 * Runs a function's container by hand and waits for its first answer. `sandboxed`: with the very
 * `docker run` arguments the platform uses (same limits, same network), so that the comparison
 * measures the platform, not its security settings; otherwise a plain `docker run`.
 */
async function runDirect(image: string, file: string, command: string[], port: number, sandboxed = true): Promise<{ name: string; ms: number; bridgeUrl: string }> {
	const name = `lcf-bench-direct-${port}`;
	const target = `/app/${file.split('/').pop()}`;
	const envFile = join(tmpdir(), `${name}.env`);
	const env = { PORT: '8080', HOME: '/tmp', DENO_DIR: '/tmp/deno' };
	await writeFile(envFile, envFileText(env), { mode: 0o600 });
	const args = sandboxed
		? runArgs(
				{
					name,
					image,
					labels: { 'lowcode-faas.bench': '1' },
					env,
					envDir: tmpdir(),
					publish: { host: '127.0.0.1', hostPort: port, containerPort: 8080 },
					mounts: [{ source: file, target, readonly: true }],
					command,
					sandbox: loadConfig({}).sandbox,
				},
				envFile,
			)
		: ['run', '-d', '--name', name, '--label', 'lowcode-faas.bench=1', '-e', 'PORT=8080', '-p', `127.0.0.1:${port}:8080`, '--mount', `type=bind,source=${file},target=${target},readonly`, image, ...command];
	const started = performance.now();
	await execa('docker', args).finally(() => rm(envFile, { force: true }));
	for (;;) {
		try {
			const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(200) });
			await res.text();
			const ms = performance.now() - started;
			const { stdout: ip } = await execa('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', name]);
			return { name, ms, bridgeUrl: `http://${ip.trim()}:8080/` };
		} catch {
			await sleep(15);
		}
	}
}

function freePort(): Promise<number> {
	return new Promise((resolve) => {
		const server = createServer().listen(0, '127.0.0.1', () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (n: number, digits = 2) => n.toFixed(digits);

/** User + system CPU seconds a process has used so far (from /proc, in clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
	const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
	return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function rssMb(pid: number): Promise<number> {
	const status = await readFile(`/proc/${pid}/status`, 'utf8');
	return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function main() {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-bench-'));
	const functions = join(dataDir, 'functions');
	await execa('mkdir', ['-p', functions]);
	await writeFile(join(functions, 'echo.ts'), echoTs);
	await writeFile(join(functions, 'greet.py'), await readFile(resolve('data/functions/greet.py'), 'utf8'));
	const { child, url } = await spawnServer(dataDir);
	const directs: string[] = [];
	const rows: string[][] = [];
	try {
		// 1. Warm latency and throughput.
		const cases = [
			{ fn: 'echo', image: DenoImage, file: join(functions, 'echo.ts'), command: ['deno', 'run', '--no-prompt', '--allow-net', '--allow-env', '/app/echo.ts'], input: { hello: 'world' } },
			{ fn: 'greet', image: PythonImage, file: join(functions, 'greet.py'), command: ['python3', '-u', '/app/greet.py'], input: { name: 'bench' } },
		];
		for (const c of cases) {
			const port = await freePort();
			const direct = await runDirect(c.image, c.file, c.command, port);
			directs.push(direct.name);
			const directUrl = `http://127.0.0.1:${port}/`;
			await invokeOk(url, c.fn, c.input);
			for (const concurrency of [1, 16]) {
				const d = await load(() => postOk(directUrl, JSON.stringify(c.input)), concurrency);
				const b = await load(() => postOk(direct.bridgeUrl, JSON.stringify(c.input)), concurrency);
				const p = await load(() => invokeOk(url, c.fn, c.input), concurrency, child.pid);
				rows.push([
					`warm ${c.fn} c=${concurrency}`,
					`published port: p50 ${f(d.p50)} ms, ${f(d.rps, 0)} req/s; bridge address: p50 ${f(b.p50)} ms, ${f(b.rps, 0)} req/s`,
					`p50 ${f(p.p50)} / p99 ${f(p.p99)} ms, ${f(p.rps, 0)} req/s${p.errors ? `, ${p.errors} errors` : ''}; ${f(p.cpuUs, 0)} µs platform CPU/req`,
					`+${f(p.p50 - d.p50)} ms p50; ${f(p.rps / d.rps)}x (published), ${f(p.rps / b.rps)}x (bridge) throughput`,
				]);
				if (c.fn === 'echo' && concurrency === 16) {
					const r = await load(() => postOk(`${url}/fn/echo/`, JSON.stringify(c.input)), concurrency, child.pid);
					rows.push(['raw route /fn/echo/ c=16', `/invoke: ${f(p.rps, 0)} req/s`, `p50 ${f(r.p50)} ms, ${f(r.rps, 0)} req/s${r.errors ? `, ${r.errors} errors` : ''}; ${f(r.cpuUs, 0)} µs platform CPU/req`, `${f(r.rps / p.rps)}x /invoke`]);
				}
			}
		}

		// 2. Cold start: raw docker run to first response vs the first invocation after create.
		const raw: number[] = [];
		const plain: number[] = [];
		const platform: number[] = [];
		for (let i = 0; i < 3; i++) {
			for (const [sandboxed, into] of [
				[true, raw],
				[false, plain],
			] as const) {
				const direct = await runDirect(PythonImage, join(functions, 'greet.py'), ['python3', '-u', '/app/greet.py'], await freePort(), sandboxed);
				into.push(direct.ms);
				await execa('docker', ['rm', '-f', direct.name]);
			}
			const name = `cold${i}`;
			await fetch(`${url}/functions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, language: 'python', source_code: await readFile(join(functions, 'greet.py'), 'utf8') }) });
			const t = performance.now();
			await invokeOk(url, name, { name: 'cold' });
			platform.push(performance.now() - t);
		}
		rows.push(['cold start (python, median of 3)', `docker run → first answer ${f(median(raw), 0)} ms`, `first invoke ${f(median(platform), 0)} ms`, `${f(median(platform) / median(raw))}x`]);
		rows.push(['  the sandbox flags alone', `plain docker run → first answer ${f(median(plain), 0)} ms`, '-', `sandboxed ${f(median(raw) / median(plain))}x plain`]);

		// 3. Burst: 50 concurrent first invocations of a cold function.
		await writeFile(join(functions, 'burst.py'), await readFile(join(functions, 'greet.py'), 'utf8'));
		const burst = await Promise.all(Array.from({ length: 50 }, () => invokeOk(url, 'burst', { name: 'burst' }).catch(() => false)));
		const instance = loadConfig({ LOWCODE_FAAS_DATA: dataDir }).instance;
		const { stdout } = await execa('docker', ['ps', '-q', '--filter', `label=lowcode-faas.instance=${instance}`, '--filter', 'label=lowcode-faas.function=burst']);
		const started = stdout.split('\n').filter(Boolean).length;
		rows.push(['burst: 50 concurrent cold invocations', '-', `${started} container(s) started, ${burst.filter((ok) => !ok).length} errors`, `limit ${loadConfig({}).maxReplicas}`]);

		// 4. Breadth: 50 functions invoked once each, then the platform's RSS.
		for (let i = 0; i < 50; i++) await writeFile(join(functions, `wide${i}.py`), await readFile(join(functions, 'greet.py'), 'utf8'));
		let failures = 0;
		for (let i = 0; i < 50; i++) if (!(await invokeOk(url, `wide${i}`, { name: 'wide' }))) failures++;
		rows.push(['breadth: 50 functions once each', '-', `platform RSS ${f(await rssMb(child.pid!), 0)} MB, ${failures} errors`, 'target < 150 MB']);
	} finally {
		await execa('docker', ['rm', '-f', ...directs], { reject: false });
		child.kill('SIGTERM');
		await child;
		await rm(dataDir, { recursive: true, force: true });
	}

	console.log(`\nlowcode-faas benchmark: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${f(totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}, ${SECONDS_PER_CELL} s per cell\n`);
	const header = ['case', 'baseline (the same container, called directly)', 'through lowcode-faas', 'ratio'];
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
	const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
	console.log([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
}

await main();
