import { createHash } from 'node:crypto';
import type { InstanceSpec } from './backend.js';
import type { Config } from './config.js';
import { LABEL } from './docker-backend.js';
import type { ServiceSpec, TaskState } from './swarm.js';

/** What a function's Swarm service is made of: its runtime entry, command, variables and sandbox; how a task ended, in words. */

// Lines of a task's output quoted in the message that says why it stopped.
export const LOG_LINES = 10;
/** Swarm refuses a config of 1,024,000 bytes or more (the API takes sources up to 1 MiB). */
export const MAX_CONFIG_BYTES = 1_024_000 - 1;
/** Swarm refuses a secret of 512,000 bytes or more (the API takes 1 MiB of env, and JSON escapes may grow it). */
export const MAX_SECRET_BYTES = 512_000 - 1;
/** Swarm refuses a service name longer than this (a DNS label); an instance's name may be 90 characters. */
const MAX_SERVICE_NAME = 63;
const ENV_FILE = '/run/secrets/lowcode-faas-env';
const DENO_ENTRY_PATH = '/app/.lowcode-faas-env.ts';
// Preloaded by Deno before the function's own module (which stays the main module): its environment from the secret.
export const DENO_ENTRY = `const env = JSON.parse(await Deno.readTextFile("${ENV_FILE}"));
for (const [key, value] of Object.entries(env)) Deno.env.set(key, String(value));
`;
// Python reads the secret, then becomes the function's own interpreter (its __main__ untouched).
const PYTHON_ENTRY = `import json, os, sys
with open("${ENV_FILE}") as f:
    os.environ.update(json.load(f))
os.execv(sys.executable, [sys.executable, "-u", sys.argv[1]])`;
// What the runtimes need before any code runs (the root filesystem is read-only; the user has no home).
const RUNTIME_ENV = { HOME: '/tmp', DENO_DIR: '/tmp/deno', PYTHONDONTWRITEBYTECODE: '1' };

/** Task states after which a task never runs again. */
const ENDED = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned', 'remove']);
/**
 * Whether a task is over: it ended, or Swarm has given it up. A task on a node that went down keeps
 * the state it last reported (running) for as long as the node stays away, so only its desired state,
 * set to shutdown when Swarm replaces it, says that it is gone.
 */
export const ended = (task: TaskState | undefined) => !task || ENDED.has(task.state) || ENDED.has(task.desiredState);
/** Pending for want of a node; not for a host-mode port that a stopping task still holds, which frees itself in seconds. */
export const noNode = (task: TaskState) => task.state === 'pending' && task.error.startsWith('no suitable node') && !task.error.includes('host-mode port');
/** Given up by Swarm without having ended itself: its node went away, and Swarm places a replacement. */
export const replaced = (task: TaskState) => !ENDED.has(task.state) && ENDED.has(task.desiredState);

/** Why a source or an env (as its secret's JSON) cannot travel through Swarm; null when both fit. */
export function sizeProblem(sourceBytes: number, envBytes: number): string | null {
	if (sourceBytes > MAX_CONFIG_BYTES) return `The source is ${sourceBytes} bytes: a Swarm config holds at most ${MAX_CONFIG_BYTES}; make it smaller.`;
	if (envBytes > MAX_SECRET_BYTES) return `The env is ${envBytes} bytes as JSON: a Swarm secret holds at most ${MAX_SECRET_BYTES}; make it smaller.`;
	return null;
}

/**
 * The service of an instance: its name when Swarm takes it, else cut and suffixed with a hash of the
 * whole name (a function's name may be 64 characters: its instance's, 90), so that it stays unique.
 */
export function serviceName(instance: string): string {
	if (instance.length <= MAX_SERVICE_NAME) return instance;
	const hash = createHash('sha256').update(instance).digest('hex').slice(0, 12);
	// Swarm wants a letter or digit before the '-': trailing '-' and '_' of the cut are dropped.
	return `${instance.slice(0, MAX_SERVICE_NAME - hash.length - 1).replace(/[-_]+$/, '')}-${hash}`;
}

/** The variables a function's secret holds: the runtime's, the function's own, and the platform's PORT, which wins. */
export function functionEnv(env: Readonly<Record<string, string>>, port: number): Record<string, string> {
	return { ...RUNTIME_ENV, ...env, PORT: String(port) };
}

/** The command of a function's task: the runtime entry loads its variables from the secret, then runs `target`. */
export function swarmCommand(language: InstanceSpec['language'], target: string): string[] {
	if (language === 'python') return ['python3', '-c', PYTHON_ENTRY, target];
	// The docker backend's permissions, and reading the one file that holds its own variables.
	return ['deno', 'run', '--no-prompt', '--allow-net', '--allow-env', `--allow-read=${ENV_FILE}`, '--preload', DENO_ENTRY_PATH, target];
}

export interface ServiceParts {
	name: string;
	port: number;
	network: string;
	config: string;
	secret: string;
	/** The Deno entry's config; null for Python. */
	entry: string | null;
	/** The images' placement constraint ('' when unknown). */
	constraint: string;
}

export function functionService(config: Config, spec: InstanceSpec, parts: ServiceParts): ServiceSpec {
	const target = `/app/${spec.file}`;
	return {
		name: parts.name,
		image: config.images[spec.language],
		labels: { [`${LABEL}.instance`]: config.instance, [LABEL]: 'swarm', [`${LABEL}.function`]: spec.function },
		env: RUNTIME_ENV,
		port: { published: parts.port, target: config.containerPort },
		network: parts.network,
		configs: [{ name: parts.config, target }, ...(parts.entry ? [{ name: parts.entry, target: DENO_ENTRY_PATH }] : [])],
		secret: parts.secret,
		command: swarmCommand(spec.language, target),
		constraints: [...(parts.constraint ? [parts.constraint] : []), ...config.swarmConstraints],
		sandbox: { ...config.sandbox, memoryMb: spec.memoryMb, cpus: spec.cpus },
	};
}

/** How a task ended, with the last lines it printed: "exited with code 3 (last output: ...)". `lost`: its node is gone. */
export function describeTask(task: TaskState, logs: string, memoryMb: number, lost: { node: string; why: string } | null = null): string {
	// Its node cannot say how it ended, nor give its output.
	if (lost && !ENDED.has(task.state)) return `was lost with its node ${lost.node} (${lost.why})`;
	const how =
		task.state === 'running'
			? 'was removed'
			: task.exitCode === 137
				? `was killed (SIGKILL), most likely out of memory${memoryMb ? ` (limit ${memoryMb} MiB)` : ''}`
				: // Swarm's word, not Docker's exit code 128, for a container that could not start (its port taken...).
					task.state === 'rejected' || (task.error && (task.exitCode <= 0 || task.error.startsWith('starting container failed')))
					? `could not be started by Swarm (${task.error || task.state})`
					: `exited with code ${task.exitCode}`;
	const lines = logs.trim() ? logs.trim().split('\n').slice(-LOG_LINES).join(' | ') : '';
	return lines ? `${how} (last output: ${lines})` : how;
}
