import { mkdtemp, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, allContainersOf, createFunction, fixture, invoke, startPlatform, uniqueName } from './helpers.js';

// Attacks on numbered versions: what a version number may be, what a failure to keep a version may
// stop (never the function itself), and a link where a function's versions lie.

let saying = '';
const says = (word: string) => saying.replace('WORD = "default"', `WORD = ${JSON.stringify(word)}`);

/** Fills the file system holding `dir` until a write fails for want of space; the file to remove after. */
async function fillDisk(dir: string): Promise<string> {
	const filler = join(dir, 'filler');
	await writeFile(filler, '');
	const chunk = Buffer.alloc(4096, 1);
	try {
		for (;;) await writeFile(filler, chunk, { flag: 'a' });
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
	}
	return filler;
}

const full = suite('versions: a version that cannot be written never hides the function');

full('on a full disk, a source edited by hand is still read and listed; it is kept once there is room', async () => {
	saying = await fixture('saying.py');
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-versions-attack-'));
	await execa('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dataDir]);
	try {
		const p = await startPlatform({ LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_STEM_CELLS: '0' });
		try {
			await createFunction(p, 'edited', 'python', says('one'));
			const first = await invoke(p, 'edited');
			assert.equal([first.output, first.version], ['one', 1]);
			await writeFile(join(dataDir, 'functions', 'edited.py'), says('two'));
			const filler = await fillDisk(dataDir);
			// The edit cannot be kept as a version: the function is read and listed all the same, with no number.
			// (Running it takes a new container, whose start needs room of its own under data/.)
			const read = await p.request('GET', '/functions/edited');
			assert.equal([read.status, read.body.version, read.body.source_code], [200, null, says('two')], JSON.stringify(read.body));
			const listed = await p.request('GET', '/functions');
			assert.is(listed.status, 200, JSON.stringify(listed.body));
			assert.equal(
				listed.body.map((f: { name: string; version: number | null }) => [f.name, f.version]),
				[['edited', null]],
			);
			const kept = await p.request('GET', '/functions/edited/versions');
			assert.equal([kept.status, kept.body.length, kept.body[0]?.current], [200, 1, false]);
			// Room again: the next lookup keeps it.
			await unlink(filler);
			const later = await invoke(p, 'edited');
			assert.equal([later.output, later.version], ['two', 2]);
		} finally {
			await p.app.close();
			assert.equal(await allContainersOf(p.config), [], 'no container left');
		}
	} finally {
		await execa('umount', [dataDir]);
		await rm(dataDir, { recursive: true, force: true });
	}
});

full.run();

const input = suite('versions: what a version number may be');
let platform: Platform;
input.before(async () => {
	saying = await fixture('saying.py');
	platform = await startPlatform({ LOWCODE_FAAS_STEM_CELLS: '0', LOWCODE_FAAS_VERSIONS_KEEP: '3' });
});
input.after(() => platform.close());

input('a number in the path is digits only: no sign, no leading zero, no exponent, no other digits; a huge one is no version', async () => {
	const name = uniqueName('num');
	await createFunction(platform, name, 'python', says('one'));
	for (const raw of ['01', '1e3', '0x1', '-1', '0', '+1', '1.0', '%201', '1%00', '%EF%BC%91', '%D9%A1', 'Infinity', 'NaN', '1_0', '9999999999999999999', '2%2f']) {
		const res = await platform.request('GET', `/functions/${name}/versions/${raw}`);
		assert.equal([res.status, res.body.error?.code], [400, 'invalid_version'], raw);
	}
	assert.is((await platform.request('GET', `/functions/${name}/versions/%31`)).body.version, 1, 'an encoded digit is that digit');
	const huge = await platform.request('GET', `/functions/${name}/versions/999999999999999`);
	assert.equal([huge.status, huge.body.error?.code], [404, 'version_not_found']);
});

input('the rollback body takes a JSON number that is a positive integer, and nothing else', async () => {
	const name = uniqueName('body');
	await createFunction(platform, name, 'python', says('one'));
	await createFunction(platform, name, 'python', says('two'));
	for (const body of ['{"version":"1"}', '{"version":[1]}', '{"version":1.5}', '{"version":-1}', '{"version":0}', '{"version":-0}', '{"version":1e400}', '{"version":null}', '{"version":true}', '{}', '{"version":9007199254740993}']) {
		const res = await platform.request('POST', `/functions/${name}/rollback`, body);
		assert.equal([res.status, res.body.error?.code], [400, 'invalid_version'], body);
	}
	for (const body of ['{"version":1,"x":1}', '{"__proto__":{"version":1}}']) {
		assert.equal((await platform.request('POST', `/functions/${name}/rollback`, body)).body.error?.code, 'unknown_field', body);
	}
	assert.is((await platform.request('POST', `/functions/${name}/rollback`, '{"version":999999999999999}')).status, 404);
	// 1.0 and 1e0 are the JSON number 1.
	const back = await platform.request('POST', `/functions/${name}/rollback`, '{"version":1e0}');
	assert.equal([back.status, back.body.version, back.body.source_code], [200, 3, says('one')]);
});

input('racing saves, hand edits, rollbacks and deletes: the current version is the source on disk, within the bound; a delete leaves no version', async () => {
	for (let round = 0; round < 8; round++) {
		const name = uniqueName('race');
		await createFunction(platform, name, 'python', says('first'));
		const ops: Promise<unknown>[] = [];
		for (let i = 0; i < 12; i++) {
			const kind = i % 6;
			if (kind === 0) ops.push(platform.request('POST', '/functions', { name, language: i % 4 ? 'python' : 'deno', source_code: says(`save ${i}`) }));
			if (kind === 1) ops.push(platform.request('POST', `/functions/${name}/rollback`, { version: 1 }));
			if (kind === 2) ops.push(platform.request('GET', `/functions/${name}/versions`));
			if (kind === 3) ops.push(writeFile(join(platform.dataDir, 'functions', `${name}.py`), says(`hand ${i}`)).catch(() => {}));
			if (kind === 4) ops.push(platform.request('GET', `/functions/${name}`));
			if (kind === 5 && round % 2 === 1) ops.push(platform.request('DELETE', `/functions/${name}`));
		}
		for (const res of (await Promise.all(ops)) as ({ status: number; body: unknown } | undefined)[]) {
			if (res) assert.ok(res.status < 500, JSON.stringify(res.body));
		}
		const fn = await platform.request('GET', `/functions/${name}`);
		if (fn.status === 200) {
			const kept = (await platform.request('GET', `/functions/${name}/versions`)).body as { version: number; current: boolean }[];
			assert.ok(kept.length <= 3, `${kept.length} versions kept`);
			const current = kept.find((v) => v.current);
			assert.is(current?.version, fn.body.version, JSON.stringify(kept));
			const one = await platform.request('GET', `/functions/${name}/versions/${fn.body.version}`);
			assert.equal([one.body.source_code, one.body.language], [fn.body.source_code, fn.body.language]);
		}
		await platform.request('DELETE', `/functions/${name}`);
		assert.not.ok((await readdir(join(platform.dataDir, 'versions'))).includes(name), 'no versions left after a delete');
	}
});

input('a link where the versions of a function lie: nothing is read or written through it, the function is still read and run, a save says why it is refused', async () => {
	const outside = await mkdtemp(join(tmpdir(), 'lowcode-faas-outside-'));
	try {
		await writeFile(join(outside, '5.py'), says('outside'));
		const name = uniqueName('linked');
		await createFunction(platform, name, 'python', says('one'));
		await rm(join(platform.dataDir, 'versions', name), { recursive: true });
		await symlink(outside, join(platform.dataDir, 'versions', name));
		assert.equal((await platform.request('GET', `/functions/${name}/versions`)).body, []);
		assert.is((await platform.request('GET', `/functions/${name}/versions/5`)).status, 404);
		assert.is((await platform.request('POST', `/functions/${name}/rollback`, { version: 5 })).status, 404);
		// Edited by hand: still read, with no number.
		await writeFile(join(platform.dataDir, 'functions', `${name}.py`), says('two'));
		const read = await platform.request('GET', `/functions/${name}`);
		assert.equal([read.status, read.body.version, read.body.source_code], [200, null, says('two')], JSON.stringify(read.body));
		const ran = await invoke(platform, name);
		assert.equal([ran.status, ran.output, ran.version], ['success', 'two', null]);
		const saved = await platform.request('POST', '/functions', { name, language: 'python', source_code: says('three') });
		assert.equal([saved.status, saved.body.error?.code], [409, 'unsafe_function_file'], JSON.stringify(saved.body));
		assert.match(saved.body.error.message, new RegExp(`versions/${name}`));
		assert.equal(await readdir(outside), ['5.py'], 'nothing written through the link');
		// A delete removes the link, never its target; the name starts again at 1.
		assert.is((await platform.request('DELETE', `/functions/${name}`)).status, 204);
		assert.equal(await readdir(outside), ['5.py']);
		assert.is((await createFunction(platform, name, 'python', says('again'))).version, 1);
	} finally {
		await rm(outside, { recursive: true, force: true });
	}
});

input('the CLI sends no name that fetch would turn into another path: `versions .` is not GET /functions/versions', async () => {
	const cli = (args: string[]) => execa('node', ['dist/src/cli.js', ...args], { reject: false, env: { LOWCODE_FAAS_URL: platform.app.url } });
	// Functions named like the routes a dot segment would land on.
	for (const name of ['versions', 'logs']) await createFunction(platform, name, 'python', says(name));
	for (const args of [
		['versions', '.'],
		['versions', '..'],
		['logs', '.'],
		['rollback', '.', '1'],
		['invoke', '.'],
		['rm', '.'],
	]) {
		const run = await cli(args);
		assert.is(run.exitCode, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
		assert.match(run.stderr, /not a function name: "\.\.?"/, args.join(' '));
		assert.is(run.stdout, '', args.join(' '));
	}
	const names = ((await platform.request('GET', '/functions')).body as { name: string }[]).map((f) => f.name);
	assert.ok(names.includes('versions') && names.includes('logs'), 'nothing removed');
});

input.run();
