/**
 * `npm run bench`: what the platform costs, measured against a baseline in the same run on the same
 * machine. Prints a table of ratios, then the Swarm backend's against the Docker backend's (bench/swarm.ts);
 * nothing here is a pass/fail test.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { DenoImage, PythonImage, loadConfig } from '../src/config.js';
import { envFileText, runArgs } from '../src/docker.js';
import { spawnServer } from '../test/helpers.js';
import { SECONDS_PER_CELL, createFn, f, firstAnswer, freePort, invokeOk, invokeRun, load, median, p90, post, postOk, table } from './load.js';
import { COLD_SWARM, type DockerFigures, swarmColumn } from './swarm.js';

const echoTs = `Deno.serve({ port: Number(Deno.env.get("PORT") ?? "8080") }, async (req) =>
  req.method === "POST" ? new Response(await req.text(), { headers: { "content-type": "application/json" } }) : new Response(null, { status: 204 }));
`;

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
	const ms = await firstAnswer(`http://127.0.0.1:${port}/`, started);
	const { stdout: ip } = await execa('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', name]);
	return { name, ms, bridgeUrl: `http://${ip.trim()}:8080/` };
}

const COLD_RAW = Number(process.env.BENCH_COLD_RAW ?? 5);
const COLD_STEM = Number(process.env.BENCH_COLD_STEM ?? 10);
const COLD_CLASSIC = Number(process.env.BENCH_COLD_CLASSIC ?? 5);

/** Creates a function, then times its first invocation (the answer included). */
async function firstInvoke(base: string, name: string, language: string, source: string): Promise<number> {
	await createFn(base, name, language, source);
	const t = performance.now();
	// 30 s: a `docker run` on a loaded machine can take longer than the default 5 s timeout, and the figure is what is wanted.
	const run = await invokeRun(base, name, { name: 'cold' }, 30_000);
	if (run.status !== 'success') throw new Error(`the first invocation of ${name} failed: ${JSON.stringify(run)}`);
	return performance.now() - t;
}

/** Waits until /readyz shows `count` stem cells of `language` ready (the pool refilled). */
async function stemCellsReady(base: string, language: string, count: number): Promise<void> {
	for (const until = Date.now() + 30_000; Date.now() < until; ) {
		const res = await fetch(`${base}/readyz`);
		const body = (await res.json()) as { stem_cells?: Record<string, number> };
		if ((body.stem_cells?.[language] ?? 0) >= count) return;
		await sleep(20);
	}
	throw new Error(`no ${count} ${language} stem cells ready in 30 s`);
}

/** Instances started so far, by path, from /metrics. */
async function instanceStarts(base: string): Promise<{ stem: number; classic: number }> {
	const text = await (await fetch(`${base}/metrics`)).text();
	const read = (path: string) => Number(new RegExp(`^lowcode_faas_instance_starts_total\\{path="${path}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
	return { stem: read('stem'), classic: read('classic') };
}
async function rssMb(pid: number): Promise<number> {
	const status = await readFile(`/proc/${pid}/status`, 'utf8');
	return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function main() {
	const benchStarted = performance.now();
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-bench-'));
	const functions = join(dataDir, 'functions');
	await execa('mkdir', ['-p', functions]);
	await writeFile(join(functions, 'echo.ts'), echoTs);
	await writeFile(join(functions, 'greet.py'), await readFile(resolve('data/functions/greet.py'), 'utf8'));
	const { child, url } = await spawnServer(dataDir);
	// BENCH_SERVER_LOG=FILE keeps the platform's own log lines, to see what happened during a run.
	if (process.env.BENCH_SERVER_LOG) child.stdout?.pipe(createWriteStream(process.env.BENCH_SERVER_LOG));
	const directs: string[] = [];
	const rows: string[][] = [];
	const dockerMain: DockerFigures = { dockerRun: [], warm: [] };
	try {
		// 0. The idle stem cells, once the pools are full.
		await stemCellsReady(url, 'python', 2);
		await stemCellsReady(url, 'deno', 2);
		const { stdout: stems } = await execa('docker', ['ps', '--format', '{{.Names}}', '--filter', `label=lowcode-faas.instance=${loadConfig({ LOWCODE_FAAS_DATA: dataDir }).instance}`, '--filter', 'label=lowcode-faas.stem']);
		const idle = stems.split('\n').filter((n) => /-stem\.[a-z]+-[0-9a-f]+$/.test(n));
		if (idle.length > 0) {
			const { stdout: stats } = await execa('docker', ['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}', ...idle]);
			const byLanguage = new Map<string, string[]>();
			for (const line of stats.split('\n').filter(Boolean)) {
				const [name = '', usage = ''] = line.split(' ');
				const language = /-stem\.([a-z]+)-/.exec(name)?.[1] ?? '?';
				byLanguage.set(language, [...(byLanguage.get(language) ?? []), usage]);
			}
			rows.push(['idle stem cell memory (docker stats)', '-', [...byLanguage].map(([l, m]) => `${l}: ${m.join(', ')}`).join('; '), '-']);
		}

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
				if (c.fn === 'greet') dockerMain.warm.push({ concurrency, direct: d, platform: p });
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

		// 2. Cold start: raw docker run to first answer, against the first invocation after create, from a
		// stem cell (this platform) and the classic way (a second platform with LOWCODE_FAAS_STEM_CELLS=0).
		const classicDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-bench-classic-'));
		await execa('mkdir', ['-p', join(classicDir, 'functions')]);
		const classic = await spawnServer(classicDir, { LOWCODE_FAAS_STEM_CELLS: '0' });
		try {
			const greets = [
				{ language: 'python', image: PythonImage, file: resolve('data/functions/greet.py'), command: ['python3', '-u', '/app/greet.py'] },
				{ language: 'deno', image: DenoImage, file: resolve('data/functions/greet.ts'), command: ['deno', 'run', '--no-prompt', '--allow-net', '--allow-env', '/app/greet.ts'] },
			] as const;
			for (const g of greets) {
				const source = await readFile(g.file, 'utf8');
				const raw: number[] = [];
				for (let i = 0; i < COLD_RAW; i++) {
					const direct = await runDirect(g.image, g.file, [...g.command], await freePort());
					raw.push(direct.ms);
					await execa('docker', ['rm', '-f', direct.name]);
				}
				if (g.language === 'python') dockerMain.dockerRun = raw;
				const stem: number[] = [];
				const startsBefore = await instanceStarts(url);
				for (let i = 0; i < COLD_STEM; i++) {
					await stemCellsReady(url, g.language, 2);
					stem.push(await firstInvoke(url, `stem-${g.language}-${i}`, g.language, source));
				}
				const startsAfter = await instanceStarts(url);
				// Their containers would otherwise fill LOWCODE_FAAS_MAX_CONTAINERS, and the burst below would measure evictions.
				for (let i = 0; i < COLD_STEM; i++) await fetch(`${url}/functions/stem-${g.language}-${i}`, { method: 'DELETE' });
				const classicMs: number[] = [];
				for (let i = 0; i < COLD_CLASSIC; i++) classicMs.push(await firstInvoke(classic.url, `classic-${g.language}-${i}`, g.language, source));
				rows.push([
					`cold start ${g.language} greet (first invoke after create)`,
					`docker run → first answer: median ${f(median(raw), 0)} ms (n=${raw.length})`,
					`stem cell: median ${f(median(stem), 0)} / p90 ${f(p90(stem), 0)} ms (n=${stem.length}, ${startsAfter.stem - startsBefore.stem} stem starts); classic: median ${f(median(classicMs), 0)} / p90 ${f(p90(classicMs), 0)} ms (n=${classicMs.length})`,
					`stem ${f(median(raw) / median(stem), 1)}x faster than docker run; classic ${f(median(classicMs) / median(raw))}x docker run`,
				]);
			}
		} finally {
			process.kill(classic.child.pid!, 'SIGTERM');
			await classic.child;
			await rm(classicDir, { recursive: true, force: true });
		}

		// 3. Burst of first invocations: 20 different functions at once; those beyond the stem pool fall back.
		const greetPy = await readFile(join(functions, 'greet.py'), 'utf8');
		for (let i = 0; i < 20; i++) await createFn(url, `first${i}`, 'python', greetPy);
		await stemCellsReady(url, 'python', 2);
		const before = await instanceStarts(url);
		const t = performance.now();
		// 30 s each: twenty `docker run`s at once on a small machine take longer than the default 5 s timeout.
		const firsts = await Promise.all(
			Array.from({ length: 20 }, async (_, i) => {
				const res = await post(`${url}/functions/first${i}/invoke`, JSON.stringify({ input: { name: 'burst' }, timeout_ms: 30_000 }));
				const run = JSON.parse(res.text) as { status: string; error_message?: string; duration_ms: number };
				if (run.status !== 'success') console.error(`first${i}: ${run.status}: ${run.error_message}`);
				return run;
			}),
		);
		const burstMs = performance.now() - t;
		const after = await instanceStarts(url);
		const fastest = firsts.map((r) => r.duration_ms).sort((a, b) => a - b);
		rows.push([
			'burst: 20 first invocations of 20 functions',
			'-',
			`${firsts.filter((r) => r.status === 'success').length}/20 succeeded, all in ${f(burstMs, 0)} ms (fastest ${fastest.slice(0, 3).join(', ')} ms); ${after.stem - before.stem} from stem cells, ${after.classic - before.classic} classic`,
			`pool ${loadConfig({}).stemCells} per language`,
		]);

		// 3b. A burst of 50 concurrent cold invocations of one function: single-flight.
		await writeFile(join(functions, 'burst.py'), await readFile(join(functions, 'greet.py'), 'utf8'));
		const burst = await Promise.all(Array.from({ length: 50 }, () => invokeOk(url, 'burst', { name: 'burst' }).catch(() => false)));
		const instance = loadConfig({ LOWCODE_FAAS_DATA: dataDir }).instance;
		// By instance name: a claimed stem cell carries no function label (labels are fixed at docker run).
		const { stdout } = await execa('docker', ['ps', '--format', '{{.Names}}', '--filter', `label=lowcode-faas.instance=${instance}`]);
		const started = stdout.split('\n').filter((n) => new RegExp(`^lcf-${instance}-burst-[0-9a-f]{8}$`).test(n)).length;
		rows.push(['burst: 50 concurrent cold invocations', '-', `${started} container(s) started, ${burst.filter((ok) => !ok).length} errors`, `limit ${loadConfig({}).maxReplicas}`]);

		// 4. Breadth: 50 functions invoked once each, then the platform's RSS.
		for (let i = 0; i < 50; i++) await writeFile(join(functions, `wide${i}.py`), await readFile(join(functions, 'greet.py'), 'utf8'));
		let failures = 0;
		for (let i = 0; i < 50; i++) if (!(await invokeOk(url, `wide${i}`, { name: 'wide' }))) failures++;
		rows.push(['breadth: 50 functions once each', '-', `platform RSS ${f(await rssMb(child.pid!), 0)} MB, ${failures} errors`, 'target < 150 MB']);
	} finally {
		await execa('docker', ['rm', '-f', ...directs], { reject: false });
		// Not child.kill(): execa follows it with a SIGKILL after 5 s, and removing many containers takes longer.
		process.kill(child.pid!, 'SIGTERM');
		await child;
		const left = await execa('docker', ['ps', '-a', '--format', '{{.Names}}', '--filter', `label=lowcode-faas.instance=${loadConfig({ LOWCODE_FAAS_DATA: dataDir }).instance}`]);
		if (left.stdout.trim()) console.error(`the platform left containers after SIGTERM: ${left.stdout.trim().split('\n').join(', ')}`);
		await rm(dataDir, { recursive: true, force: true });
	}

	console.log(`\nlowcode-faas benchmark: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${f(totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}, ${SECONDS_PER_CELL} s per cell\n`);
	console.log(table(['case', 'baseline (the same container, called directly)', 'through lowcode-faas', 'ratio'], rows));

	const swarm = await swarmColumn(dockerMain).catch((err: Error) => ({ skipped: `Swarm column failed: ${err.message}` }));
	if ('skipped' in swarm) console.log(`\n${swarm.skipped}`);
	else {
		console.log(`\nSwarm backend vs Docker backend (python greet; no stem cells on either side for the cold starts, median of ${COLD_SWARM}; ${SECONDS_PER_CELL} s per warm cell). The Swarm part took ${f(swarm.seconds, 0)} s.\n`);
		console.log(table(['case', 'docker backend', 'swarm backend', 'ratio'], swarm.rows));
	}
	console.log(`\nThe whole bench took ${f((performance.now() - benchStarted) / 1000, 0)} s.`);
}

await main();
