/** The one error family of the API: every failure a client should see is an HttpError. */
export class HttpError extends Error {
	override name = 'HttpError';
	constructor(
		readonly status: number,
		readonly code: string,
		message: string,
		readonly headers: Readonly<Record<string, string>> = {},
		options?: { cause?: unknown },
	) {
		super(message, options);
	}
}

export const badRequest = (code: string, message: string) => new HttpError(400, code, message);
export const notFound = (code: string, message: string) => new HttpError(404, code, message);

export interface ErrorResponse {
	status: number;
	headers: Record<string, string>;
	body: { error: { code: string; message: string } };
}

/** Turns anything thrown by a handler into the JSON error the client gets; the unknown is a 500. */
export function toErrorResponse(err: unknown): ErrorResponse {
	if (err instanceof HttpError) {
		return { status: err.status, headers: { ...err.headers }, body: { error: { code: err.code, message: err.message } } };
	}
	const code = (err as NodeJS.ErrnoException | null)?.code;
	if (code === 'ENOSPC' || code === 'EDQUOT') {
		return { status: 507, headers: {}, body: { error: { code: 'insufficient_storage', message: 'The data folder is full; nothing was changed.' } } };
	}
	return { status: 500, headers: {}, body: { error: { code: 'internal_error', message: 'The server failed to handle this request.' } } };
}
