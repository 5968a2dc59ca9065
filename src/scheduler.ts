import { randomBytes } from 'node:crypto';
import { type Backend, type Exit, InstanceExited, StartFailure, specOf } from './backend.js';
import type { Config, Sandbox } from './config.js';
import { ApiError } from './errors.js';
import { log } from './log.js';
import type { SourceRef } from './store.js';

/** A running (or starting) instance of one version of a function, as the scheduler tracks it. */
export interface Instance {
	readonly name: string;
	readonly fn: string;
	/** The source version it runs (see SourceRef.version); another version never gets its requests. */
	readonly version: string;
	/** Which numbered version of the source that is (SourceRef.versionNumber), for each RunResult it serves. */
	readonly versionNumber: number | null;
	/** Base URL the platform reaches it on; set once it is ready. */
	url: string;
	state: 'starting' | 'ready' | 'draining' | 'dead';
	/** Requests given to it and not yet finished, including those waiting for it to be ready. */
	used: number;
	lastUsed: number;
	/** Settles when its server answers; rejects with a StartFailure. */
	ready: Promise<void>;
	/** Fires when the instance stops or is let go. */
	readonly exited: AbortController;
	died?: Exit;
	/** Once it died after starting: how and its last output, read before it is removed. */
	why?: Promise<string>;
	/** Its memory limit, for the out-of-memory message. */
	readonly memoryMb: number;
}

export interface Lease {
	instance: Instance;
	/** True when this invocation waited for an instance to start. */
	cold: boolean;
}

/** Every instance busy and the wait queue full: the caller should retry shortly. */
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

interface Waiter {
	ref: SourceRef;
	signal: AbortSignal;
	grant(lease: Lease): void;
	fail(err: Error): void;
}

/** The limits the scheduler works within (a Config has them all). */
export type Limits = Pick<Config, 'instance' | 'concurrency' | 'maxReplicas' | 'maxContainers' | 'maxQueue' | 'idleMs'> & { sandbox: Pick<Sandbox, 'memoryMb' | 'cpus'> };

export interface SchedulerOptions {
	/** Called before an instance is removed, e.g. to keep its last output. */
	beforeRemove?: (fn: string, name: string) => Promise<void>;
	/** The clock for idle times; tests pass their own. */
	now?: () => number;
}

export type Scheduler = ReturnType<typeof createScheduler>;

/**
 * Decides which instance serves each invocation, and when instances start and go: each serves up to
 * `concurrency` invocations at once; a cold function starts one instance however many invocations
 * arrive together; replicas and the total are capped, and what cannot be placed waits in a bounded
 * queue. Instances run on `backend`; nothing here knows it is Docker.
 */
export function createScheduler(limits: Limits, backend: Backend, options: SchedulerOptions = {}) {
	const now = options.now ?? Date.now;
	const beforeRemove = options.beforeRemove ?? (async () => {});
	const byFunction = new Map<string, Instance[]>();
	const byName = new Map<string, Instance>();
	const queue: Waiter[] = [];
	const removals = new Set<Promise<void>>();
	/** Instances being removed: the upkeep must not remove them a second time. */
	const removing = new Set<string>();
	/** Starts in flight: shutdown waits for them, so that none creates an instance after the last removal. */
	const launching = new Set<Promise<void>>();
	let closed = false;
	const stopExits = backend.watchExits(onExit);

	const live = (i: Instance) => i.state === 'starting' || i.state === 'ready';
	const maxReplicasOf = (ref: SourceRef) => Math.min(ref.settings.max_replicas ?? limits.maxReplicas, limits.maxContainers);

	function replicas(fn: string, version: string): Instance[] {
		return (byFunction.get(fn) ?? []).filter((i) => live(i) && i.version === version);
	}

	/** Takes a slot on an instance of `ref` if one can be had now: a warm one, a starting one, or a new one. */
	function tryLease(ref: SourceRef): Lease | null {
		const current = replicas(ref.name, ref.version);
		let best: Instance | undefined;
		for (const i of current) {
			if (i.used >= limits.concurrency) continue;
			// Ready beats starting; among equals, the least loaded.
			if (!best || (i.state === 'ready' && best.state !== 'ready') || (i.state === best.state && i.used < best.used)) best = i;
		}
		if (best) {
			best.used++;
			return { instance: best, cold: best.state === 'starting' };
		}
		if (current.length >= maxReplicasOf(ref)) return null;
		if (byName.size >= limits.maxContainers && !evictIdle()) return null;
		const i = start(ref);
		i.used++;
		return { instance: i, cold: true };
	}

	/** Waits for a slot, in the bounded queue when none is free; PoolFull when the queue is full. */
	function lease(ref: SourceRef, signal: AbortSignal): Promise<Lease> {
		if (closed) return Promise.reject(new ShuttingDown());
		// Only a fresh lookup retires other versions; queued invocations of the function follow it.
		retireStale(ref.name, ref.version);
		refreshWaiters(ref);
		const granted = tryLease(ref);
		if (granted) return Promise.resolve(granted);
		if (queue.length >= limits.maxQueue) return Promise.reject(new PoolFull());
		return new Promise((resolve, reject) => {
			const waiter: Waiter = {
				ref,
				signal,
				grant(lease) {
					signal.removeEventListener('abort', onAbort);
					resolve(lease);
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
				for (let at = 0; at < queue.length; ) {
					const waiter = queue[at]!;
					const granted = waiter.signal.aborted ? null : tryLease(waiter.ref);
					if (granted) {
						queue.splice(at, 1);
						waiter.grant(granted);
					} else at++;
				}
			} while (pumpAgain);
		} finally {
			pumping = false;
		}
	}

	/** Gives back a slot; a draining instance is removed when its last request ends. */
	function release(i: Instance) {
		i.used--;
		i.lastUsed = now();
		if (i.state === 'draining' && i.used <= 0) discard(i);
		else pump();
	}

	/** Stops new requests to an instance; it goes once the ones it has are done. */
	function retire(i: Instance) {
		if (!live(i)) return;
		i.state = 'draining';
		if (i.used <= 0) discard(i);
	}

	function retireStale(fn: string, version: string) {
		for (const i of byFunction.get(fn) ?? []) if (i.version !== version) retire(i);
	}

	/** Queued invocations of `ref`'s function will run its newest source, not the one they came with. */
	function refreshWaiters(ref: SourceRef) {
		for (const waiter of queue) if (waiter.ref.name === ref.name && waiter.ref.version !== ref.version) waiter.ref = ref;
	}

	/**
	 * Retires every instance of a function (deleted, or changed). `newest` is its source now, if it has
	 * one: its queued invocations must not start the old source once room frees up.
	 */
	function retireFunction(fn: string, newest: SourceRef | null = null) {
		for (const i of byFunction.get(fn) ?? []) retire(i);
		if (newest) refreshWaiters(newest);
		pump();
	}

	/** Forgets an instance and removes it in the background; its room goes to the queue unless `quiet`. */
	function discard(i: Instance, quiet = false) {
		if (!byName.delete(i.name)) return;
		const list = (byFunction.get(i.fn) ?? []).filter((other) => other !== i);
		if (list.length > 0) byFunction.set(i.fn, list);
		else byFunction.delete(i.fn);
		if (i.state !== 'dead') i.state = 'draining';
		i.exited.abort(new Error('removed'));
		removing.add(i.name);
		const removal = beforeRemove(i.fn, i.name)
			.catch(() => {})
			.then(() => backend.remove([i.name]))
			.finally(() => removing.delete(i.name));
		track(removal);
		if (!quiet) pump();
	}

	function track(removal: Promise<void>) {
		// A failed removal is logged by the backend; the sweep removes what is left.
		const tracked = removal.catch(() => {});
		removals.add(tracked);
		void tracked.finally(() => removals.delete(tracked));
	}

	/** Makes room under the total cap by removing the least recently used idle instance. */
	function evictIdle(): boolean {
		let victim: Instance | undefined;
		for (const i of byName.values()) {
			if (i.state === 'ready' && i.used === 0 && (!victim || i.lastUsed < victim.lastUsed)) victim = i;
		}
		if (!victim) return false;
		log('info', 'evicting idle container for room', { container: victim.name, function: victim.fn });
		// Quiet: the room it frees is for the caller, not for whoever is queued.
		discard(victim, true);
		return true;
	}

	function start(ref: SourceRef): Instance {
		const i: Instance = {
			name: `lcf-${limits.instance}-${ref.name}-${randomBytes(4).toString('hex')}`,
			fn: ref.name,
			version: ref.version,
			versionNumber: ref.versionNumber,
			url: '',
			state: 'starting',
			used: 0,
			lastUsed: now(),
			ready: Promise.resolve(),
			exited: new AbortController(),
			memoryMb: ref.settings.memory_mb ?? limits.sandbox.memoryMb,
		};
		const started = backend.start(specOf(ref, i.name, limits), i.exited.signal);
		i.ready = started.then((url) => {
			i.url = url;
			if (!byName.has(i.name)) throw new StartFailure('The container was retired before it started.');
		});
		byName.set(i.name, i);
		byFunction.set(ref.name, [...(byFunction.get(ref.name) ?? []), i]);
		launching.add(i.ready);
		void i.ready.catch(() => {}).finally(() => launching.delete(i.ready));
		i.ready.then(
			() => {
				if (i.state === 'starting') i.state = 'ready';
				// It may have died or been retired while its readiness was being settled.
				if (i.state === 'dead' || (i.state === 'draining' && i.used <= 0)) discard(i);
				else pump();
			},
			() => {
				// Let go while starting: its removal may have come before the backend created it.
				if (!byName.has(i.name)) track(backend.remove([i.name]));
				i.state = 'dead';
				discard(i);
			},
		);
		return i;
	}

	/** An instance stopped: its requests fail now, and it is replaced on the next invocation. */
	function onExit(exit: Exit) {
		const i = byName.get(exit.name);
		if (!i || i.died) return;
		i.died = exit;
		const starting = i.state === 'starting';
		if (live(i)) log('warn', 'container exited', { container: i.name, function: i.fn, exit_code: exit.exitCode });
		i.state = 'dead';
		i.exited.abort(new InstanceExited('exited'));
		// A starting one's failed start says why, and discards it.
		if (starting) return;
		// A backend that fails to say why still lets the instance go.
		const why = backend.explain(i.name, i.memoryMb).catch(() => 'stopped');
		i.why = why;
		void why.finally(() => discard(i));
	}

	/** Starts instances of `ref` until it has `count` (within the caps). */
	function warm(ref: SourceRef, count: number) {
		if (closed) return;
		retireStale(ref.name, ref.version);
		const want = Math.min(count, maxReplicasOf(ref));
		for (let have = replicas(ref.name, ref.version).length; have < want && byName.size < limits.maxContainers; have++) {
			start(ref).ready.catch((err: Error) => log('warn', 'keeping warm failed', { function: ref.name, error: err.message }));
		}
	}

	/** Removes instances idle for the idle time, except the `keep` (function → count) asked to stay warm. */
	function removeIdle(keep: ReadonlyMap<string, number>) {
		const at = now();
		for (const i of [...byName.values()]) {
			if (i.state !== 'ready' || i.used > 0 || at - i.lastUsed < limits.idleMs) continue;
			if (replicas(i.fn, i.version).length <= (keep.get(i.fn) ?? 0)) continue;
			log('info', 'removing idle container', { container: i.name, function: i.fn });
			discard(i);
		}
	}

	/** Removes every instance; queued invocations are refused and no new one starts. */
	async function close() {
		closed = true;
		for (const waiter of queue.splice(0)) waiter.fail(new ShuttingDown());
		const names = [...byName.keys()];
		for (const i of byName.values()) {
			i.state = 'dead';
			i.exited.abort(new Error('shutting down'));
		}
		byName.clear();
		byFunction.clear();
		// Bounded by the backend's own start time limit.
		await Promise.allSettled([...launching]);
		await drain();
		await backend.remove(names).catch(() => {});
		// A start still in flight may have created its instance after the names were taken.
		const stragglers = await backend.list().catch(() => []);
		await backend.remove(stragglers).catch(() => {});
		stopExits();
	}

	/** Waits for every removal in flight: for tests and shutdown. */
	async function drain() {
		while (removals.size > 0) await Promise.all([...removals]);
	}

	function snapshot() {
		return [...byName.values()].map((i) => ({ name: i.name, fn: i.fn, state: i.state, used: i.used }));
	}

	/** Names of a function's instances that are not known to have stopped, for reading their output. */
	function liveNames(fn: string): string[] {
		return (byFunction.get(fn) ?? []).filter((i) => i.state !== 'dead').map((i) => i.name);
	}

	return {
		lease,
		release,
		retire,
		retireFunction,
		warm,
		removeIdle,
		/** Whether the scheduler knows the instance (serving, starting, or being removed). */
		tracks: (name: string) => byName.has(name) || removing.has(name),
		close,
		drain,
		snapshot,
		liveNames,
		queueDepth: () => queue.length,
	};
}
