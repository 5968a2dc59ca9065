import { randomBytes } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scope } from './abort.js';
import { type Backend, type Exit, type InstanceSpec, StartFailure } from './backend.js';
import type { Config, Language } from './config.js';
import { removeContainers, renameContainer, updateLimits } from './docker.js';
import { type DockerBackend, LABEL, commandFor } from './docker-backend.js';
import { SOURCE_MODE, dropTemps, privateDir, readRegular, writeTemp } from './files.js';
import { log } from './log.js';
import { envProblem } from './settings.js';

/**
 * Stem cells: runtime containers started before any function needs them, each running a loader of ours
 * (runtime/loader.*) that waits to be handed one function. A cold start claims one, hands it the
 * function's source and env, and is ready as soon as the function's server answers: tens of ms instead
 * of a `docker run`. A decorator of the Docker backend: when no stem cell fits, the classic path runs.
 *
 * A claimed container is renamed to the instance's name, so that every later call by that name (remove,
 * explain, logs, exit events) is the Docker backend's as for any instance, and `docker ps` tells the
 * truth. It serves that one function version for its life and is removed like any instance.
 */

const LANGUAGES: Language[] = ['python', 'deno'];
const LOADER_DIR = fileURLToPath(new URL('../../runtime/', import.meta.url));
const LOADER_FILE: Record<Language, string> = { python: 'loader.py', deno: 'loader.ts' };
const LOAD_PATH = '__lowcode_faas/load';
// A stem cell that could not be started is tried again after this long, not in a loop.
const RETRY_MS = 5_000;
// The handoff is one small POST to a process that only waits for it.
const HANDOFF_TIMEOUT_MS = 5_000;

interface Cell {
	name: string;
	language: Language;
	url: string;
	/** Proves to the loader that the handoff comes from the platform. */
	key: string;
}

export type StartPath = 'stem' | 'classic';

export interface StemCells extends Backend {
	/** Starts filling the pools: after the leftovers of a previous run were removed. */
	begin(): Promise<void>;
	/** Stem cells ready to be claimed, by language. */
	ready(): Record<Language, number>;
	/** Names of the stem cells the pool holds (ready or starting): not instances, not strays. */
	names(): string[];
	/** Instances started, by path, since the platform started. */
	starts(): Record<StartPath, number>;
	/** Removes every stem cell and starts no more. */
	close(): Promise<void>;
}

/**
 * `instances` tells how many instances the scheduler has: stem cells fill only while instances and stem
 * cells together are under LOWCODE_FAAS_MAX_CONTAINERS, and a classic start over the cap removes free
 * stem cells, so that they count against it.
 */
export function createStemCells(config: Config, docker: DockerBackend, instances: () => number): StemCells {
	const free: Record<Language, Cell[]> = { python: [], deno: [] };
	const starting: Record<Language, Set<string>> = { python: new Set(), deno: new Set() };
	/** Claimed stem names → instance names, until the instance is removed: an exit reported under the old name (the function died before the rename was done) is the instance's. */
	const claimedAs = new Map<string, string>();
	const counts: Record<StartPath, number> = { stem: 0, classic: 0 };
	const closing = new AbortController();
	const launching = new Set<Promise<void>>();
	/** The languages whose loader is in place (see placeLoaders). */
	let languages: Language[] = [];
	const loaderDir = join(config.dataDir, '.stem');
	let begun = false;
	let retry: NodeJS.Timeout | undefined;
	/** After a stem cell failed to start, none is started before this time (epoch ms). */
	let pausedUntil = 0;

	const stemCount = () => LANGUAGES.reduce((n, l) => n + free[l].length + starting[l].size, 0);

	/** Starts stem cells until each language has its count, within the total cap. */
	function fill() {
		if (!begun || closing.signal.aborted || Date.now() < pausedUntil) return;
		for (const language of languages) {
			while (free[language].length + starting[language].size < config.stemCells && instances() + stemCount() < config.maxContainers) {
				const started = launchCell(language);
				launching.add(started);
				void started.finally(() => launching.delete(started));
			}
		}
	}

	async function launchCell(language: Language): Promise<void> {
		const name = `lcf-${config.instance}-stem.${language}-${randomBytes(4).toString('hex')}`;
		const key = randomBytes(24).toString('hex');
		// In /app, where a function's file lies: the folder then exists (read-only) as for a function's own
		// container. A dot name no function file can have.
		const target = `/app/.lowcode-faas-${LOADER_FILE[language]}`;
		starting[language].add(name);
		try {
			const url = await docker.launch({
				name,
				language,
				labels: { [`${LABEL}.stem`]: language },
				env: { LOWCODE_FAAS_STEM_KEY: key },
				mounts: [{ source: join(loaderDir, LOADER_FILE[language]), target, readonly: true }],
				command: commandFor(language, target),
				memoryMb: config.sandbox.memoryMb,
				cpus: config.sandbox.cpus,
				// Not cut short at shutdown: a `docker run` killed midway may still create its container after
				// the removal below; one that finished is surely removed.
			});
			await docker.ready(name, config.sandbox.memoryMb, url, closing.signal, true);
			if (closing.signal.aborted || !starting[language].has(name)) throw new Error('no longer wanted');
			free[language].push({ name, language, url, key });
			log('debug', 'stem cell ready', { container: name, language });
		} catch (err) {
			await removeContainers([name]).catch(() => {});
			if (!closing.signal.aborted) {
				log('warn', 'stem cell could not be started', { language, error: (err as Error).message });
				pausedUntil = Date.now() + RETRY_MS;
				retry ??= setTimeout(() => {
					retry = undefined;
					fill();
				}, RETRY_MS + 50).unref();
			}
		} finally {
			starting[language].delete(name);
		}
	}

	/**
	 * The function's source when a stem cell can run it as its own container would; null sends it the
	 * classic way: its language has no stem cells, docker's env file refuses its env (the classic path says
	 * why), its file cannot be read safely, or it is a Deno module that starts only as the main module
	 * (`import.meta.main` is false in an imported one).
	 */
	async function stemSource(spec: InstanceSpec): Promise<Buffer | null> {
		if (closing.signal.aborted || !languages.includes(spec.language) || envProblem(spec.env)) return null;
		const read = await readRegular(spec.path, config.maxSourceBytes);
		if (read.kind !== 'ok') return null;
		if (spec.language === 'deno' && read.data.includes('import.meta.main')) return null;
		return read.data;
	}

	async function start(spec: InstanceSpec, signal: AbortSignal): Promise<string> {
		const source = await stemSource(spec);
		// Taken from the free ones at once: a stem cell is never handed out twice.
		const cell = source ? (free[spec.language].shift() ?? null) : null;
		if (cell && source) {
			claimedAs.set(cell.name, spec.name);
			// Its replacement starts while the function loads.
			fill();
			const url = await handOver(cell, spec, source, signal).catch(async (err: Error) => {
				log('warn', 'stem cell handoff failed; starting the classic way', { container: cell.name, function: spec.function, error: err.message });
				// Under either name: the rename may or may not have happened.
				await removeContainers([cell.name, spec.name]).catch(() => {});
				claimedAs.delete(cell.name);
				return null;
			});
			if (url) {
				counts.stem++;
				return docker.ready(spec.name, spec.memoryMb, url, signal);
			}
		}
		if (signal.aborted) throw new StartFailure('The container was let go before it started.');
		makeRoom();
		counts.classic++;
		return docker.start(spec, signal);
	}

	/** The function's limits, its new name, then its source and env: resolves once the loader took them. */
	async function handOver(cell: Cell, spec: InstanceSpec, source: Buffer, signal: AbortSignal): Promise<string> {
		// Exact and a few tens of ms (measured): a function's own limits are set before its code runs.
		if (spec.memoryMb !== config.sandbox.memoryMb || spec.cpus !== config.sandbox.cpus) {
			await updateLimits(cell.name, spec.memoryMb, spec.cpus, { signal });
		}
		// Not cut short: once handed over, the function may stop at once (its exit then aborts `signal`), and
		// its container must still take its instance's name, for explain() and removal.
		const renamed = renameContainer(cell.name, spec.name);
		const body = JSON.stringify({ source_base64: source.toString('base64'), file: spec.file, env: spec.env, version: spec.version });
		const [status] = await Promise.all([post(cell.url + LOAD_PATH, body, cell.key, signal), renamed]);
		if (status !== 200) throw new Error(`the loader answered ${status}`);
		return cell.url;
	}

	/** Removes free stem cells while the instance starting the classic way (counted by now) takes the total past the cap. */
	function makeRoom() {
		const surplus: string[] = [];
		for (const language of languages) {
			while (instances() + stemCount() > config.maxContainers && free[language].length > 0) surplus.push(free[language].shift()!.name);
		}
		if (surplus.length > 0) void removeContainers(surplus).catch(() => {});
	}

	async function remove(names: string[]) {
		const gone = new Set(names);
		for (const [stem, instance] of claimedAs) if (gone.has(instance)) claimedAs.delete(stem);
		await docker.remove(names);
		// Room may have come back under the cap.
		fill();
	}

	/** The Docker backend's instances, without the stem cells the pool still holds. */
	async function list(): Promise<string[]> {
		const mine = new Set(names());
		for (const name of claimedAs.keys()) mine.add(name);
		return (await docker.list()).filter((name) => !mine.has(name));
	}

	function watchExits(onExit: (exit: Exit) => void): () => void {
		return docker.watchExits((exit) => {
			const instance = claimedAs.get(exit.name);
			if (instance) return onExit({ ...exit, name: instance });
			for (const language of languages) {
				const at = free[language].findIndex((cell) => cell.name === exit.name);
				if (at < 0) continue;
				// A stem cell died idle: it is removed and replaced.
				log('warn', 'stem cell exited while idle', { container: exit.name, exit_code: exit.exitCode });
				free[language].splice(at, 1);
				void removeContainers([exit.name])
					.catch(() => {})
					.then(fill);
				return;
			}
			onExit(exit);
		});
	}

	function names(): string[] {
		return LANGUAGES.flatMap((l) => [...free[l].map((cell) => cell.name), ...starting[l]]);
	}

	async function close() {
		closing.abort(new Error('shutting down'));
		clearTimeout(retry);
		await Promise.allSettled([...launching]);
		const left = names();
		for (const l of LANGUAGES) free[l] = [];
		await removeContainers(left).catch(() => {});
	}

	return {
		start,
		remove,
		list,
		watchExits,
		explain: (name, memoryMb) => docker.explain(name, memoryMb),
		logs: (name, tail) => docker.logs(name, tail),
		problem: () => docker.problem(),
		async begin() {
			languages = await placeLoaders(loaderDir);
			begun = true;
			fill();
		},
		ready: () => ({ python: free.python.length, deno: free.deno.length }),
		names,
		starts: () => ({ ...counts }),
		close,
	};
}

/**
 * Copies the loaders from the install (runtime/) into the data folder, where the Docker engine sees them
 * as it sees the functions' files (the platform itself may run in a container), readable by the
 * function's user whatever the umask. Returns the languages whose loader is in place.
 */
async function placeLoaders(dir: string): Promise<Language[]> {
	const placed: Language[] = [];
	try {
		await privateDir(dir);
		await dropTemps(dir);
	} catch (err) {
		log('warn', 'stem cells off: their folder cannot be made', { folder: dir, error: (err as Error).message });
		return placed;
	}
	for (const language of LANGUAGES) {
		const file = LOADER_FILE[language];
		try {
			const temp = await writeTemp(dir, file, await readFile(LOADER_DIR + file, 'utf8'), SOURCE_MODE);
			await rename(temp, join(dir, file));
			placed.push(language);
		} catch (err) {
			log('warn', 'stem cells off for a language: its loader cannot be put in place', { language, error: (err as Error).message });
		}
	}
	return placed;
}

/** POSTs the handoff to the loader; resolves with the status. */
function post(url: string, body: string, key: string, signal: AbortSignal): Promise<number> {
	const bounded = scope([signal], HANDOFF_TIMEOUT_MS);
	return new Promise<number>((resolve, reject) => {
		const req = request(
			url,
			{
				method: 'POST',
				agent: false,
				signal: bounded.signal,
				headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close', 'x-lowcode-faas-key': key },
			},
			(res) => {
				res.resume();
				resolve(res.statusCode ?? 0);
			},
		);
		req.on('error', reject);
		req.end(body);
	}).finally(() => bounded.dispose());
}
