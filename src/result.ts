import type { IncomingHttpHeaders } from 'node:http';
import { type FunctionResponse, HOP_BY_HOP } from './forward.js';

// Means "the platform made this error": a function's own is not passed on as if it were.
const PLATFORM_ERROR_HEADER = 'x-lowcode-faas-error';

export type RunStatus = 'success' | 'failed' | 'timeout';

export interface RunResult {
	run_id: string;
	function_id: string;
	status: RunStatus;
	http_status_code: number | null;
	http_headers: Record<string, string>;
	output: unknown;
	error_message: string;
	duration_ms: number;
	/** True when this invocation had to wait for a container to start. */
	cold_start: boolean;
}

export interface RunContext {
	runId: string;
	functionId: string;
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

/** The body as JSON when it is JSON, else as text; null when empty. */
export function parseOutput(body: Buffer): unknown {
	if (body.length === 0) return null;
	const text = body.toString('utf8');
	try {
		return JSON.parse(text);
	} catch {
		return text;
	}
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
		status,
		http_status_code: null,
		http_headers: {},
		output: null,
		error_message: message,
		duration_ms: elapsed(ctx),
		cold_start: ctx.coldStart,
	};
}
