/**
 * The bench's Swarm column: the Swarm backend against the Docker backend in the same run, each against a
 * baseline of its own (the same thing done by hand with the docker CLI). Cold starts: a new function's
 * first answer, and an idle one's next answer (a parked service scaled 0 -> 1, a container started
 * again); then warm throughput. The swarm is a single-node one of this engine: initialised here when the
 * engine is in none, and left at the end only then.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { PythonImage, loadConfig } from '../src/config.js';
import { swarmInfo } from '../src/swarm.js';
import { spawnServer } from '../test/helpers.js';
import { ensureSwarm, leaveSwarm } from '../test/local-swarm.js';
import { type Stats, createFn, f, firstAnswer, invokeRun, load, median, postOk } from './load.js';

// At most 50: the services made by hand take a port each from HAND_PORTS.
export const COLD_SWARM = Math.min(50, Number(process.env.BENCH_COLD_SWARM ?? 3));
// Clear of test/swarm.test.ts (30000-30999) and test/swarm-multinode.test.ts (31000-31099), which may run beside the bench.
const PLATFORM_PORTS = '32000-32049';
const HAND_PORTS = 32050;
const GREET = resolve('data/functions/greet.py');
const INPUT = { name: 'bench' };
// Swarm schedules a task, then its engine starts the container: seconds, more on a loaded machine.
const COLD_TIMEOUT_MS = 60_000;

/** The Docker backend's figures from the main part of the bench: python greet. */
export interface DockerFigures {
	/** `docker run` (the platform's arguments) to first answer, by hand, in ms. */
	dockerRun: number[];
	/** Warm, through the platform and straight to the container's published port, by concurrency. */
	warm: { concurrency: number; direct: Stats; platform: Stats }[];
}

interface Backend {
	created: number[];
	again: number[];
}

/** Times an invocation that must be a successful cold start. */
async function timedCold(base: string, name: string): Promise<number> {
	const t = performance.now();
	const run = await invokeRun(base, name, INPUT, COLD_TIMEOUT_MS);
	if (run.status !== 'success' || !run.cold_start) throw new Error(`${name}: not a successful cold start (${JSON.stringify(run)})`);
	return performance.now() - t;
}

/** Polls `probe` until it is true (the state a measurement starts from), at most `ms`. */
async function until(what: string, probe: () => Promise<boolean>, ms = COLD_TIMEOUT_MS): Promise<void> {
	for (const end = Date.now() + ms; !(await probe()); await sleep(100)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

const noContainer = (filters: string[]) => async () => !(await execa('docker', ['ps', '-q', ...filters.flatMap((l) => ['--filter', `label=${l}`])])).stdout.trim();

/** A new function's first answer, COLD_SWARM times; then an idle function's next answer, COLD_SWARM times. */
async function coldStarts(url: string, instance: string, source: string): Promise<Backend> {
	const created: number[] = [];
	for (let i = 0; i < COLD_SWARM; i++) {
		await createFn(url, `new${i}`, 'python', source);
		created.push(await timedCold(url, `new${i}`));
	}
	// Idle past LOWCODE_FAAS_IDLE_S, the instance goes (its service parked at zero replicas in a swarm) and comes back.
	const again: number[] = [];
	for (let i = 0; i < COLD_SWARM; i++) {
		await until('new0 idle and gone', noContainer([`lowcode-faas.instance=${instance}`, 'lowcode-faas.function=new0']));
		again.push(await timedCold(url, 'new0'));
	}
	return { created, again };
}

/** Runs a platform with `env` (the backend), `measure`s it, then stops it and removes its data folder. */
async function withPlatform<T>(env: Record<string, string>, measure: (url: string, instance: string) => Promise<T>): Promise<T> {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-bench-swarm-'));
	await mkdir(join(dataDir, 'functions'));
	// No stem cells on either side: a swarm has none, so both backends start an instance the classic way.
	const { child, url } = await spawnServer(dataDir, { LOWCODE_FAAS_IDLE_S: '1', LOWCODE_FAAS_STEM_CELLS: '0', ...env });
	try {
		return await measure(url, loadConfig({ LOWCODE_FAAS_DATA: dataDir }).instance);
	} finally {
		process.kill(child.pid!, 'SIGTERM');
		await child;
		await rm(dataDir, { recursive: true, force: true });
	}
}

/** The port a function's service publishes on this node (host mode). */
async function publishedPort(instance: string, fn: string): Promise<number> {
	const { stdout: id } = await execa('docker', ['service', 'ls', '-q', '--filter', `label=lowcode-faas.instance=${instance}`, '--filter', `label=lowcode-faas.function=${fn}`]);
	const { stdout } = await execa('docker', ['service', 'inspect', '--format', '{{range .Endpoint.Ports}}{{.PublishedPort}}{{end}}', '--', id.split('\n')[0]!]);
	return Number(stdout.trim());
}

/**
 * The baseline: greet as a plain service made by hand (`docker service create`, its file bind-mounted,
 * --init as the platform's), to its first answer, COLD_SWARM times (one service each, on a port of its
 * own); then the first one scaled 0 -> 1 by hand, to its first answer, COLD_SWARM times.
 */
async function handService(constraint: string): Promise<Backend> {
	const ports = Array.from({ length: COLD_SWARM }, (_, i) => HAND_PORTS + i);
	const nameOf = (port: number) => `lcf-bench-service-${port}`;
	const created: number[] = [];
	const again: number[] = [];
	try {
		for (const port of ports) {
			const started = performance.now();
			// biome-ignore format: docker flags stay paired with their values
			await execa('docker', ['service', 'create', '--detach', '--no-resolve-image', '--init', '--name', nameOf(port), '--label', 'lowcode-faas.bench=1',
				'--constraint', constraint, '--publish', `mode=host,target=8080,published=${port}`, '--env', 'PORT=8080',
				'--mount', `type=bind,source=${GREET},target=/app/greet.py,readonly`, '--', PythonImage, 'python3', '-u', '/app/greet.py']);
			created.push(await firstAnswer(`http://127.0.0.1:${port}/`, started));
		}
		const name = nameOf(ports[0]!);
		for (let i = 0; i < COLD_SWARM; i++) {
			await execa('docker', ['service', 'scale', '--detach', `${name}=0`]);
			await until(`${name} at zero`, noContainer([`com.docker.swarm.service.name=${name}`]));
			const started = performance.now();
			await execa('docker', ['service', 'scale', '--detach', `${name}=1`]);
			again.push(await firstAnswer(`http://127.0.0.1:${ports[0]}/`, started));
		}
		return { created, again };
	} finally {
		await execa('docker', ['service', 'rm', '--', ...ports.map(nameOf)], { reject: false });
	}
}

const ms = (xs: number[]) => `${f(median(xs), 0)} ms`;
const rate = (s: Stats) => `p50 ${f(s.p50)} ms, ${f(s.rps, 0)} req/s${s.errors ? ` (${s.errors} errors)` : ''}`;

/**
 * Measures the Swarm backend against the Docker backend (`dockerMain`: its figures from the main part)
 * and returns the table's rows; or, when the engine cannot serve as a swarm manager, the line that
 * says why the Swarm column is skipped.
 */
export async function swarmColumn(dockerMain: DockerFigures): Promise<{ rows: string[][]; seconds: number } | { skipped: string }> {
	const started = performance.now();
	let initialised: boolean;
	try {
		initialised = await ensureSwarm();
	} catch (err) {
		return { skipped: `Swarm column skipped: ${(err as Error).message}` };
	}
	try {
		const source = await readFile(GREET, 'utf8');
		// This node only: a test beside the bench may join a worker to the swarm, and a task there is not what is measured here.
		const constraint = `node.id==${(await swarmInfo()).NodeID}`;
		const docker = await withPlatform({}, (url, instance) => coldStarts(url, instance, source));
		const hand = await handService(constraint);
		const swarmEnv = { LOWCODE_FAAS_BACKEND: 'swarm', LOWCODE_FAAS_SWARM_PORTS: PLATFORM_PORTS, LOWCODE_FAAS_SWARM_CONSTRAINTS: constraint };
		const swarm = await withPlatform(swarmEnv, async (url, instance) => {
			const cold = await coldStarts(url, instance, source);
			// Kept warm: the calls straight to its port (the baseline) are none of the platform's, which would park it.
			await createFn(url, 'greet', 'python', source, { min_warm: 1 });
			const first = await invokeRun(url, 'greet', INPUT, COLD_TIMEOUT_MS);
			if (first.status !== 'success') throw new Error(`greet: ${JSON.stringify(first)}`);
			const direct = `http://127.0.0.1:${await publishedPort(instance, 'greet')}/`;
			const warm = [];
			for (const { concurrency } of dockerMain.warm) {
				const d = await load(() => postOk(direct, JSON.stringify(INPUT)), concurrency);
				const p = await load(async () => (await invokeRun(url, 'greet', INPUT)).status === 'success', concurrency);
				warm.push({ concurrency, direct: d, platform: p });
			}
			return { ...cold, warm };
		});
		const byHand = median(dockerMain.dockerRun);
		const vs = (a: number[], b: number[] | number) => f(median(a) / (typeof b === 'number' ? b : median(b)), 1);
		const rows = [
			[
				'cold: new function, first answer',
				`${ms(docker.created)}; by hand: docker run → first answer ${f(byHand, 0)} ms`,
				`${ms(swarm.created)}; by hand: docker service create → first answer ${ms(hand.created)}`,
				`swarm takes ${vs(swarm.created, docker.created)}x the docker backend's time; each vs by hand: docker ${vs(docker.created, byHand)}x, swarm ${vs(swarm.created, hand.created)}x`,
			],
			[
				'cold: idle function, next answer (container removed / service parked at 0)',
				`${ms(docker.again)} (docker run again); by hand: as above`,
				`${ms(swarm.again)} (scaled 0 → 1); by hand: docker service scale 0 → 1 → first answer ${ms(hand.again)}`,
				`swarm takes ${vs(swarm.again, docker.again)}x the docker backend's time; each vs by hand: docker ${vs(docker.again, byHand)}x, swarm ${vs(swarm.again, hand.again)}x`,
			],
			...swarm.warm.map((s, i) => {
				const d = dockerMain.warm[i]!;
				return [
					`warm greet c=${s.concurrency}`,
					`${rate(d.platform)}; container's published port: ${rate(d.direct)}`,
					`${rate(s.platform)}; service's published port: ${rate(s.direct)}`,
					`swarm ${f(s.platform.rps / d.platform.rps)}x docker backend throughput; each vs its port: docker ${f(d.platform.rps / d.direct.rps)}x, swarm ${f(s.platform.rps / s.direct.rps)}x`,
				];
			}),
		];
		return { rows, seconds: (performance.now() - started) / 1000 };
	} finally {
		// Never a swarm that another run (a test beside the bench) initialised.
		if (initialised) await leaveSwarm();
	}
}
