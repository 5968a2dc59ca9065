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

export interface CreateRequest {
	name: string;
	language: Language;
	source_code: string;
}

export function checkCreate(body: Json, maxSourceBytes: number): CreateRequest {
	checkFields(body, ['name', 'language', 'source_code']);
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
	return { name, language: language as Language, source_code };
}

export interface InvokeRequest {
	input: unknown;
	timeoutMs: number;
}

export function checkInvoke(body: Json): InvokeRequest {
	checkFields(body, ['input', 'timeout_ms']);
	const timeout = 'timeout_ms' in body ? body.timeout_ms : DEFAULT_TIMEOUT_MS;
	if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS) {
		throw badRequest('invalid_timeout', `timeout_ms must be an integer from 1 to ${MAX_TIMEOUT_MS}.`);
	}
	// No input means an empty object: most functions read fields from the body.
	return { input: 'input' in body ? body.input : {}, timeoutMs: timeout };
}
