import { FUNCTION_NAME, type Language, MAX_JSON_DEPTH, MAX_TIMEOUT_MS } from './config.js';
import { ApiError } from './errors.js';
import { type Caps, SETTING_FIELDS, type SettingsPatch, checkSettings } from './settings.js';

const LANGUAGES: readonly Language[] = ['python', 'deno'];

export function isValidName(name: string): boolean {
	return FUNCTION_NAME.test(name);
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

export function checkPatch(body: Json, caps: Caps): SettingsPatch {
	checkFields(body, SETTING_FIELDS);
	return checkSettings(body, caps);
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
