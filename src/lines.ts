import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { unsafeReason } from './files.js';
import { log } from './log.js';

const CHUNK_BYTES = 1024 * 1024;

/**
 * The lines of a file, read in chunks: never one string of the whole file, which past V8's string
 * limit (~512 MiB) cannot be built at all. A line longer than `maxBytes` is skipped with a warning,
 * without ever being held whole. The last line is yielded even without its newline (a torn append:
 * the caller's parser decides). A missing file has no lines.
 */
export async function* readLines(path: string, maxBytes: number): AsyncGenerator<string> {
	// Never through a link, nor waiting for a FIFO's writer: such a file is refused, not read.
	const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
		if (err.code === 'ENOENT') return null;
		throw err;
	});
	if (!handle) return;
	try {
		const unsafe = unsafeReason(await handle.stat(), false);
		if (unsafe) throw new Error(`${path} ${unsafe}`);
		const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
		// The start of a line that goes on in the next chunk, copied out of the reused buffer.
		let parts: Buffer[] = [];
		let partBytes = 0;
		let skipping = false;
		let position = 0;
		for (;;) {
			const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position);
			if (bytesRead === 0) break;
			position += bytesRead;
			const chunk = buffer.subarray(0, bytesRead);
			let start = 0;
			while (start < chunk.length) {
				const newline = chunk.indexOf(0x0a, start);
				const piece = chunk.subarray(start, newline === -1 ? chunk.length : newline);
				if (!skipping && partBytes + piece.length > maxBytes) {
					log('warn', 'skipping an overlong line of run history', { file: path, at: position - chunk.length + start - partBytes, limit: maxBytes });
					skipping = true;
					parts = [];
					partBytes = 0;
				}
				if (newline === -1) {
					if (!skipping) {
						parts.push(Buffer.from(piece));
						partBytes += piece.length;
					}
					break;
				}
				if (skipping) skipping = false;
				else {
					yield (parts.length > 0 ? Buffer.concat([...parts, piece]) : piece).toString('utf8');
					parts = [];
					partBytes = 0;
				}
				start = newline + 1;
			}
		}
		if (!skipping && partBytes > 0) yield Buffer.concat(parts).toString('utf8');
	} finally {
		await handle.close();
	}
}
