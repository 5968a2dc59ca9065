import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createIdFiles } from '../../src/ids.js';

// Function ids on their own: a temporary folder, no server, no Docker.

const ids = suite('function ids');
let dataDir = '';
ids.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lcf-ids-'));
});
ids.after.each(async () => {
	await rm(dataDir, { recursive: true, force: true });
});

ids('two first sightings at once agree on one id, kept on disk (0600) for a fresh reader', async () => {
	const first = createIdFiles(dataDir);
	await first.init();
	const second = createIdFiles(dataDir);
	const made = new Date('2020-01-02T03:04:05Z');
	const [a, b] = await Promise.all([first.ensure('f', async () => made), second.ensure('f', async () => new Date())]);
	assert.equal(a, b);
	assert.is((await stat(join(dataDir, 'meta', 'f.json'))).mode & 0o777, 0o600);
	const fresh = createIdFiles(dataDir);
	assert.equal(await fresh.read('f'), a);
	await fresh.drop('f');
	assert.is(await fresh.read('f'), null);
	assert.is.not((await fresh.ensure('f', async () => made)).id, a.id, 'a new function after a drop gets a new id');
});

ids('a broken id file is no id', async () => {
	const files = createIdFiles(dataDir);
	await files.init();
	await writeFile(join(dataDir, 'meta', 'f.json'), '{"id": 1}');
	assert.is(await files.read('f'), null);
});

ids.run();
