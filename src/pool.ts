import { randomBytes } from 'node:crypto';
import type { Config } from './config.js';
import { LABEL, type Reach, StartFailure, explainExit, launch, prepareHost } from './container.js';
import { type DieEvent, inspectState, listContainers, removeContainers, watchDieEvents } from './docker.js';
import { ApiError } from './errors.js';
import { ReadyTimeout, waitReady } from './forward.js';
import { log } from './log.js';
import { createOutputKeeper } from './output.js';
import type { SourceRef } from './store.js';

// While a start waits for readiness, the container's state is also read this often, in case an exit
// event was missed (the events stream restarting).
const STATE_CHECK_MS = 500;

/** A function's container as the pool tracks it. */
export interface Container {
	readonly name: string;
	readonly fn: string;
	/** The source version it runs (see SourceRef.version); another version never gets its requests. */
	readonly version: string;
	/** Base URL the platform reaches it on (bridge address or published port); set once `docker run` returns. */
	url: string;
	state: 'starting' | 'ready' | 'draining' | 'dead';
	/** Requests given to it and not yet finished, including those waiting for it to be ready. */
	used: number;
	lastUsed: number;
	/** Settles when its server answers; rejects with a StartFailure. */
	ready: Promise<void>;
	/** Fires when the container stops. */
	readonly exited: AbortController;
	died?: DieEvent;
	/** Once it died: how and its last output, read before the container is removed. */
	why?: Promise<string>;
	/** Its memory limit, for the out-of-memory message. */
	readonly memoryMb: number;
}

/** Every container busy and the wait queue full: the caller should retry shortly. */
export class PoolFull extends ApiError {
	constructor() {
		super('too_many_invocations', 'Every container is busy and the queue is full; retry shortly.', { 'retry-after': '1' });
	}
}

/** The platform is stopping: nothing new is started. */
export class ShuttingDown extends ApiError {
	constructor() {
		super('shutting_down', 'The platform is shutting down.');
	}
}

export interface Lease {
	container: Container;
	/** True when this invocation waited for a container to start. */
	cold: boolean;
}

interface Waiter {
	ref: SourceRef;
	signal: AbortSignal;
	grant(lease: Lease): void;
	fail(err: Error): void;
}

export type Pool = ReturnType<typeof createPool>;

/**
 * Warm containers: each function's containers serve many invocations, each up to `concurrency` at once;
 * a cold function starts one container however many invocations arrive together; replicas and the
 * total are capped, and what cannot be placed waits in a bounded queue.
 */
export function createPool(config: Config) {
	const byFunction = new Map<string, Container[]>();
	const byName = new Map<string, Container>();
	const queue: Waiter[] = [];
	const removals = new Set<Promise<void>>();
	const output = createOutputKeeper();
	/** Starts in flight: shutdown waits for them, so that none creates a container after the last sweep. */
	const launching = new Set<Promise<void>>();
	const labels = { [LABEL]: 'function', [`${LABEL}.instance`]: config.instance };
	let stopEvents: () => void = () => {};
	let sweeper: NodeJS.Timeout | undefined;
	let closed = false;
	/** Functions to keep warm (LOWCODE_FAAS_PREWARM, min_warm), with how many containers; read at each sweep. */
	let warmTargets: () => Promise<Map<string, number>> = async () => new Map();
	let targets = new Map<string, number>();
	let locate: (name: string) => Promise<SourceRef | null> = async () => null;
	/** How containers are reached; null until the network could be readied. */
	let reach: Reach | null = null;

	const live = (c: Container) => c.state === 'starting' || c.state === 'ready';
	const maxReplicasOf = (ref: SourceRef) => Math.min(ref.settings.max_replicas ?? config.maxReplicas, config.maxContainers);

	function replicas(fn: string, version: string): Container[] {
		return (byFunction.get(fn) ?? []).filter((c) => live(c) && c.version === version);
	}

	/** Takes a slot on a container for `ref` if one can be had now: a warm one, a starting one, or a new one. */
	function tryLease(ref: SourceRef): Lease | null {
		const current = replicas(ref.name, ref.version);
		let best: Container | undefined;
		for (const c of current) {
			if (c.used >= config.concurrency) continue;
			// Ready beats starting; among equals, the least loaded.
			if (!best || (c.state === 'ready' && best.state !== 'ready') || (c.state === best.state && c.used < best.used)) best = c;
		}
		if (best) {
			best.used++;
			return { container: best, cold: best.state === 'starting' };
		}
		if (current.length >= maxReplicasOf(ref)) return null;
		if (byName.size >= config.maxContainers && !evictIdle()) return null;
		const c = start(ref);
		c.used++;
		return { container: c, cold: true };
	}

	/** Waits for a slot, in the bounded queue when none is free; 429 when the queue is full. */
	function lease(ref: SourceRef, signal: AbortSignal): Promise<Lease> {
		if (closed) return Promise.reject(new ShuttingDown());
		// Only a fresh lookup retires other versions; queued invocations of the function follow it.
		retireStale(ref.name, ref.version);
		refreshWaiters(ref);
		const now = tryLease(ref);
		if (now) return Promise.resolve(now);
		if (queue.length >= config.maxQueue) {
			return Promise.reject(new PoolFull());
		}
		return new Promise((resolve, reject) => {
			const waiter: Waiter = {
				ref,
				signal,
				grant(granted) {
					signal.removeEventListener('abort', onAbort);
					resolve(granted);
				},
				fail(err) {
					signal.removeEventListener('abort', onAbort);
					reject(err);
				},
			};
			const onAbort = () => {
				const at = queue.indexOf(waiter);
				if (at >= 0) queue.splice(at, 1);
				reject(signal.reason);
			};
			signal.addEventListener('abort', onAbort, { once: true });
			queue.push(waiter);
		});
	}

	let pumping = false;
	let pumpAgain = false;

	/** Hands freed capacity to queued invocations, oldest first. Never re-entered: a grant made inside
	 * another grant's tryLease would place two invocations in one free slot. */
	function pump() {
		if (pumping) {
			pumpAgain = true;
			return;
		}
		pumping = true;
		try {
			do {
				pumpAgain = false;
				for (let i = 0; i < queue.length; ) {
					const waiter = queue[i]!;
					const granted = waiter.signal.aborted ? null : tryLease(waiter.ref);
					if (granted) {
						queue.splice(i, 1);
						waiter.grant(granted);
					} else i++;
				}
			} while (pumpAgain);
		} finally {
			pumping = false;
		}
	}

	/** Gives back a slot; a draining container is removed when its last request ends. */
	function release(c: Container) {
		c.used--;
		c.lastUsed = Date.now();
		if (c.state === 'draining' && c.used <= 0) discard(c);
		else pump();
	}

	/** Stops new requests to a container; it goes once the ones it has are done. */
	function retire(c: Container) {
		if (!live(c)) return;
		c.state = 'draining';
		if (c.used <= 0) discard(c);
	}

	function retireStale(fn: string, version: string) {
		for (const c of byFunction.get(fn) ?? []) if (c.version !== version) retire(c);
	}

	/** Queued invocations of `ref`'s function will run its newest source, not the one they came with. */
	function refreshWaiters(ref: SourceRef) {
		for (const waiter of queue) if (waiter.ref.name === ref.name && waiter.ref.version !== ref.version) waiter.ref = ref;
	}

	/** Retires every container of a function (deleted, or changed). */
	function retireFunction(fn: string) {
		for (const c of byFunction.get(fn) ?? []) retire(c);
		// Its queued invocations must not start the old source once room frees up.
		if (queue.some((waiter) => waiter.ref.name === fn)) {
			void locate(fn).then((ref) => {
				if (ref) refreshWaiters(ref);
				pump();
			}, () => {});
		}
	}

	/** Forgets a container and removes it in the background; its room goes to the queue unless `quiet`. */
	function discard(c: Container, quiet = false) {
		if (!byName.delete(c.name)) return;
		const list = (byFunction.get(c.fn) ?? []).filter((other) => other !== c);
		if (list.length > 0) byFunction.set(c.fn, list);
		else byFunction.delete(c.fn);
		if (c.state !== 'dead') c.state = 'draining';
		c.exited.abort(new Error('removed'));
		track(output.keep(c.fn, c.name).then(() => removeContainers([c.name])).catch(() => {}));
		if (!quiet) pump();
	}

	function track(removal: Promise<void>) {
		removals.add(removal);
		void removal.finally(() => removals.delete(removal));
	}

	/** Makes room under the total cap by removing the least recently used idle container. */
	function evictIdle(): boolean {
		let victim: Container | undefined;
		for (const c of byName.values()) {
			if (c.state === 'ready' && c.used === 0 && (!victim || c.lastUsed < victim.lastUsed)) victim = c;
		}
		if (!victim) return false;
		log('info', 'evicting idle container for room', { container: victim.name, function: victim.fn });
		// Quiet: the room it frees is for the caller, not for whoever is queued.
		discard(victim, true);
		return true;
	}

	function start(ref: SourceRef): Container {
		const c: Container = {
			name: `lcf-${config.instance}-${ref.name}-${randomBytes(4).toString('hex')}`,
			fn: ref.name,
			version: ref.version,
			url: '',
			state: 'starting',
			used: 0,
			lastUsed: Date.now(),
			ready: Promise.resolve(),
			exited: new AbortController(),
			memoryMb: ref.settings.memory_mb ?? config.sandbox.memoryMb,
		};
		c.ready = (async () => {
			c.url = await launch(config, ref, c.name, labels);
			// Retired while `docker run` ran: its removal may have come before the container existed.
			if (!byName.has(c.name)) {
				track(removeContainers([c.name]).catch(() => {}));
				throw new StartFailure('The container was retired before it started.');
			}
			await waitUntilReady(c);
		})();
		byName.set(c.name, c);
		byFunction.set(ref.name, [...(byFunction.get(ref.name) ?? []), c]);
		launching.add(c.ready);
		void c.ready.catch(() => {}).finally(() => launching.delete(c.ready));
		c.ready.then(
			() => {
				if (c.state === 'starting') c.state = 'ready';
				// It may have died or been retired while its readiness was being settled.
				if (c.state === 'dead' || (c.state === 'draining' && c.used <= 0)) discard(c);
				else pump();
			},
			() => {
				c.state = 'dead';
				discard(c);
			},
		);
		return c;
	}

	async function waitUntilReady(c: Container) {
		const checker = setInterval(() => {
			void inspectState(c.name).then(
				(state) => state.running || markDead(c, { name: c.name, exitCode: state.exitCode, at: state.finishedAt || Date.now() }),
				() => {},
			);
		}, STATE_CHECK_MS);
		try {
			await waitReady(c.url, Date.now() + config.readyWaitMs, c.exited.signal);
		} catch (err) {
			if (err instanceof ReadyTimeout) {
				throw new StartFailure(`The function's server did not answer on port ${config.containerPort} within ${config.readyWaitMs / 1000} s.`);
			}
			throw new StartFailure(`The function ${(await c.why) ?? 'was removed'} before answering.`);
		} finally {
			clearInterval(checker);
		}
	}

	/** A container stopped: its requests fail now, and it is replaced on the next invocation. */
	function markDead(c: Container, event: DieEvent) {
		if (c.died) return;
		c.died = event;
		const starting = c.state === 'starting';
		if (live(c)) log('warn', 'container exited', { container: c.name, function: c.fn, exit_code: event.exitCode });
		c.state = 'dead';
		const why = explainExit(c.name, c.memoryMb);
		c.why = why;
		c.exited.abort(new Error('exited'));
		// A starting one is discarded by its failed start; either way, after its logs were read.
		if (!starting) void why.finally(() => discard(c));
	}

	function onDie(event: DieEvent) {
		const c = byName.get(event.name);
		if (c) markDead(c, event);
	}

	/**
	 * Removes this instance's containers that the pool does not know: left by a previous run, created by a
	 * `docker run` that was cut short, or whose removal failed.
	 */
	async function reconcile() {
		const names = await listContainers(labels);
		const unknown = names.filter((name) => !byName.has(name));
		if (unknown.length === 0) return;
		log('info', 'removing containers the pool does not track', { count: unknown.length });
		await removeContainers(unknown);
	}

	/** Removes idle containers past the idle time, keeps functions warm that asked to be, removes strays. */
	async function sweep() {
		await reconcile().catch((err) => log('warn', 'cannot list containers', { error: (err as Error).message }));
		targets = await warmTargets();
		const now = Date.now();
		for (const c of [...byName.values()]) {
			if (c.state !== 'ready' || c.used > 0 || now - c.lastUsed < config.idleMs) continue;
			if (replicas(c.fn, c.version).length <= (targets.get(c.fn) ?? 0)) continue;
			log('info', 'removing idle container', { container: c.name, function: c.fn });
			discard(c);
		}
		for (const [fn, count] of targets) await warm(fn, count);
	}

	/** Starts containers for `fn` until it has `count` for its current source (within the caps). */
	async function warm(fn: string, count: number) {
		const ref = await locate(fn);
		if (!ref || closed) return;
		retireStale(fn, ref.version);
		const want = Math.min(count, maxReplicasOf(ref));
		for (let have = replicas(fn, ref.version).length; have < want && byName.size < config.maxContainers; have++) {
			start(ref).ready.catch((err: Error) => log('warn', 'keeping warm failed', { function: fn, error: err.message }));
		}
	}

	/**
	 * Removes what a previous run of this instance left (after a kill -9), follows container exits,
	 * and starts the idle sweep and the prewarmed functions.
	 */
	async function init(options: { locate: (name: string) => Promise<SourceRef | null>; warmTargets: () => Promise<Map<string, number>> }) {
		locate = options.locate;
		warmTargets = options.warmTargets;
		reach = await prepareHost(config);
		// Docker may be down: the API serves regardless, and the sweep removes leftovers once it is back.
		try {
			const leftovers = await listContainers(labels);
			if (leftovers.length > 0) {
				log('info', 'removing containers left by a previous run', { count: leftovers.length });
				await removeContainers(leftovers);
			}
		} catch (err) {
			log('warn', 'cannot remove containers left by a previous run', { error: (err as Error).message });
		}
		stopEvents = watchDieEvents(labels, onDie);
		targets = await warmTargets();
		const every = Math.max(250, Math.min(5_000, config.idleMs / 4));
		sweeper = setInterval(() => void sweep().catch((err) => log('warn', 'sweep failed', { error: String(err) })), every);
		sweeper.unref();
		await Promise.all([...targets].map(([fn, count]) => warm(fn, count)));
	}

	/** Removes every container of this instance and stops watching; queued invocations are refused. */
	async function close() {
		closed = true;
		clearInterval(sweeper);
		for (const waiter of queue.splice(0)) waiter.fail(new ShuttingDown());
		const names = [...byName.keys()];
		for (const c of byName.values()) {
			c.state = 'dead';
			c.exited.abort(new Error('shutting down'));
		}
		byName.clear();
		byFunction.clear();
		// Bounded by docker run's own time limit.
		await Promise.allSettled([...launching]);
		await Promise.all([...removals]);
		await removeContainers(names).catch(() => {});
		// A start still in flight may have created its container after the list was taken.
		const stragglers = await listContainers(labels).catch(() => []);
		await removeContainers(stragglers).catch(() => {});
		stopEvents();
	}

	/** Waits for every removal in flight: for tests and shutdown. */
	async function drain() {
		while (removals.size > 0) await Promise.all([...removals]);
	}

	function snapshot() {
		return [...byName.values()].map((c) => ({ name: c.name, fn: c.fn, state: c.state, used: c.used }));
	}

	/** A deleted function: its containers go, and so does the output kept from removed ones. */
	function forget(fn: string) {
		retireFunction(fn);
		output.forget(fn);
	}

	/** What the function's containers printed: recently removed ones first, then the live ones. */
	function logs(fn: string, tail: number): Promise<string> {
		return output.render(fn, (byFunction.get(fn) ?? []).filter((c) => c.state !== 'dead').map((c) => c.name), tail);
	}

	return { init, lease, release, reach: () => reach, retire, retireFunction, forget, close, drain, snapshot, logs, queueDepth: () => queue.length };
}
