import { chmod, link, mkdir, mkdtemp, rm, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { createStore } from '../src/store.js';
import { type Platform, containersOf, deploy, orphans, startPlatform, uniqueName } from './helpers.js';

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const octal = (n: number) => n.toString(8).padStart(4, '0');

let platform: Platform;

const modes = suite('file modes under a strict umask');
let previousUmask = 0;
modes.before(async () => {
	// The shipped systemd unit's UMask=0027: sources must still be readable by the container's user.
	previousUmask = process.umask(0o027);
	platform = await startPlatform();
});
modes.after(async () => {
	process.umask(previousUmask);
	assert.equal(await orphans(platform), []);
	await platform.close();
});

modes('a Python and a Deno function created through the API run on real containers', async () => {
	await deploy(platform, 'py', 'echo.py', { env: { SECRET: 'x' } });
	await deploy(platform, 'ts', 'echo.ts');
	const a = (await platform.request('POST', '/functions/py/invoke', { input: 1 })).body;
	assert.is(a.status, 'success', a.error_message);
	const b = (await platform.request('POST', '/functions/ts/invoke', { input: 2 })).body;
	assert.is(b.status, 'success', b.error_message);
});

modes('settings and meta files are 0600 in 0700 folders; sources 0644 in a 0700 folder', async () => {
	const [py, ts] = [uniqueName('py'), uniqueName('ts')];
	await deploy(platform, py, 'echo.py', { env: { SECRET: 'x' } });
	await deploy(platform, ts, 'echo.ts');
	const data = platform.dataDir;
	assert.is(octal(await mode(join(data, `settings/${py}.json`))), '0600', 'settings hold env secrets');
	assert.is(octal(await mode(join(data, `meta/${py}.json`))), '0600');
	assert.is(octal(await mode(join(data, `functions/${py}.py`))), '0644', 'readable by the container user');
	assert.is(octal(await mode(join(data, `functions/${ts}.ts`))), '0644');
	for (const dir of ['settings', 'meta', 'functions']) assert.is(octal(await mode(join(data, dir))), '0700', dir);
});

modes('a data folder the platform creates is 0700', async () => {
	const parent = await mkdtemp(join(tmpdir(), 'lowcode-faas-modes-'));
	try {
		const data = join(parent, 'data');
		await createStore(loadConfig({ LOWCODE_FAAS_DATA: data })).init();
		assert.is(octal(await mode(data)), '0700');
	} finally {
		await rm(parent, { recursive: true, force: true });
	}
});

modes('folders and files an earlier version left open are tightened at start', async () => {
	const data = await mkdtemp(join(tmpdir(), 'lowcode-faas-modes-'));
	try {
		for (const dir of ['functions', 'meta', 'settings']) {
			await mkdir(join(data, dir));
			await chmod(join(data, dir), 0o755);
		}
		await writeFile(join(data, 'settings/old.json'), '{"env":{"K":"v"}}\n', { mode: 0o644 });
		await writeFile(join(data, 'meta/old.json'), JSON.stringify({ id: 'x', created_at: new Date().toISOString() }), { mode: 0o644 });
		await writeFile(join(data, 'functions/old.py'), 'print(1)\n');
		await chmod(join(data, 'functions/old.py'), 0o640);
		const store = createStore(loadConfig({ LOWCODE_FAAS_DATA: data }));
		await store.init();
		for (const dir of ['functions', 'meta', 'settings']) assert.is(octal(await mode(join(data, dir))), '0700', dir);
		assert.is(octal(await mode(join(data, 'settings/old.json'))), '0600');
		assert.is(octal(await mode(join(data, 'meta/old.json'))), '0600');
		// Written under the old UMask=0027: the container's user could not read it.
		await store.locate('old');
		assert.is(octal(await mode(join(data, 'functions/old.py'))), '0644');
	} finally {
		await rm(data, { recursive: true, force: true });
	}
});

modes.run();

const SECRET = 'TOP-SECRET-CONTENT-outside-the-data-folder';
let outside: string;

// A fresh platform for each test: some tests below remove the files the others look at.
const links = suite('links and special files in functions/');
links.before.each(async () => {
	outside = await mkdtemp(join(tmpdir(), 'lowcode-faas-outside-'));
	await writeFile(join(outside, 'secret.py'), `# ${SECRET}\nprint("${SECRET}")\n`);
	platform = await startPlatform();
	const functions = join(platform.dataDir, 'functions');
	await symlink(join(outside, 'secret.py'), join(functions, 'leak.py'));
	await symlink('/etc/hostname', join(functions, 'host.ts'));
	await link(join(outside, 'secret.py'), join(functions, 'hard.py'));
	await execa('mkfifo', [join(functions, 'fifo.py')]);
	await mkdir(join(functions, 'dir.py'));
	await writeFile(join(functions, 'fine.py'), 'print("fine")\n');
});
links.after.each(async () => {
	assert.equal(await containersOf(platform.config), [], 'no container was started for an unsafe file');
	await platform.close();
	await rm(outside, { recursive: true, force: true });
});

const UNSAFE = ['leak', 'host', 'hard', 'fifo', 'dir'];

links('GET /functions/NAME refuses a symlink, a hard link, a FIFO, a folder: 409 unsafe_function_file', async () => {
	for (const name of UNSAFE) {
		const res = await platform.request('GET', `/functions/${name}`);
		assert.is(res.status, 409, `${name}: ${JSON.stringify(res.body)}`);
		assert.is(res.body.error.code, 'unsafe_function_file', name);
		assert.not.ok(JSON.stringify(res.body).includes(SECRET), name);
	}
});

links('GET /functions lists them with the reason, never the content, and does not hang on the FIFO', async () => {
	const res = await fetch(`${platform.app.url}/functions`, { signal: AbortSignal.timeout(5_000) });
	const text = await res.text();
	assert.is(res.status, 200, text);
	assert.not.ok(text.includes(SECRET));
	const list = JSON.parse(text) as { name: string; error?: { code: string } }[];
	assert.equal(
		list.map((f) => f.name),
		['dir', 'fifo', 'fine', 'hard', 'host', 'leak'],
	);
	for (const entry of list) assert.is(entry.error?.code, entry.name === 'fine' ? undefined : 'unsafe_function_file', entry.name);
});

links('invoke and the raw route refuse them without starting a container', async () => {
	for (const name of UNSAFE) {
		const invoked = await platform.request('POST', `/functions/${name}/invoke`, {});
		assert.is(invoked.status, 409, `${name}: ${JSON.stringify(invoked.body)}`);
		assert.is(invoked.body.error.code, 'unsafe_function_file');
		const raw = await platform.request('GET', `/fn/${name}/`);
		assert.is(raw.status, 409, `${name}: ${JSON.stringify(raw.body)}`);
		assert.is(raw.headers.get('x-lowcode-faas-error'), 'unsafe_function_file');
		assert.not.ok(JSON.stringify(raw.body).includes(SECRET));
	}
	const queued = await platform.request('POST', '/functions/leak/invoke?async=true', {});
	assert.is(queued.status, 409);
});

links('DELETE removes the link itself, never its target; POST replaces a link with a plain file', async () => {
	assert.is((await platform.request('DELETE', '/functions/leak')).status, 204);
	assert.ok((await stat(join(outside, 'secret.py'))).isFile(), 'the target is untouched');
	const res = await platform.request('POST', '/functions', { name: 'host', language: 'deno', source_code: 'Deno.serve(() => new Response("x"));\n' });
	assert.is(res.status, 201, JSON.stringify(res.body));
	assert.is((await platform.request('GET', '/functions/host')).body.source_code, 'Deno.serve(() => new Response("x"));\n');
	assert.ok((await stat('/etc/hostname')).isFile());
	// Unlinking a FIFO or a hard link is harmless; a folder is not the platform's to remove.
	assert.is((await platform.request('DELETE', '/functions/fifo')).status, 204);
	assert.is((await platform.request('DELETE', '/functions/hard')).status, 204);
	assert.ok((await stat(join(outside, 'secret.py'))).isFile());
	const folder = await platform.request('DELETE', '/functions/dir');
	assert.is(folder.status, 409, JSON.stringify(folder.body));
	assert.is(folder.body.error.code, 'unsafe_function_file');
	const replaced = await platform.request('POST', '/functions', { name: 'dir', language: 'deno', source_code: 'x' });
	assert.is(replaced.status, 409, JSON.stringify(replaced.body));
	assert.ok((await stat(join(platform.dataDir, 'functions/dir.py'))).isDirectory());
});

links('GET /functions/NAME of a huge hand-dropped file is 413 source_too_large without reading it', async () => {
	const path = join(platform.dataDir, 'functions/huge.py');
	await writeFile(path, '');
	await truncate(path, 1024 * 1024 * 1024); // sparse: 1 GiB that takes no disk
	try {
		const res = await platform.request('GET', '/functions/huge');
		assert.is(res.status, 413, JSON.stringify(res.body).slice(0, 200));
		assert.is(res.body.error.code, 'source_too_large');
		const list = await platform.request('GET', '/functions');
		assert.is(list.body.find((f: { name: string }) => f.name === 'huge').size, 1024 * 1024 * 1024);
		// PATCH answers with the source: refused before the settings are changed, not after.
		const patched = await platform.request('PATCH', '/functions/huge', { timeout_ms: 1000 });
		assert.is(patched.status, 413, JSON.stringify(patched.body).slice(0, 200));
		assert.is(await stat(join(platform.dataDir, 'settings/huge.json')).catch(() => null), null, 'nothing was written');
	} finally {
		await unlink(path);
	}
});

links.run();

const race = suite('a source swapped for a link after the check');
race('load() does not follow a symlink put in place after locate()', async () => {
	const data = await mkdtemp(join(tmpdir(), 'lowcode-faas-race-'));
	const secret = join(data, 'secret.txt');
	try {
		const store = createStore(loadConfig({ LOWCODE_FAAS_DATA: data }));
		await store.init();
		await writeFile(secret, SECRET);
		await writeFile(join(data, 'functions/swap.py'), 'print(1)\n');
		const ref = await store.locate('swap');
		assert.ok(ref);
		await unlink(join(data, 'functions/swap.py'));
		await symlink(secret, join(data, 'functions/swap.py'));
		let shown = '';
		try {
			shown = JSON.stringify(await store.load(ref!));
		} catch (err) {
			assert.is((err as { code?: string }).code, 'unsafe_function_file');
		}
		assert.not.ok(shown.includes(SECRET));
	} finally {
		await rm(data, { recursive: true, force: true });
	}
});
race('load() does not hang on a FIFO put in place after locate()', async () => {
	const data = await mkdtemp(join(tmpdir(), 'lowcode-faas-race-'));
	try {
		const store = createStore(loadConfig({ LOWCODE_FAAS_DATA: data }));
		await store.init();
		await writeFile(join(data, 'functions/pipe.py'), 'print(1)\n');
		const ref = await store.locate('pipe');
		await unlink(join(data, 'functions/pipe.py'));
		await execa('mkfifo', [join(data, 'functions/pipe.py')]);
		const outcome = await Promise.race([
			store.load(ref!).then(
				() => 'read',
				(err: { code?: string }) => err.code,
			),
			// A bound on a hang, not a wait: the refusal comes at once.
			new Promise((resolve) => setTimeout(resolve, 3_000, 'hung')).then((v) => v),
		]);
		assert.is(outcome, 'unsafe_function_file');
	} finally {
		await rm(data, { recursive: true, force: true });
	}
});

race('first sightings at the same time agree on one id (the id file has two names for a moment)', async () => {
	const data = await mkdtemp(join(tmpdir(), 'lowcode-faas-race-'));
	try {
		for (let round = 0; round < 20; round++) {
			const store = createStore(loadConfig({ LOWCODE_FAAS_DATA: data }));
			await store.init();
			await writeFile(join(data, `functions/f${round}.py`), 'print(1)\n');
			// Separate stores: no shared memory, only the files.
			const others = Array.from({ length: 4 }, () => createStore(loadConfig({ LOWCODE_FAAS_DATA: data })));
			const ids = await Promise.all([store, ...others].map(async (s) => (await s.get(`f${round}`))!.id));
			assert.is(new Set(ids).size, 1, ids.join(' '));
		}
	} finally {
		await rm(data, { recursive: true, force: true });
	}
});

race.run();
