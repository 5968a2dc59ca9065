import type { Language } from './config.js';
import { HttpError, badRequest } from './errors.js';

export const LANGUAGES: readonly Language[] = ['python', 'deno'];
export const MAX_TIMEOUT_MS = 300_000;
export const DEFAULT_TIMEOUT_MS = 5_000;

// Letters, digits, '_' and '-', starting with a letter or digit: safe as a file name and never a dotfile.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function isValidName(name: string): boolean {
	return NAME.test(name);
}

export function checkName(name: unknown): string {
	if (typeof name !== 'string') throw badRequest('invalid_name', 'name must be a string.');
	if (!isValidName(name)) {
		throw badRequest('invalid_name', 'name must be 1-64 characters of A-Z, a-z, 0-9, "_" and "-", starting with a letter or digit.');
	}
	return name;
}

type Json = Record<string, unknown>;

function checkFields(body: Json, allowed: readonly string[]) {
	for (const key of Object.keys(body)) {
		if (!allowed.includes(key)) throw badRequest('unknown_field', `Unknown field "${key}"; allowed: ${allowed.join(', ')}.`);
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

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
// Set by the platform in every container; a function cannot change them.
const RESERVED_ENV = new Set(['PORT']);

function checkInteger(body: Json, key: string, min: number, max: number) {
	const value = body[key];
	if (value === null || value === undefined) return value;
	if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
		throw badRequest(`invalid_${key}`, `${key} must be an integer from ${min} to ${max}.`);
	}
	return value;
}

function checkEnv(value: unknown): Record<string, string> | null | undefined {
	if (value === null || value === undefined) return value;
	if (typeof value !== 'object' || Array.isArray(value)) throw badRequest('invalid_env', 'env must be an object of strings.');
	const entries = Object.entries(value as Json);
	if (entries.length > 64) throw badRequest('invalid_env', 'env may hold at most 64 variables.');
	for (const [key, val] of entries) {
		if (!ENV_NAME.test(key)) throw badRequest('invalid_env', `env name "${key.slice(0, 40)}" must match [A-Za-z_][A-Za-z0-9_]*.`);
		if (RESERVED_ENV.has(key)) throw badRequest('invalid_env', `env ${key} is set by the platform.`);
		if (typeof val !== 'string' || val.includes('\0') || !val.isWellFormed() || Buffer.byteLength(val) > 32 * 1024) {
			throw badRequest('invalid_env', `env ${key} must be a string of at most 32 KiB without NUL.`);
		}
	}
	return Object.fromEntries(entries) as Record<string, string>;
}

/** The settings fields present in `body`, validated; `null` values reset a setting. */
export function checkSettings(body: Json): SettingsPatch {
	const patch: SettingsPatch = {};
	if ('env' in body) patch.env = checkEnv(body.env);
	if ('timeout_ms' in body) patch.timeout_ms = checkInteger(body, 'timeout_ms', 1, MAX_TIMEOUT_MS);
	if ('memory_mb' in body) patch.memory_mb = checkInteger(body, 'memory_mb', 16, 64 * 1024);
	if ('cpus' in body) {
		const cpus = body.cpus;
		if (cpus !== null && (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus < 0.01 || cpus > 64)) throw badRequest('invalid_cpus', 'cpus must be a number from 0.01 to 64.');
		patch.cpus = cpus as number | null;
	}
	if ('max_replicas' in body) patch.max_replicas = checkInteger(body, 'max_replicas', 1, 1000);
	if ('min_warm' in body) patch.min_warm = checkInteger(body, 'min_warm', 0, 100);
	const replicas = patch.max_replicas ?? undefined;
	if (replicas !== undefined && typeof patch.min_warm === 'number' && patch.min_warm > replicas) {
		throw badRequest('invalid_min_warm', 'min_warm cannot exceed max_replicas.');
	}
	return patch;
}

export function checkPatch(body: Json): SettingsPatch {
	checkFields(body, SETTING_FIELDS);
	return checkSettings(body);
}

export interface CreateRequest {
	name: string;
	language: Language;
	source_code: string;
	settings: SettingsPatch;
}

export function checkCreate(body: Json, maxSourceBytes: number): CreateRequest {
	checkFields(body, ['name', 'language', 'source_code', ...SETTING_FIELDS]);
	const name = checkName(body.name);
	const { language, source_code } = body;
	if (typeof language !== 'string' || !(LANGUAGES as readonly string[]).includes(language)) {
		throw badRequest('invalid_language', `language must be one of: ${LANGUAGES.join(', ')}.`);
	}
	if (typeof source_code !== 'string' || source_code.trim() === '') {
		throw badRequest('invalid_source_code', 'source_code must be a non-empty string.');
	}
	if (source_code.includes('\0')) throw badRequest('invalid_source_code', 'source_code must not contain NUL characters.');
	// A lone surrogate cannot be written as UTF-8: the file would differ from what was sent.
	if (!source_code.isWellFormed()) throw badRequest('invalid_source_code', 'source_code must be well-formed Unicode (no lone surrogates).');
	if (Buffer.byteLength(source_code) > maxSourceBytes) {
		throw new HttpError(413, 'source_too_large', `source_code must be at most ${maxSourceBytes} bytes.`);
	}
	return { name, language: language as Language, source_code, settings: checkSettings(body) };
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
		throw badRequest('invalid_timeout', `timeout_ms must be an integer from 1 to ${MAX_TIMEOUT_MS}.`);
	}
	if (deeperThan(body.input, MAX_JSON_DEPTH)) throw badRequest('invalid_input', `input must be nested at most ${MAX_JSON_DEPTH} levels deep.`);
	// No input means an empty object: most functions read fields from the body.
	return { input: 'input' in body ? body.input : {}, timeoutMs: timeout as number | undefined };
}
