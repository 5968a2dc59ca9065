import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

/** The HTTP port a function's server listens on inside its container (passed to it as PORT). */
export const ContainerHttpPort = 8080;
/** The longest wait, in seconds, for a started function's server to answer its first request. */
export const ServerReadyWait = 10;
/** Runtime images, built offline by scripts/build-images.sh from Debian packages. */
export const PythonImage = 'lowcode-faas/python:3.11';
export const DenoImage = 'lowcode-faas/deno:2.9.6';

export type Language = 'python' | 'deno';

export interface Config {
	readonly host: string;
	readonly port: number;
	/** Absolute path of the data folder; function sources live in its `functions/` folder. */
	readonly dataDir: string;
	readonly containerPort: number;
	readonly readyWaitMs: number;
	readonly images: Readonly<Record<Language, string>>;
	/** Largest request body the API reads, in bytes. */
	readonly maxBodyBytes: number;
	/** Largest function source, in bytes. */
	readonly maxSourceBytes: number;
	/** Labels every container with this, so one platform never touches another's containers. */
	readonly instance: string;
}

export class ConfigError extends Error {
	override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function integer(env: Env, key: string, fallback: number, min: number, max: number): number {
	const raw = env[key];
	if (raw === undefined || raw === '') return fallback;
	const value = Number(raw);
	if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
		throw new ConfigError(`${key} must be an integer from ${min} to ${max}, got "${raw}"`);
	}
	return value;
}

function text(env: Env, key: string, fallback: string): string {
	const raw = env[key];
	if (raw === undefined) return fallback;
	const value = raw.trim();
	if (value === '' || /[\s\0]/.test(value)) throw new ConfigError(`${key} must be a non-empty value without spaces, got "${raw}"`);
	return value;
}

/** Reads the configuration from the environment once; throws a ConfigError with a one-line message. */
export function loadConfig(env: Env = process.env): Config {
	const dataDir = resolve(text(env, 'LOWCODE_FAAS_DATA', 'data'));
	return Object.freeze({
		host: text(env, 'LOWCODE_FAAS_HOST', '127.0.0.1'),
		port: integer(env, 'LOWCODE_FAAS_PORT', 8080, 0, 65535),
		dataDir,
		containerPort: integer(env, 'LOWCODE_FAAS_CONTAINER_PORT', ContainerHttpPort, 1, 65535),
		readyWaitMs: integer(env, 'LOWCODE_FAAS_READY_WAIT_S', ServerReadyWait, 1, 600) * 1000,
		images: Object.freeze({
			python: text(env, 'LOWCODE_FAAS_PYTHON_IMAGE', PythonImage),
			deno: text(env, 'LOWCODE_FAAS_DENO_IMAGE', DenoImage),
		}),
		maxBodyBytes: integer(env, 'LOWCODE_FAAS_MAX_BODY', 6 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
		maxSourceBytes: 1024 * 1024,
		// The data folder identifies an installation: two platforms on one host never share one.
		instance: createHash('sha256').update(dataDir).digest('hex').slice(0, 12),
	});
}
