import { randomUUID } from 'node:crypto';
import { link, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_MODE, dropTemps, fixModeSync, privateDir, readRegular, syncDir, writeTemp } from './files.js';

/** A function's id and creation time. */
export interface Identity {
	id: string;
	created_at: string;
}

// Bound on reading an id file.
const ID_LIMIT = 64 * 1024;

/**
 * Each function's id and creation time in `meta/NAME.json`, made the first time its source is seen
 * and kept while it exists. They change only through here, so invocations read them from memory.
 */
export function createIdFiles(dataDir: string) {
	const dir = join(dataDir, 'meta');
	const cache = new Map<string, Identity>();

	/** Makes the folder, drops temp files a crash left, tightens files an earlier version wrote 0644. */
	async function init() {
		// Explicitly: mkdir's mode is masked by the umask, and an earlier version left it 0755.
		await privateDir(dir);
		await dropTemps(dir);
		// Tightening only, so a hard link does no harm here.
		for (const file of await readdir(dir)) fixModeSync(join(dir, file), PRIVATE_MODE, undefined, false);
	}

	/** The function's id, or null when it has none (yet). */
	async function read(name: string): Promise<Identity | null> {
		const cached = cache.get(name);
		if (cached) return cached;
		try {
			// Two names for a moment while `ensure` links it into place.
			const file = await readRegular(join(dir, `${name}.json`), ID_LIMIT, false);
			if (file.kind !== 'ok') return null;
			const identity = JSON.parse(file.data.toString('utf8')) as Identity;
			if (typeof identity.id !== 'string' || typeof identity.created_at !== 'string') return null;
			cache.set(name, identity);
			return identity;
		} catch {
			return null;
		}
	}

	/** The function's id and creation time, made and kept the first time its source is seen. */
	async function ensure(name: string, createdAt: () => Promise<Date>): Promise<Identity> {
		const existing = await read(name);
		if (existing) return existing;
		const identity: Identity = { id: randomUUID(), created_at: (await createdAt()).toISOString() };
		// link() fails when the name exists, so two first sightings agree on one id.
		const temp = await writeTemp(dir, `${name}.json`, JSON.stringify(identity) + '\n', PRIVATE_MODE);
		try {
			await link(temp, join(dir, `${name}.json`));
			await syncDir(dir);
			cache.set(name, identity);
			return identity;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
			return (await read(name)) ?? identity;
		} finally {
			await unlink(temp).catch(() => {});
		}
	}

	async function drop(name: string) {
		cache.delete(name);
		await rm(join(dir, `${name}.json`), { force: true });
	}

	return { dir, init, read, ensure, drop };
}
