import type { IncomingHttpHeaders } from 'node:http';
import { MAX_JSON_DEPTH } from './config.js';
import { type FunctionResponse, HOP_BY_HOP } from './forward.js';
import { deeperThan } from './validate.js';

// Means "the platform made this error": a function's own is not passed on as if it were.
const PLATFORM_ERROR_HEADER = 'x-lowcode-faas-error';

export type RunStatus = 'success' | 'failed' | 'timeout';

export interface RunResult {
	run_id: string;
	function_id: string;
	/** The numbered version of the source the serving instance ran; null when none ran (or its source was too large to keep). */
	version: number | null;
	status: RunStatus;
	http_status_code: number | null;
	http_headers: Record<string, string>;
	output: unknown;
	error_message: string;
	duration_ms: number;
	/** True when this invocation had to wait for a container to start. */
	cold_start: boolean;
}

/** A run as kept in history: a RunResult once done; before that, queued or running. */
export interface RunRecord extends Omit<RunResult, 'status' | 'version'> {
	status: RunResult['status'] | 'queued' | 'running';
	/** Absent from records written before versions were numbered. */
	version?: number | null;
	function: string;
	created_at: string;
	finished_at: string | null;
	/** History kept only the start of a long output, as text (see keptOutput). */
	output_truncated?: true;
	/** Kept until an async run has run, so that a restart can run it. */
	input?: unknown;
	timeout_ms?: number;
}

/** An async run as accepted: queued, with what it needs to run after a restart (its input and deadline). */
export function queuedRecord(runId: string, functionId: string, fn: string, input: unknown, timeoutMs: number, createdAt: Date): RunRecord {
	return {
		run_id: runId,
		function_id: functionId,
		// Which version runs is known when it runs: the function may change while the run waits.
		version: null,
		function: fn,
		status: 'queued',
		http_status_code: null,
		http_headers: {},
		output: null,
		error_message: '',
		duration_ms: 0,
		cold_start: false,
		created_at: createdAt.toISOString(),
		finished_at: null,
		input,
		timeout_ms: timeoutMs,
	};
}

export interface RunContext {
	runId: string;
	functionId: string;
	/** The version of the source run: the instance's, once one is leased. */
	version: number | null;
	/** performance.now() when the invocation began. */
	startedAt: number;
	coldStart: boolean;
}

/** The function's response headers as one string each (repeated ones joined), minus hop-by-hop ones and the platform's. */
export function publicHeaders(headers: IncomingHttpHeaders): Record<string, string> {
	const connection = headers.connection;
	const named = new Set((Array.isArray(connection) ? connection.join(',') : (connection ?? '')).split(',').map((h) => h.trim().toLowerCase()));
	const out: Record<string, string> = {};
	for (const [key, value] of Object.entries(headers)) {
		if (value === undefined || HOP_BY_HOP.has(key) || named.has(key) || key === PLATFORM_ERROR_HEADER) continue;
		out[key] = Array.isArray(value) ? value.join(', ') : value;
	}
	return out;
}

/**
 * The body as JSON when it is JSON, else as text; null when empty. JSON nested deeper than inputs may
 * be stays text: JSON.parse copes with any depth, but JSON.stringify of the reply would overflow.
 */
export function parseOutput(body: Buffer): unknown {
	if (body.length === 0) return null;
	const text = body.toString('utf8');
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		return text;
	}
	return deeperThan(value, MAX_JSON_DEPTH) ? text : value;
}

// Run history keeps this many characters of an output's JSON: 1 MiB of control bytes is 6 MB once
// escaped, and a few such runs would fill history segments past what can be read back.
export const KEPT_OUTPUT_CHARS = 64 * 1024;

/** How long `c` is inside a JSON string. */
function escapedLength(c: number): number {
	if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d) return 2;
	return c < 0x20 ? 6 : 1;
}

/** The longest start of `text` whose JSON string form fits in `limit` characters, never half a surrogate pair. */
function startOf(text: string, limit: number): string {
	let used = 2;
	let end = 0;
	while (end < text.length && used + escapedLength(text.charCodeAt(end)) <= limit) used += escapedLength(text.charCodeAt(end++));
	const last = text.charCodeAt(end - 1);
	if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
	return text.slice(0, end);
}

/**
 * An output as history keeps it: whole when its JSON fits in KEPT_OUTPUT_CHARS; else the start of its
 * text (of the string itself, or of its JSON) as a string, with `output_truncated`.
 */
export function keptOutput(output: unknown): { output: unknown; output_truncated?: true } {
	if (output === null || (typeof output !== 'object' && typeof output !== 'string')) return { output };
	if (typeof output === 'string' && output.length * 6 + 2 <= KEPT_OUTPUT_CHARS) return { output };
	let text: string;
	try {
		text = typeof output === 'string' ? output : JSON.stringify(output);
	} catch {
		return { output: null, output_truncated: true };
	}
	if (typeof output !== 'string' && text.length <= KEPT_OUTPUT_CHARS) return { output };
	const start = startOf(text, KEPT_OUTPUT_CHARS);
	return start.length === text.length && typeof output === 'string' ? { output } : { output: start, output_truncated: true };
}

function elapsed(ctx: RunContext): number {
	return Math.round(performance.now() - ctx.startedAt);
}

/** The result of a function that answered: success below 500, failed from 500 on. */
export function answeredResult(ctx: RunContext, res: FunctionResponse): RunResult {
	const failed = res.status >= 500;
	return {
		run_id: ctx.runId,
		function_id: ctx.functionId,
		version: ctx.version,
		status: failed ? 'failed' : 'success',
		http_status_code: res.status,
		http_headers: publicHeaders(res.headers),
		output: parseOutput(res.body),
		error_message: failed ? `The function answered with HTTP ${res.status}.` : '',
		duration_ms: elapsed(ctx),
		cold_start: ctx.coldStart,
	};
}

/** The result of a function that gave no usable answer. */
export function unansweredResult(ctx: RunContext, status: Exclude<RunStatus, 'success'>, message: string): RunResult {
	return {
		run_id: ctx.runId,
		function_id: ctx.functionId,
		version: ctx.version,
		status,
		http_status_code: null,
		http_headers: {},
		output: null,
		error_message: message,
		duration_ms: elapsed(ctx),
		cold_start: ctx.coldStart,
	};
}
