import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixture, startPlatform } from './helpers.js';

// Holes found by the outside review, each kept closed by a test.

const mode = async (path: string) => (await stat(path)).mode & 0o777;

/** A folder and a file outside the data folder that links in runs/ point at: the platform must leave them as they are. */
async function victims() {
	const root = await mkdtemp(join(tmpdir(), 'lowcode-faas-victim-'));
	const dir = join(root, 'dir');
	const file = join(root, 'file');
	await mkdir(dir);
	await chmod(dir, 0o755);
	await writeFile(file, 'keep\n');
	await chmod(file, 0o644);
	return { root, dir, file };
}

async function untouched(v: { dir: string; file: string }) {
	assert.is(await mode(v.dir), 0o755, 'a folder a link in runs/ points at keeps its mode');
	assert.equal(await readdir(v.dir), [], 'nothing is written into a folder a link in runs/ points at');
	assert.is(await mode(v.file), 0o644, 'a file a link in runs/ points at keeps its mode');
	assert.is(await readFile(v.file, 'utf8'), 'keep\n', 'nothing is appended to a file a link in runs/ points at');
}

function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms)));
	return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const history = suite('run history in data/runs/ never follows a link nor waits on a FIFO');

history('at start: a linked function folder, a linked segment and a FIFO segment are left alone, and the platform starts', async () => {
	const v = await victims();
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-test-'));
	const runs = join(dataDir, 'runs');
	await mkdir(runs, { recursive: true });
	await symlink(v.dir, join(runs, '11111111-1111-4111-8111-111111111111'));
	await mkdir(join(runs, '22222222-2222-4222-8222-222222222222'));
	await symlink(v.file, join(runs, '22222222-2222-4222-8222-222222222222', '0000000001.jsonl'));
	await mkdir(join(runs, '33333333-3333-4333-8333-333333333333'));
	await execa('mkfifo', [join(runs, '33333333-3333-4333-8333-333333333333', '0000000001.jsonl')]);
	try {
		const platform = await bounded(startPlatform({ LOWCODE_FAAS_DATA: dataDir }), 15_000, 'starting beside a FIFO in runs/');
		await platform.close();
		await untouched(v);
	} finally {
		await rm(dataDir, { recursive: true, force: true });
		await rm(v.root, { recursive: true, force: true });
	}
});

history('while running: history written for a function whose folder or segment became a link goes nowhere else', async () => {
	const v = await victims();
	const platform = await startPlatform();
	try {
		const source = await fixture('echo.py');
		const a = await platform.request('POST', '/functions', { name: 'a', language: 'python', source_code: source });
		const b = await platform.request('POST', '/functions', { name: 'b', language: 'python', source_code: source });
		assert.is(a.status, 201, JSON.stringify(a.body));
		assert.is(b.status, 201, JSON.stringify(b.body));
		const runs = join(platform.dataDir, 'runs');
		await mkdir(runs, { recursive: true });
		await rm(join(runs, a.body.id), { recursive: true, force: true });
		await symlink(v.dir, join(runs, a.body.id));
		await mkdir(join(runs, b.body.id), { recursive: true });
		await symlink(v.file, join(runs, b.body.id, '0000000001.jsonl'));
		for (const name of ['a', 'b']) {
			const r = await platform.request('POST', `/functions/${name}/invoke`, { input: 1 });
			assert.is(r.body.status, 'success', r.body.error_message);
		}
	} finally {
		// Closing writes what history waits to write.
		await platform.close();
	}
	try {
		await untouched(v);
	} finally {
		await rm(v.root, { recursive: true, force: true });
	}
});

history.run();

const folders = suite('the folders the platform makes in data/ are never reached through a link');

folders('a data/.run that is a link: its target is neither emptied nor chmodded, and env files are not written there', async () => {
	const v = await victims();
	await writeFile(join(v.dir, 'precious'), 'keep\n');
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-test-'));
	await symlink(v.dir, join(dataDir, '.run'));
	try {
		const platform = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
		await platform.close();
		assert.equal(await readdir(v.dir), ['precious'], 'the folder .run pointed at is not emptied');
		assert.is(await mode(v.dir), 0o755, 'nor chmodded');
	} finally {
		await rm(dataDir, { recursive: true, force: true });
		await rm(v.root, { recursive: true, force: true });
	}
});

folders("linked functions/, meta/, settings/ and runs/ keep their targets' modes", async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-test-'));
	const targets: string[] = [];
	for (const sub of ['functions', 'meta', 'settings', 'runs']) {
		const v = await victims();
		targets.push(v.root);
		await symlink(v.dir, join(dataDir, sub));
	}
	try {
		const platform = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
		await platform.close();
		for (const root of targets) assert.is(await mode(join(root, 'dir')), 0o755, `${root}/dir keeps its mode`);
	} finally {
		await rm(dataDir, { recursive: true, force: true });
		for (const root of targets) await rm(root, { recursive: true, force: true });
	}
});

folders.run();
