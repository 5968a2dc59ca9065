import type { Language, Sandbox } from './config.js';
import type { SourceRef } from './store.js';

/**
 * Where functions run: the one seam between the scheduler, which decides when an instance of a
 * function starts, serves and goes, and the engine that runs it. Docker containers on this host
 * (docker-backend.ts) are the one implementation today; a backend that starts instances another way
 * (pre-started runtimes, a cluster) implements the same few calls and the scheduler does not change.
 */
export interface Backend {
	/**
	 * Starts an instance and resolves with the base URL it answers HTTP on, once its server answers.
	 * Rejects with a StartFailure that says why for a user (its exit and last output, the image
	 * missing...). `signal` fires when the instance stopped or is no longer wanted: the start ends then.
	 */
	start(spec: InstanceSpec, signal: AbortSignal): Promise<string>;
	/** Removes instances, running or not; one already gone counts as removed. */
	remove(names: string[]): Promise<void>;
	/** Names of every instance this platform instance owns, running or not, tracked or not. */
	list(): Promise<string[]>;
	/**
	 * Calls `onExit` as each instance stops, for as long as the platform runs (also for a starting one
	 * whose stop the backend noticed itself); returns a stop function.
	 */
	watchExits(onExit: (exit: Exit) => void): () => void;
	/** How a stopped instance ended, with its last output: "exited with code 3 (last output: ...)". Never rejects. */
	explain(name: string, memoryMb: number): Promise<string>;
	/** The last `tail` lines an instance printed ('' when there are none or it is gone). */
	logs(name: string, tail: number): Promise<string>;
	/** Null when instances can be started; else why not, for /readyz. */
	problem(): Promise<string | null>;
	/** More for /readyz besides the problem (the Swarm backend: nodes that lack the runtime images). */
	notes?(): Promise<Record<string, unknown>>;
}

/** One instance to start: exactly one version of one function, with its limits and environment. */
export interface InstanceSpec {
	/** Unique among the platform's instances; the backend names the container (or service) so. */
	name: string;
	function: string;
	version: string;
	language: Language;
	/** The source file on this host, and its file name. */
	path: string;
	file: string;
	/** The function's own variables (the backend adds PORT and its runtime's own). */
	env: Readonly<Record<string, string>>;
	memoryMb: number;
	cpus: number;
}

/** An instance stopped. */
export interface Exit {
	name: string;
	exitCode: number;
	/** Epoch ms. */
	at: number;
}

/** The reason the start signal carries when the instance stopped (rather than being let go). */
export class InstanceExited extends Error {
	override name = 'InstanceExited';
}

/** An instance that could not be started or never answered: the message is for the user. */
export class StartFailure extends Error {
	override name = 'StartFailure';
}

/** What an instance of `ref` runs, with the operator's defaults for the limits it does not set. */
export function specOf(ref: SourceRef, name: string, config: { sandbox: Pick<Sandbox, 'memoryMb' | 'cpus'> }): InstanceSpec {
	return {
		name,
		function: ref.name,
		version: ref.version,
		language: ref.language,
		path: ref.path,
		file: ref.file,
		env: ref.settings.env ?? {},
		memoryMb: ref.settings.memory_mb ?? config.sandbox.memoryMb,
		cpus: ref.settings.cpus ?? config.sandbox.cpus,
	};
}
