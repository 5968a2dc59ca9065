import type { Backend } from './backend.js';
import type { Config } from './config.js';
import { log } from './log.js';
import type { Scheduler } from './scheduler.js';
import type { SourceRef } from './store.js';

export interface KeepWarmSources {
	/** The function's current source, or null (gone, or a file not safe to run). */
	locate(name: string): Promise<SourceRef | null>;
	/** Functions to keep warm, with how many instances each; asked again at every sweep. */
	targets(): Promise<ReadonlyMap<string, number>>;
}

/**
 * The scheduler's upkeep, on a timer: removes instances idle past LOWCODE_FAAS_IDLE_S, keeps the
 * functions that asked to be warm (min_warm, LOWCODE_FAAS_PREWARM) started, and removes instances the
 * backend has that the scheduler does not track (left by a kill -9, a start cut short, a failed removal).
 */
export function createKeepWarm(config: Config, scheduler: Scheduler, backend: Backend, sources: KeepWarmSources) {
	let timer: NodeJS.Timeout | undefined;

	/** Removes the instances the scheduler does not track. */
	async function reconcile() {
		const unknown = (await backend.list()).filter((name) => !scheduler.tracks(name));
		if (unknown.length === 0) return;
		log('info', 'removing containers the pool does not track', { count: unknown.length });
		await backend.remove(unknown);
	}

	async function warm(targets: ReadonlyMap<string, number>) {
		for (const [fn, count] of targets) {
			const ref = await sources.locate(fn);
			if (ref) scheduler.warm(ref, count);
		}
	}

	async function sweep() {
		await reconcile().catch((err) => log('warn', 'cannot list containers', { error: (err as Error).message }));
		const targets = await sources.targets();
		scheduler.removeIdle(targets);
		await warm(targets);
	}

	/**
	 * Removes what a previous run of this platform instance left (after a kill -9), then starts the
	 * functions to keep warm and the timer. Docker may be down: the API serves regardless, and the
	 * sweep removes leftovers once it is back.
	 */
	async function start() {
		try {
			const leftovers = await backend.list();
			if (leftovers.length > 0) {
				log('info', 'removing containers left by a previous run', { count: leftovers.length });
				await backend.remove(leftovers);
			}
		} catch (err) {
			log('warn', 'cannot remove containers left by a previous run', { error: (err as Error).message });
		}
		const every = Math.max(250, Math.min(5_000, config.idleMs / 4));
		timer = setInterval(() => void sweep().catch((err) => log('warn', 'sweep failed', { error: String(err) })), every);
		timer.unref();
		await warm(await sources.targets());
	}

	function stop() {
		clearInterval(timer);
	}

	return { start, sweep, stop };
}
