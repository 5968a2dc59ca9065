import { randomBytes } from 'node:crypto';
import { type BigIntStats, type Stats, closeSync, constants, fchmodSync, fstatSync, openSync } from 'node:fs';
import { type FileHandle, mkdir, open, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { glob } from 'tinyglobby';

/**
 * The store's folders: its own user only. Sources reach a container through a bind mount that the
 * Docker daemon makes, which needs no access to the folder (nor does the container's user).
 */
export const FOLDER_MODE = 0o700;
/** Settings (they hold env secrets), ids, notes. */
export const PRIVATE_MODE = 0o600;
/** Sources: the container's user (LOWCODE_FAAS_USER) reads them through the mount; the 0700 folder keeps other local users out. */
export const SOURCE_MODE = 0o644;

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer for ever.
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A folder only the platform's user may enter, whatever the umask (which masks mkdir's own mode). */
export async function privateDir(path: string) {
	await mkdir(path, { recursive: true, mode: FOLDER_MODE });
	// Through a handle that follows no link: a linked folder keeps its target's mode.
	await fixFolderMode(path, FOLDER_MODE);
}

/**
 * Why a file cannot be trusted as one the platform wrote, or null when it can. `singleLink`: the
 * platform never hard-links sources, and another name of the same file may lie anywhere on the file
 * system (ids, made with link(), have two names for a moment).
 */
export function unsafeReason(info: Stats | BigIntStats, singleLink = true): string | null {
	if (info.isSymbolicLink()) return 'is a symbolic link';
	if (!info.isFile()) return 'is not a regular file';
	if (singleLink && Number(info.nlink) > 1) return 'has other hard links';
	return null;
}

export type ReadResult = { kind: 'ok'; data: Buffer } | { kind: 'missing' } | { kind: 'unsafe'; reason: string } | { kind: 'too_large'; size: number };

/**
 * Reads a regular file of at most `limit` bytes without following a link, whatever was swapped in
 * after an earlier check: the checks are made on the open handle.
 */
export async function readRegular(path: string, limit: number, singleLink = true): Promise<ReadResult> {
	let handle: FileHandle | undefined;
	try {
		handle = await open(path, NO_FOLLOW);
	} catch (err) {
		const code = (err as NodeJS.ErrnoException).code;
		if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
		if (code === 'ELOOP') return { kind: 'unsafe', reason: 'is a symbolic link' };
		throw err;
	}
	try {
		const info = await handle.stat();
		const reason = unsafeReason(info, singleLink);
		if (reason) return { kind: 'unsafe', reason };
		if (info.size > limit) return { kind: 'too_large', size: info.size };
		// Bounded even if the file grows after the stat.
		const chunks: Buffer[] = [];
		let total = 0;
		for (;;) {
			const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(Math.min(limit, info.size) + 1), 0, Math.min(limit, info.size) + 1, null);
			if (bytesRead === 0) break;
			total += bytesRead;
			if (total > limit) return { kind: 'too_large', size: total };
			chunks.push(buffer.subarray(0, bytesRead));
		}
		return { kind: 'ok', data: Buffer.concat(chunks, total) };
	} finally {
		await handle.close();
	}
}

/**
 * Gives a regular file exactly `mode` when `wrong(mode)` says its mode is wrong; never through a link
 * (a chmod that followed a symbolic link, or a hard link's other name, could open up any file on the
 * host). Sync: rare, and on paths that already stat synchronously.
 */
export function fixModeSync(path: string, mode: number, wrong: (current: number) => boolean = (current) => current !== mode, singleLink = true) {
	let fd: number;
	try {
		fd = openSync(path, NO_FOLLOW);
	} catch {
		return; // gone, or a link: nothing of ours to fix
	}
	try {
		const info = fstatSync(fd);
		if (unsafeReason(info, singleLink) === null && wrong(info.mode & 0o7777)) fchmodSync(fd, mode);
	} finally {
		closeSync(fd);
	}
}

/**
 * Gives a folder exactly `mode`, but never through a link: a linked folder's target is not the
 * platform's to open up or close (a chmod as root could reach any folder on the host).
 */
async function fixFolderMode(path: string, mode: number) {
	const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW).catch(() => null);
	if (!handle) return;
	try {
		await handle.chmod(mode);
	} finally {
		await handle.close();
	}
}

/** Writes `data` to a fresh dotfile beside `file`, with exactly `mode` whatever the umask, and flushes it; the caller renames or links it. */
export async function writeTemp(dir: string, file: string, data: string | Uint8Array, mode: number): Promise<string> {
	const temp = join(dir, `.${file}.${randomBytes(6).toString('hex')}.tmp`);
	const handle = await open(temp, 'wx', mode);
	try {
		// open()'s mode is masked by the process umask (UMask=0027 in the systemd unit).
		await handle.chmod(mode);
		await handle.writeFile(data);
		await handle.sync();
	} catch (err) {
		await handle.close();
		await unlink(temp).catch(() => {});
		throw err;
	}
	await handle.close();
	return temp;
}

/** Removes the temp files (see writeTemp) of writes a crash cut short: never data, safe to drop. */
export async function dropTemps(dir: string) {
	for (const file of await glob('.*.tmp', { cwd: dir, dot: true, onlyFiles: true, followSymbolicLinks: false })) await rm(join(dir, file), { force: true });
}

/** Makes a rename or unlink in `dir` durable. */
export async function syncDir(dir: string) {
	const handle = await open(dir, 'r');
	try {
		await handle.sync();
	} finally {
		await handle.close();
	}
}
