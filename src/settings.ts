import { createHash } from 'node:crypto';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { glob } from 'tinyglobby';
import { type Config, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from './config.js';
import { ApiError } from './errors.js';
import { PRIVATE_MODE, dropTemps, fixModeSync, privateDir, readRegular, syncDir, writeTemp } from './files.js';
import { log } from './log.js';

/** Per-function settings; each one absent means the platform's default. */
export interface Settings {
	env?: Record<string, string>;
	timeout_ms?: number;
	memory_mb?: number;
	cpus?: number;
	max_replicas?: number;
	min_warm?: number;
}

/** A change to settings: a field set to null goes back to the default. */
export type SettingsPatch = { [K in keyof Settings]?: Settings[K] | null };

export const SETTING_FIELDS = ['env', 'timeout_ms', 'memory_mb', 'cpus', 'max_replicas', 'min_warm'] as const;

/** The operator's bounds on per-function settings (a Config has them all). */
export interface Caps {
	readonly maxMemoryMb: number;
	readonly maxCpus: number;
	readonly maxReplicas: number;
	readonly maxContainers: number;
}

type Json = Record<string, unknown>;

/** Each numeric setting: its floor, its cap under `caps`, and the variable that sets that cap. */
const RANGES = {
	timeout_ms: { min: 1, integer: true, cap: () => MAX_TIMEOUT_MS, source: '' },
	memory_mb: { min: 16, integer: true, cap: (caps: Caps) => caps.maxMemoryMb, source: 'LOWCODE_FAAS_MAX_MEMORY_MB' },
	cpus: { min: 0.01, integer: false, cap: (caps: Caps) => caps.maxCpus, source: 'LOWCODE_FAAS_MAX_CPUS' },
	max_replicas: { min: 1, integer: true, cap: (caps: Caps) => caps.maxReplicas, source: 'LOWCODE_FAAS_MAX_REPLICAS' },
	// A function cannot keep warm more than it may run, nor more than the platform runs in all.
	min_warm: { min: 0, integer: true, cap: (caps: Caps) => Math.min(caps.maxReplicas, caps.maxContainers), source: 'the smaller of LOWCODE_FAAS_MAX_REPLICAS and LOWCODE_FAAS_MAX_CONTAINERS' },
} as const;

type NumericSetting = keyof typeof RANGES;

function checkNumber(body: Json, key: NumericSetting, caps: Caps): number | null | undefined {
	const value = body[key];
	if (value === null || value === undefined) return value;
	const { min, integer, cap, source } = RANGES[key];
	const max = cap(caps);
	const ok = typeof value === 'number' && (integer ? Number.isInteger(value) : Number.isFinite(value));
	if (!ok || value < min || value > max) {
		const why = source ? ` (the operator's cap, set by ${source})` : '';
		throw new ApiError(`invalid_${key}`, `${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}${why}.`);
	}
	return value;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
// Set by the platform in every container; a function cannot change them.
const RESERVED_ENV = new Set(['PORT']);
const ENV_COUNT = 64;
const ENV_VALUE_BYTES = 32 * 1024;
// A container's whole environment must fit the kernel's 2 MiB for exec strings (a quarter of an 8 MiB
// stack): 64 values of 32 KiB cannot start. Half of that leaves room for the platform's own.
const ENV_TOTAL_BYTES = 1024 * 1024;

/** Why `env` cannot be given to a container, or null: one rule for requests and for settings on disk. */
export function envProblem(env: Record<string, unknown>): string | null {
	const entries = Object.entries(env);
	if (entries.length > ENV_COUNT) return `env may hold at most ${ENV_COUNT} variables.`;
	let total = 0;
	for (const [key, val] of entries) {
		if (!ENV_NAME.test(key)) return `env name "${key.slice(0, 40)}" must match [A-Za-z_][A-Za-z0-9_]*.`;
		if (RESERVED_ENV.has(key)) return `env ${key} is set by the platform.`;
		if (typeof val !== 'string' || val.includes('\0') || !val.isWellFormed() || Buffer.byteLength(val) > ENV_VALUE_BYTES) {
			return `env ${key} must be a string of at most 32 KiB without NUL.`;
		}
		// Docker reads the environment from a file of one VAR=VALUE a line, and drops a final \r.
		if (/[\r\n]/.test(val)) return `env ${key} must not contain a line break (\\n or \\r): values reach the container one a line; encode it, e.g. in base64.`;
		total += key.length + Buffer.byteLength(val);
	}
	if (total > ENV_TOTAL_BYTES) return 'env may hold at most 1 MiB in all (names and values).';
	return null;
}

function checkEnv(value: unknown): Record<string, string> | null | undefined {
	if (value === null || value === undefined) return value;
	if (typeof value !== 'object' || Array.isArray(value)) throw new ApiError('invalid_env', 'env must be an object of strings.');
	const problem = envProblem(value as Json);
	if (problem) throw new ApiError('invalid_env', problem);
	return { ...(value as Record<string, string>) };
}

/** The settings fields present in `body`, validated against the operator's caps; `null` values reset a setting. */
export function checkSettings(body: Json, caps: Caps): SettingsPatch {
	const patch: SettingsPatch = {};
	if ('env' in body) patch.env = checkEnv(body.env);
	for (const key of Object.keys(RANGES) as NumericSetting[]) if (key in body) patch[key] = checkNumber(body, key, caps);
	const replicas = patch.max_replicas ?? undefined;
	if (replicas !== undefined && typeof patch.min_warm === 'number' && patch.min_warm > replicas) {
		throw new ApiError('invalid_min_warm', 'min_warm cannot exceed max_replicas.');
	}
	return patch;
}

/**
 * Settings read from disk, within today's caps: a file edited by hand, or written before the caps were
 * lowered, never reaches docker as it is. Returns the settings and the fields that were changed.
 */
export function boundSettings(stored: unknown, caps: Caps): { settings: Settings; changed: string[] } {
	const settings: Record<string, unknown> = {};
	const changed: string[] = [];
	if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return { settings, changed: ['settings'] };
	for (const [key, value] of Object.entries(stored)) {
		if (key === 'env') {
			// Kept as written (a bad one fails its container's start, with the reason), unless not even an object.
			if (typeof value === 'object' && value !== null && !Array.isArray(value)) settings.env = value;
			else changed.push(key);
		} else if (key in RANGES) {
			const { min, integer, cap } = RANGES[key as NumericSetting];
			if (typeof value !== 'number' || !Number.isFinite(value)) {
				changed.push(key);
				continue;
			}
			const bounded = Math.min(Math.max(integer ? Math.floor(value) : value, min), cap(caps));
			if (bounded !== value) changed.push(key);
			settings[key] = bounded;
		} else changed.push(key);
	}
	return { settings: settings as Settings, changed };
}

/** The settings a change results in; null fields go back to the default. Throws a 400 if they clash. */
export function mergeSettings(current: Settings, patch: SettingsPatch, maxReplicas: number): Settings {
	const next: Record<string, unknown> = { ...current };
	for (const [key, value] of Object.entries(patch)) {
		if (value === null) delete next[key];
		else if (value !== undefined) next[key] = value;
	}
	// Checked on the result, not the patch: min_warm may meet a max_replicas set earlier, or the default.
	const own = next.max_replicas as number | undefined;
	const replicas = own ?? maxReplicas;
	if (((next.min_warm as number | undefined) ?? 0) > replicas) {
		throw new ApiError('invalid_min_warm', `min_warm cannot exceed max_replicas (${replicas}${own === undefined ? ', LOWCODE_FAAS_MAX_REPLICAS' : ''}).`);
	}
	return next as Settings;
}

/**
 * How many containers each function keeps warm: its min_warm, and at least one when
 * LOWCODE_FAAS_PREWARM names it or says `all` (then `names` are every function's).
 */
export function warmTargets(settings: Iterable<readonly [string, Settings]>, prewarm: 'all' | readonly string[], names: readonly string[]): Map<string, number> {
	const targets = new Map<string, number>();
	for (const [name, { min_warm }] of settings) if (min_warm) targets.set(name, min_warm);
	for (const name of prewarm === 'all' ? names : prewarm) targets.set(name, Math.max(1, targets.get(name) ?? 0));
	return targets;
}

// Bound on reading a settings file: settings hold at most 64 env values of 32 KiB.
const SETTINGS_LIMIT = 4 * 1024 * 1024;

const stampOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/**
 * Settings of each function in `settings/NAME.json`. They change only through here, so they are read
 * once and kept in memory; each has a stamp that changes with it (part of a function's version).
 */
export function createSettingsFiles(config: Config) {
	const dir = join(config.dataDir, 'settings');
	const cache = new Map<string, { settings: Settings; stamp: string }>();

	/** Makes the folder, tightens what an earlier version wrote 0644, and reads every file once. */
	async function init() {
		await privateDir(dir);
		await dropTemps(dir);
		// Tightening only, so a hard link does no harm here.
		for (const file of await readdir(dir)) fixModeSync(join(dir, file), PRIVATE_MODE, undefined, false);
		for (const file of await glob('*.json', { cwd: dir, onlyFiles: true, followSymbolicLinks: false })) await read(file.slice(0, -5));
	}

	/** The settings in memory, without waiting: the warm path's only lookup. */
	function cached(name: string): { settings: Settings; stamp: string } | undefined {
		return cache.get(name);
	}

	/** The function's settings, within today's caps; defaults (with a warning) for a file that cannot be used. */
	async function read(name: string): Promise<{ settings: Settings; stamp: string }> {
		const known = cache.get(name);
		if (known) return known;
		const file = await readRegular(join(dir, `${name}.json`), SETTINGS_LIMIT).catch(() => null);
		if (file && file.kind !== 'ok' && file.kind !== 'missing') log('warn', 'settings file not used, using defaults', { function: name, problem: file.kind });
		const text = file?.kind === 'ok' ? file.data.toString('utf8') : '{}';
		let stored: unknown = {};
		try {
			stored = JSON.parse(text);
		} catch {
			log('warn', 'unreadable settings file, using defaults', { function: name });
		}
		const { settings, changed } = boundSettings(stored, config);
		if (changed.length > 0) log('warn', 'settings file outside the operator caps; using bounded values', { function: name, fields: changed });
		const entry = { settings, stamp: stampOf(text) };
		cache.set(name, entry);
		return entry;
	}

	/** Applies a settings change durably. */
	async function write(name: string, patch: SettingsPatch): Promise<Settings> {
		const next = mergeSettings((await read(name)).settings, patch, config.maxReplicas);
		const text = JSON.stringify(next) + '\n';
		const temp = await writeTemp(dir, `${name}.json`, text, PRIVATE_MODE);
		await rename(temp, join(dir, `${name}.json`));
		await syncDir(dir);
		cache.set(name, { settings: next, stamp: stampOf(text) });
		return next;
	}

	async function drop(name: string) {
		cache.delete(name);
		await rm(join(dir, `${name}.json`), { force: true });
	}

	/** Every function's settings known so far (all of them after `init`). */
	function entries(): Iterable<readonly [string, Settings]> {
		return [...cache].map(([name, { settings }]) => [name, settings] as const);
	}

	return { init, cached, read, write, drop, entries };
}

/**
 * The one timeout rule: the deadline a request asked for, else the function's timeout_ms, else the
 * platform's default; never past MAX_TIMEOUT_MS.
 */
export function timeoutFor(settings: Settings, requested?: number): number {
	return Math.min(requested ?? settings.timeout_ms ?? DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS);
}
