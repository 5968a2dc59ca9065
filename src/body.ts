import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

// Reading a JSON endpoint's request body: its headers, its size, its bytes.

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

function tooLarge(limit: number) {
	return new ApiError('body_too_large', `The request body must be at most ${limit} bytes.`, { connection: 'close' });
}

/**
 * Reads the body up to `limit` bytes. Past it, the rest is left to flow away unread rather than the
 * request destroyed: destroying it resets the connection, and the client may then never see the 413.
 */
export function readBody(req: IncomingMessage, limit: number, proceed: () => void): Promise<Buffer> {
	if (Number(req.headers['content-length']) > limit) return Promise.reject(tooLarge(limit));
	proceed();
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		const settle = (err?: ApiError) => {
			req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onClose);
			if (err) reject(err);
			else resolve(Buffer.concat(chunks, size));
		};
		const onData = (chunk: Buffer) => {
			size += chunk.length;
			if (size > limit) settle(tooLarge(limit));
			else chunks.push(chunk);
		};
		const onEnd = () => settle();
		// The client hung up or broke the framing mid-body: its fault, not the server's.
		const onClose = () => settle(new ApiError('incomplete_body', 'The request body ended before it was complete.', { connection: 'close' }));
		req.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onClose);
	});
}

/** A body for a JSON endpoint must say it is JSON: no "simple" cross-site form or text/plain request passes. */
export function checkJsonHeaders(headers: IncomingMessage['headers']) {
	const contentType = headers['content-type'];
	const hasBody = headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0;
	if (contentType === undefined ? hasBody : !JSON_TYPE.test(contentType)) {
		throw new ApiError('unsupported_media_type', 'Send the body as JSON, with Content-Type: application/json.');
	}
	const encoding = headers['content-encoding'];
	if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
		throw new ApiError('unsupported_media_type', 'Send the body uncompressed (no Content-Encoding).');
	}
}

// Fatal: bytes that are not UTF-8 are refused, not silently replaced with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function parseObject(raw: Buffer, optional: boolean): Record<string, unknown> {
	if (raw.length === 0) {
		if (optional) return {};
		throw new ApiError('missing_body', 'The request needs a JSON object body.');
	}
	let value: unknown;
	try {
		value = JSON.parse(utf8.decode(raw));
	} catch {
		throw new ApiError('invalid_json', 'The request body is not valid UTF-8 JSON.');
	}
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		throw new ApiError('invalid_body', 'The request body must be a JSON object.');
	}
	return value as Record<string, unknown>;
}
