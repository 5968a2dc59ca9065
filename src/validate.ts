import type { Language } from './config.js';
import { ApiError } from './errors.js';

export const LANGUAGES: readonly Language[] = ['python', 'deno'];
export const MAX_TIMEOUT_MS = 300_000;
export const DEFAULT_TIMEOUT_MS = 5_000;

// Letters, digits, '_' and '-', starting with a letter or digit: safe as a file name and never a dotfile.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function isValidName(name: string): boolean {
	return NAME.test(name);
}

export function checkName(name: unknown): string {
	if (typeof name !== 'string') throw new ApiError('invalid_name', 'name must be a string.');
	if (!isValidName(name)) {
		throw new ApiError('invalid_name', 'name must be 1-64 characters of A-Z, a-z, 0-9, "_" and "-", starting with a letter or digit.');
	}
	return name;
}

type Json = Record<string, unknown>;

function checkFields(body: Json, allowed: readonly string[]) {
	for (const key of Object.keys(body)) {
		if (!allowed.includes(key)) throw new ApiError('unknown_field', `Unknown field "${key}"; allowed: ${allowed.join(', ')}.`);
	}
}

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

export function checkPatch(body: Json, caps: Caps): SettingsPatch {
	checkFields(body, SETTING_FIELDS);
	return checkSettings(body, caps);
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

export interface CreateRequest {
	name: string;
	language: Language;
	source_code: string;
	settings: SettingsPatch;
}

export function checkCreate(body: Json, limits: Caps & { readonly maxSourceBytes: number }): CreateRequest {
	const { maxSourceBytes } = limits;
	checkFields(body, ['name', 'language', 'source_code', ...SETTING_FIELDS]);
	const name = checkName(body.name);
	const { language, source_code } = body;
	if (typeof language !== 'string' || !(LANGUAGES as readonly string[]).includes(language)) {
		throw new ApiError('invalid_language', `language must be one of: ${LANGUAGES.join(', ')}.`);
	}
	if (typeof source_code !== 'string' || source_code.trim() === '') {
		throw new ApiError('invalid_source_code', 'source_code must be a non-empty string.');
	}
	if (source_code.includes('\0')) throw new ApiError('invalid_source_code', 'source_code must not contain NUL characters.');
	// A lone surrogate cannot be written as UTF-8: the file would differ from what was sent.
	if (!source_code.isWellFormed()) throw new ApiError('invalid_source_code', 'source_code must be well-formed Unicode (no lone surrogates).');
	if (Buffer.byteLength(source_code) > maxSourceBytes) {
		throw new ApiError('source_too_large', `source_code must be at most ${maxSourceBytes} bytes.`);
	}
	return { name, language: language as Language, source_code, settings: checkSettings(body, limits) };
}

export interface InvokeRequest {
	input: unknown;
	/** Undefined when not given: the function's own default applies. */
	timeoutMs: number | undefined;
}

// Deeper JSON overflows the stack of JSON.stringify (about 10,000 levels): one request could fail
// a whole batch of history or retire a healthy container. No real input comes close.
export const MAX_JSON_DEPTH = 64;

/** True when `value` nests arrays and objects more than `max` deep; walked without recursion. */
export function deeperThan(value: unknown, max: number): boolean {
	const stack: [unknown, number][] = [[value, 0]];
	while (stack.length > 0) {
		const [node, depth] = stack.pop()!;
		if (typeof node !== 'object' || node === null) continue;
		if (depth + 1 > max) return true;
		for (const child of Array.isArray(node) ? node : Object.values(node)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
	}
	return false;
}

export function checkInvoke(body: Json): InvokeRequest {
	checkFields(body, ['input', 'timeout_ms']);
	const timeout = body.timeout_ms;
	if ('timeout_ms' in body && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS)) {
		throw new ApiError('invalid_timeout_ms', `timeout_ms must be an integer from 1 to ${MAX_TIMEOUT_MS}.`);
	}
	if (deeperThan(body.input, MAX_JSON_DEPTH)) throw new ApiError('invalid_input', `input must be nested at most ${MAX_JSON_DEPTH} levels deep.`);
	// No input means an empty object: most functions read fields from the body.
	return { input: 'input' in body ? body.input : {}, timeoutMs: timeout as number | undefined };
}
