// The scheduler logs what it does; a unit test's output is its verdict alone.
process.env.LOWCODE_FAAS_LOG_LEVEL ??= 'silent';

import type { Backend, Exit, InstanceSpec } from '../../src/backend.js';
import type { Limits } from '../../src/scheduler.js';
import type { SourceRef } from '../../src/store.js';

/** A start the test settles by hand. */
export interface PendingStart {
	spec: InstanceSpec;
	signal: AbortSignal;
	answer(url?: string): void;
	fail(err: Error): void;
}

/**
 * A Backend in memory, for unit tests of the scheduler and its upkeep: starts wait until the test
 * answers or fails them, exits happen when the test says, and every call is recorded. No Docker.
 */
export function fakeBackend() {
	const starts: PendingStart[] = [];
	const removed: string[] = [];
	const explained: string[] = [];
	/** What the engine holds: started and not removed (the test may add strays). */
	const existing = new Set<string>();
	let onExit: ((exit: Exit) => void) | null = null;
	let stopped = false;

	const backend: Backend = {
		start(spec, signal) {
			existing.add(spec.name);
			return new Promise<string>((resolve, reject) => {
				starts.push({ spec, signal, answer: (url = `http://${spec.name}/`) => resolve(url), fail: reject });
			});
		},
		async remove(names) {
			for (const name of names) {
				existing.delete(name);
				removed.push(name);
			}
		},
		async list() {
			return [...existing];
		},
		watchExits(listener) {
			onExit = listener;
			return () => {
				stopped = true;
			};
		},
		async explain(name) {
			explained.push(name);
			return 'exited with code 3 (last output: boom)';
		},
		async logs() {
			return '';
		},
		async problem() {
			return null;
		},
	};

	return {
		backend,
		starts,
		removed,
		explained,
		existing,
		/** The instance `name` stops, as the engine would report it. */
		exit(name: string, exitCode = 3, at = Date.now()) {
			onExit?.({ name, exitCode, at });
		},
		watching: () => onExit !== null && !stopped,
	};
}

export const limits = (overrides: Partial<Limits> = {}): Limits => ({
	instance: 'unit',
	concurrency: 1,
	maxReplicas: 2,
	maxContainers: 4,
	maxQueue: 2,
	idleMs: 60_000,
	sandbox: { memoryMb: 256, cpus: 1 },
	...overrides,
});

export const ref = (name: string, version = 'v1', settings: SourceRef['settings'] = {}): SourceRef => ({
	name,
	language: 'python',
	path: `/nowhere/${name}.py`,
	file: `${name}.py`,
	size: 1,
	mtime: new Date(0),
	version,
	versionNumber: 1,
	settings,
});

/** Lets promise callbacks run: the scheduler's reactions to a settled start are microtasks. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock the test moves. */
export function manualClock(start = 1_000_000) {
	let now = start;
	return { now: () => now, advance: (ms: number) => void (now += ms) };
}
