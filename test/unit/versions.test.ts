import { lstat, mkdtemp, readFile, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { type Store, VersionNotFound, createStore } from '../../src/store.js';
import { createVersions, prunable, versionEntries } from '../../src/versions.js';

// Numbered versions of function sources: the pure rules, then the files, then through the store. No Docker.

const rules = suite('versions: numbering and pruning rules');

rules('version files are read newest first; anything else in the folder is ignored', () => {
	const entries = versionEntries(['1.py', '10.ts', '2.py', '.3.py.abc.tmp', '03.py', '0.py', 'x.py', '4.js', '5.py.bak', '99999999999999999.py']);
	assert.equal(
		entries.map((e) => [e.version, e.language]),
		[
			[10, 'deno'],
			[2, 'python'],
			[1, 'python'],
		],
	);
});

rules('pruning keeps the newest `keep`, and never the current one, even with keep 0', () => {
	const kept = [5, 4, 3, 2, 1].map((version) => ({ version }));
	assert.equal(
		prunable(kept, 3).map((e) => e.version),
		[2, 1],
	);
	assert.equal(prunable(kept, 5), []);
	assert.equal(prunable(kept, 9), []);
	assert.equal(
		prunable(kept, 0).map((e) => e.version),
		[4, 3, 2, 1],
	);
});

rules.run();

const files = suite('versions: on disk');
let dataDir = '';
files.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lcf-versions-'));
});
files.after.each(async () => {
	await rm(dataDir, { recursive: true, force: true });
});

const versionsIn = async (dir: string, keep = 3) => {
	const versions = createVersions(loadConfig({ LOWCODE_FAAS_DATA: dir, LOWCODE_FAAS_VERSIONS_KEEP: String(keep) }));
	await versions.init();
	return versions;
};

files('numbers go 1, 2, 3; the same source again (same language, same bytes) adds none; a language change does', async () => {
	const versions = await versionsIn(dataDir);
	assert.is(await versions.record('f', 'python', Buffer.from('one')), 1);
	assert.is(await versions.record('f', 'python', Buffer.from('one')), 1);
	assert.is(await versions.record('f', 'python', Buffer.from('two')), 2);
	assert.is(await versions.record('f', 'deno', Buffer.from('two')), 3);
	assert.is(await versions.record('g', 'python', Buffer.from('one')), 1, 'numbers are per function');
	const list = await versions.list('f');
	assert.equal(
		list.map((v) => [v.version, v.language, v.size]),
		[
			[3, 'deno', 3],
			[2, 'python', 3],
			[1, 'python', 3],
		],
	);
	assert.ok(!Number.isNaN(Date.parse(list[0]!.created_at)));
	assert.is((await versions.read('f', 2))?.source.toString(), 'two');
	assert.is(await versions.read('f', 4), null);
});

files('at most `keep` are kept, the oldest pruned; numbers keep going up', async () => {
	const versions = await versionsIn(dataDir, 3);
	for (let i = 1; i <= 5; i++) assert.is(await versions.record('f', 'python', Buffer.from(`v${i}`)), i);
	assert.equal(
		(await versions.list('f')).map((v) => v.version),
		[5, 4, 3],
	);
	assert.is(await versions.read('f', 1), null);
	assert.is(await versions.record('f', 'python', Buffer.from('v6')), 6);
	assert.equal((await readdir(join(dataDir, 'versions', 'f'))).sort(), ['4.py', '5.py', '6.py']);
});

files('two sightings of one edit at once make one version', async () => {
	const versions = await versionsIn(dataDir);
	const numbers = await Promise.all([1, 2, 3, 4].map(() => versions.record('f', 'python', Buffer.from('same'))));
	assert.equal(numbers, [1, 1, 1, 1]);
});

files('a failure in `place` records nothing and leaves no temp file', async () => {
	const versions = await versionsIn(dataDir);
	await versions.record('f', 'python', Buffer.from('one'));
	const failed = await versions.record('f', 'python', Buffer.from('two'), async () => Promise.reject(new Error('disk full'))).catch((err: Error) => err);
	assert.instance(failed, Error);
	assert.equal(await readdir(join(dataDir, 'versions', 'f')), ['1.py']);
	assert.is(await versions.record('f', 'python', Buffer.from('two')), 2);
});

files('folders 0700, files 0600; a link in place of the folder is never followed', async () => {
	const versions = await versionsIn(dataDir);
	await versions.record('f', 'python', Buffer.from('one'));
	assert.is((await lstat(join(dataDir, 'versions'))).mode & 0o777, 0o700);
	assert.is((await lstat(join(dataDir, 'versions', 'f'))).mode & 0o777, 0o700);
	assert.is((await lstat(join(dataDir, 'versions', 'f', '1.py'))).mode & 0o777, 0o600);
	const outside = await mkdtemp(join(tmpdir(), 'lcf-outside-'));
	try {
		await writeFile(join(outside, '1.py'), 'secret');
		await symlink(outside, join(dataDir, 'versions', 'linked'));
		assert.equal(await versions.list('linked'), []);
		assert.is(await versions.read('linked', 1), null);
		assert.instance(await versions.record('linked', 'python', Buffer.from('x')).catch((err: Error) => err), Error);
		assert.equal(await readdir(outside), ['1.py'], 'nothing written through the link');
		await versions.drop('linked');
		assert.is(await readFile(join(outside, '1.py'), 'utf8'), 'secret', 'dropping removes the link, not its target');
	} finally {
		await rm(outside, { recursive: true, force: true });
	}
});

files('a name that is not a function name never reaches the file system', async () => {
	const versions = await versionsIn(dataDir);
	for (const name of ['..', '../x', 'a/b', '.hidden', '']) {
		assert.instance(await versions.list(name).catch((err: Error) => err), Error, name);
		assert.instance(await versions.record(name, 'python', Buffer.from('x')).catch((err: Error) => err), Error, name);
	}
});

files('drop removes every version: the next one is 1 again', async () => {
	const versions = await versionsIn(dataDir);
	await versions.record('f', 'python', Buffer.from('one'));
	await versions.record('f', 'python', Buffer.from('two'));
	await versions.drop('f');
	assert.equal(await versions.list('f'), []);
	assert.is(await versions.record('f', 'python', Buffer.from('three')), 1);
});

files('temp files a crash left are dropped at start', async () => {
	const versions = await versionsIn(dataDir);
	await versions.record('f', 'python', Buffer.from('one'));
	await writeFile(join(dataDir, 'versions', 'f', '.2.py.0123456789ab.tmp'), 'half');
	await versionsIn(dataDir);
	assert.equal(await readdir(join(dataDir, 'versions', 'f')), ['1.py']);
});

files.run();

const store = suite('versions: through the store');
let storeDir = '';
let s: Store;
store.before.each(async () => {
	storeDir = await mkdtemp(join(tmpdir(), 'lcf-versions-store-'));
	s = createStore(loadConfig({ LOWCODE_FAAS_DATA: storeDir, LOWCODE_FAAS_VERSIONS_KEEP: '3' }));
	await s.init();
});
store.after.each(async () => {
	await rm(storeDir, { recursive: true, force: true });
});

store('save numbers versions; the same source adds none; a settings change adds none', async () => {
	assert.is((await s.save('f', 'python', 'one')).version, 1);
	assert.is((await s.save('f', 'python', 'one', { timeout_ms: 1000 })).version, 1);
	assert.is((await s.updateSettings('f', { timeout_ms: 2000 }))?.version, 1);
	assert.is((await s.save('f', 'python', 'two')).version, 2);
	assert.is((await s.get('f'))?.version, 2);
	assert.is((await s.locate('f'))?.versionNumber, 2);
	assert.equal(
		(await s.list(null, 10)).functions.map((f) => ('version' in f ? f.version : null)),
		[2],
	);
});

store('a file dropped by hand is version 1 when first seen; a hand edit is the next version', async () => {
	const path = join(storeDir, 'functions', 'hand.py');
	await writeFile(path, 'first');
	assert.is((await s.locate('hand'))?.versionNumber, 1);
	await writeFile(path, 'second, longer');
	assert.is((await s.locate('hand'))?.versionNumber, 2);
	assert.is((await s.locate('hand'))?.versionNumber, 2, 'seen again unchanged: the same version');
	assert.is((await s.versions.read('hand', 2))?.source.toString(), 'second, longer');
});

store('the warm path reads nothing: an unchanged file is its version from memory', async () => {
	await s.save('f', 'python', 'one');
	assert.is((await s.locate('f'))?.versionNumber, 1);
	// Were the file read again and compared, version 1 would be recorded anew.
	await rm(join(storeDir, 'versions', 'f'), { recursive: true });
	for (let i = 0; i < 3; i++) assert.is((await s.locate('f'))?.versionNumber, 1);
	assert.is(await lstat(join(storeDir, 'versions', 'f')).catch(() => null), null);
});

store('after a restart, a file unchanged is still its version; one edited while down is the next', async () => {
	await s.save('f', 'python', 'one');
	await s.save('g', 'python', 'one');
	await writeFile(join(storeDir, 'functions', 'g.py'), 'edited while down');
	const again = createStore(loadConfig({ LOWCODE_FAAS_DATA: storeDir, LOWCODE_FAAS_VERSIONS_KEEP: '3' }));
	await again.init();
	assert.is((await again.locate('f'))?.versionNumber, 1);
	assert.is((await again.locate('g'))?.versionNumber, 2);
});

store('rollback adds the old source as a new version; to the current source it adds none', async () => {
	await s.save('f', 'python', 'one');
	await s.save('f', 'deno', 'two');
	const back = await s.rollback('f', 1);
	assert.equal([back?.record.version, back?.record.language, back?.record.source_code, back?.changed], [3, 'python', 'one', true]);
	assert.is(await readFile(join(storeDir, 'functions', 'f.py'), 'utf8'), 'one');
	assert.is(await lstat(join(storeDir, 'functions', 'f.ts')).catch(() => null), null, 'one source per name');
	const same = await s.rollback('f', 1);
	assert.equal([same?.record.version, same?.changed], [3, false], 'version 1 is the current source already');
	const current = await s.rollback('f', 3);
	assert.equal([current?.record.version, current?.changed], [3, false]);
	assert.is(await s.rollback('nothing', 1), null);
	assert.instance(await s.rollback('f', 99).catch((err: Error) => err), VersionNotFound);
});

store('rollback restores the bytes exactly, even ones that are not UTF-8', async () => {
	const path = join(storeDir, 'functions', 'raw.py');
	const bytes = Buffer.from([0x23, 0x20, 0xff, 0xfe, 0x0a]);
	await writeFile(path, bytes);
	assert.is((await s.locate('raw'))?.versionNumber, 1);
	await s.save('raw', 'python', 'replaced');
	assert.is((await s.rollback('raw', 1))?.record.version, 3);
	assert.equal(await readFile(path), bytes);
});

store('delete removes the versions: a namesake starts at 1; so does one made after a hand delete', async () => {
	await s.save('f', 'python', 'one');
	await s.save('f', 'python', 'two');
	await s.remove('f');
	assert.is(await lstat(join(storeDir, 'versions', 'f')).catch(() => null), null);
	assert.is((await s.save('f', 'python', 'three')).version, 1);
	await s.save('f', 'python', 'four');
	await rm(join(storeDir, 'functions', 'f.py'));
	assert.is((await s.save('f', 'python', 'five')).version, 1);
});

store('a source too large to keep has no version; the versions kept stay', async () => {
	await s.save('big', 'python', 'small');
	const path = join(storeDir, 'functions', 'big.py');
	await truncate(path, 1024 * 1024 + 1);
	assert.is((await s.locate('big'))?.versionNumber, null);
	assert.equal(
		(await s.versions.list('big')).map((v) => v.version),
		[1],
	);
});

store.run();
