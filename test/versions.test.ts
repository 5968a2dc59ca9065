import { lstat, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, createFunction, eventually, fixture, invoke, logged, startPlatform, uniqueName } from './helpers.js';

// Numbered versions of each function's source and rollback, against a real server and real containers.

let platform: Platform;
let saying = '';

/** saying.py answering `word`: each word is another source. */
const says = (word: string) => saying.replace('WORD = "default"', `WORD = ${JSON.stringify(word)}`);

const versionsOf = async (name: string) => {
	const res = await platform.request('GET', `/functions/${name}/versions`);
	assert.is(res.status, 200, JSON.stringify(res.body));
	return res.body as { version: number; created_at: string; size: number; language: string; current: boolean }[];
};

const versions = suite('versions and rollback');
versions.before(async () => {
	saying = await fixture('saying.py');
	// One request a container: an invocation waits in the queue while another runs.
	platform = await startPlatform({ LOWCODE_FAAS_VERSIONS_KEEP: '3', LOWCODE_FAAS_CONCURRENCY: '1' });
});
versions.after(async () => {
	await platform.close();
});

versions('save, invoke, roll back: each run says which version ran, the function keeps its id', async () => {
	const name = uniqueName('vers');
	const first = await createFunction(platform, name, 'python', says('one'));
	assert.is(first.version, 1);
	const second = await createFunction(platform, name, 'python', says('two'));
	assert.is(second.version, 2);
	const ran = await invoke(platform, name);
	assert.equal([ran.output, ran.version], ['two', 2]);
	const back = await platform.request('POST', `/functions/${name}/rollback`, { version: 1 });
	assert.is(back.status, 200, JSON.stringify(back.body));
	assert.equal([back.body.version, back.body.id, back.body.name, back.body.language], [3, first.id, name, 'python']);
	assert.is(back.body.source_code, says('one'));
	const after = await invoke(platform, name);
	assert.equal([after.output, after.version, after.function_id], ['one', 3, first.id]);
	assert.is((await platform.request('GET', `/functions/${name}`)).body.version, 3);
	const listed = (await platform.request('GET', '/functions')).body.find((f: { name: string }) => f.name === name);
	assert.is(listed.version, 3);
	const kept = await versionsOf(name);
	assert.equal(
		kept.map((v) => [v.version, v.language, v.size, v.current]),
		[
			[3, 'python', Buffer.byteLength(says('one')), true],
			[2, 'python', Buffer.byteLength(says('two')), false],
			[1, 'python', Buffer.byteLength(says('one')), false],
		],
	);
	const one = await platform.request('GET', `/functions/${name}/versions/2`);
	assert.is(one.status, 200);
	assert.equal(Object.keys(one.body).sort(), ['created_at', 'current', 'language', 'size', 'source_code', 'version']);
	assert.equal([one.body.version, one.body.current, one.body.source_code], [2, false, says('two')]);
	// Rolling back to what is current already adds nothing.
	const again = await platform.request('POST', `/functions/${name}/rollback`, { version: 1 });
	assert.equal([again.status, again.body.version], [200, 3]);
	assert.is((await versionsOf(name)).length, 3);
	// An async run says it once it has run.
	const queued = await platform.request('POST', `/functions/${name}/invoke?async=true`, {});
	assert.is(queued.status, 202);
	const done = await eventually(
		'the async run to finish',
		async () => (await platform.request('GET', `/runs/${queued.body.run_id}`)).body,
		(r) => r.status === 'success',
	);
	assert.equal([done.output, done.version], ['one', 3]);
	// Run history says it too.
	const runs = await eventually(
		'the three runs in history',
		async () => (await platform.request('GET', `/runs?function=${name}`)).body as { version: number }[],
		(list) => list.length === 3,
	);
	assert.equal(
		runs.map((r) => r.version),
		[3, 3, 2],
	);
});

versions('a source edited by hand on disk is the next version, and the next invocation runs it', async () => {
	const name = uniqueName('hand');
	await createFunction(platform, name, 'python', says('one'));
	assert.equal((await invoke(platform, name)).version, 1);
	await writeFile(join(platform.dataDir, 'functions', `${name}.py`), says('edited by hand'));
	const ran = await invoke(platform, name);
	assert.equal([ran.output, ran.version], ['edited by hand', 2]);
	assert.equal(
		(await versionsOf(name)).map((v) => [v.version, v.current]),
		[
			[2, true],
			[1, false],
		],
	);
	// Dropped there by hand, first seen when listed: version 1.
	const dropped = uniqueName('dropped');
	await writeFile(join(platform.dataDir, 'functions', `${dropped}.py`), says('dropped'));
	assert.equal(
		(await versionsOf(dropped)).map((v) => [v.version, v.current]),
		[[1, true]],
	);
});

versions('a run says the version its container ran: the old one in flight, the new one for an invocation queued before the save', async () => {
	const name = uniqueName('inflight');
	await createFunction(platform, name, 'python', says('one'), { max_replicas: 1 });
	// Sleeps 2 s in the function: the new version is saved while it runs.
	const slow = invoke(platform, name, { input: 2 });
	await logged(platform, name, 'saying got a request');
	// Located as version 1, it waits for the only container; the save hands it the new source.
	const queued = invoke(platform, name, { input: 0 });
	await eventually(
		'the second invocation to wait in the queue',
		async () => platform.app.scheduler.queueDepth(),
		(depth) => depth === 1,
	);
	assert.is((await createFunction(platform, name, 'python', says('two'), { max_replicas: 1 })).version, 2);
	const old = await slow;
	assert.equal([old.status, old.output, old.version], ['success', 'one', 1]);
	const moved = await queued;
	assert.equal([moved.status, moved.output, moved.version], ['success', 'two', 2]);
	const fresh = await invoke(platform, name);
	assert.equal([fresh.output, fresh.version], ['two', 2]);
});

versions('LOWCODE_FAAS_VERSIONS_KEEP bounds them on disk: the oldest go, numbers go on', async () => {
	const name = uniqueName('bound');
	for (let i = 1; i <= 5; i++) assert.is((await createFunction(platform, name, 'python', says(`v${i}`))).version, i);
	// The same source again is no new version, nor is a settings change.
	assert.is((await createFunction(platform, name, 'python', says('v5'))).version, 5);
	assert.is((await platform.request('PATCH', `/functions/${name}`, { timeout_ms: 2000 })).body.version, 5);
	assert.equal(
		(await versionsOf(name)).map((v) => v.version),
		[5, 4, 3],
	);
	assert.equal((await readdir(join(platform.dataDir, 'versions', name))).sort(), ['3.py', '4.py', '5.py']);
	const pruned = await platform.request('GET', `/functions/${name}/versions/1`);
	assert.equal([pruned.status, pruned.body.error.code], [404, 'version_not_found']);
	const gone = await platform.request('POST', `/functions/${name}/rollback`, { version: 2 });
	assert.equal([gone.status, gone.body.error.code], [404, 'version_not_found']);
	const back = await platform.request('POST', `/functions/${name}/rollback`, { version: 3 });
	assert.equal([back.status, back.body.version, back.body.source_code], [200, 6, says('v3')]);
	assert.equal(
		(await versionsOf(name)).map((v) => v.version),
		[6, 5, 4],
	);
});

versions('bad versions are 400 invalid_version, missing ones 404, and nothing reaches the disk', async () => {
	const name = uniqueName('bad');
	await createFunction(platform, name, 'python', says('one'));
	for (const n of ['0', '-1', '01', '1.5', '1e3', 'abc', '%31%2e', '99999999999999999999', '%2e%2e%2fx', '%00']) {
		const res = await platform.request('GET', `/functions/${name}/versions/${n}`);
		assert.equal([res.status, res.body.error?.code], [400, 'invalid_version'], n);
	}
	const missing = await platform.request('GET', `/functions/${name}/versions/2`);
	assert.equal([missing.status, missing.body.error.code], [404, 'version_not_found']);
	for (const path of ['/functions/nope/versions', '/functions/nope/versions/1']) {
		const res = await platform.request('GET', path);
		assert.equal([res.status, res.body.error.code], [404, 'function_not_found'], path);
	}
	const hostile = await platform.request('GET', '/functions/.hidden/versions');
	assert.equal([hostile.status, hostile.body.error.code], [400, 'invalid_name']);
	for (const [body, code] of [
		[{}, 'invalid_version'],
		[{ version: '1' }, 'invalid_version'],
		[{ version: 1.5 }, 'invalid_version'],
		[{ version: 0 }, 'invalid_version'],
		[{ version: -1 }, 'invalid_version'],
		[{ version: 2 ** 53 }, 'invalid_version'],
		[{ version: 1e21 }, 'invalid_version'],
		[{ version: null }, 'invalid_version'],
		[{ version: 1, extra: true }, 'unknown_field'],
		['{"version":', 'invalid_json'],
		[[1], 'invalid_body'],
	] as const) {
		const res = await platform.request('POST', `/functions/${name}/rollback`, body);
		assert.equal([res.status, res.body.error?.code], [400, code], JSON.stringify(body));
	}
	const nobody = await platform.request('POST', '/functions/nope/rollback', { version: 1 });
	assert.equal([nobody.status, nobody.body.error.code], [404, 'function_not_found']);
	assert.is(await lstat(join(platform.dataDir, 'versions', 'nope')).catch(() => null), null);
	assert.is((await versionsOf(name)).length, 1);
});

versions('delete removes the versions; a namesake starts at 1 again', async () => {
	const name = uniqueName('deleted');
	await createFunction(platform, name, 'python', says('one'));
	await createFunction(platform, name, 'python', says('two'));
	assert.is((await platform.request('DELETE', `/functions/${name}`)).status, 204);
	assert.is(await lstat(join(platform.dataDir, 'versions', name)).catch(() => null), null);
	const gone = await platform.request('GET', `/functions/${name}/versions`);
	assert.equal([gone.status, gone.body.error.code], [404, 'function_not_found']);
	assert.is((await createFunction(platform, name, 'python', says('three'))).version, 1);
	assert.equal(
		(await versionsOf(name)).map((v) => v.version),
		[1],
	);
});

versions('the CLI lists versions and rolls back', async () => {
	const name = uniqueName('cli');
	await createFunction(platform, name, 'python', says('one'));
	await createFunction(platform, name, 'deno', 'Deno.serve(() => new Response("two"));\n');
	const cli = (args: string[]) => execa('node', ['dist/src/cli.js', ...args], { reject: false, env: { LOWCODE_FAAS_URL: platform.app.url } });
	const listed = await cli(['versions', name]);
	assert.is(listed.exitCode, 0, listed.stderr);
	const lines = listed.stdout.split('\n');
	assert.is(lines.length, 2, listed.stdout);
	assert.match(lines[0]!, /^2\t\d{4}-\d\d-\d\dT[\d:.]+Z\t\d+ bytes\tdeno\tcurrent$/);
	assert.match(lines[1]!, new RegExp(`^1\\t\\S+\\t${Buffer.byteLength(says('one'))} bytes\\tpython$`));
	const rolled = await cli(['rollback', name, '1']);
	assert.is(rolled.exitCode, 0, rolled.stderr);
	assert.is(rolled.stdout.trim(), `rolled ${name} back to version 1: current version 3`);
	assert.match((await cli(['versions', name])).stdout, /^3\t\S+\t\d+ bytes\tpython\tcurrent\n/);
	for (const args of [['rollback', name, 'x'], ['rollback', name, '0'], ['rollback', name], ['versions']]) {
		const bad = await cli(args);
		assert.is(bad.exitCode, 2, `${args.join(' ')}: ${bad.stderr}`);
	}
	const missing = await cli(['rollback', name, '9']);
	assert.is(missing.exitCode, 1);
	assert.match(missing.stderr, /404: .*no version 9/);
});

versions.run();

const full = suite('versions on a full disk');

full('a source whose version does not fit answers 507 and changes nothing', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-versions-full-'));
	await execa('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dataDir]);
	try {
		const p = await startPlatform({ LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_STEM_CELLS: '0' });
		try {
			const old = `# old\n${'#'.repeat(8 * 1024)}\nprint("old")\n`;
			assert.is((await createFunction(p, 'keep', 'python', old)).version, 1);
			// The source itself fits; its version, written next, does not.
			const big = `# new\n${'#'.repeat(140 * 1024)}\nprint("new")\n`;
			const res = await p.request('POST', '/functions', { name: 'keep', language: 'python', source_code: big });
			assert.equal([res.status, res.body.error?.code], [507, 'insufficient_storage']);
			assert.is(await readFile(join(dataDir, 'functions/keep.py'), 'utf8'), old);
			assert.equal(await readdir(join(dataDir, 'functions')), ['keep.py'], 'no temp file is left');
			assert.equal(await readdir(join(dataDir, 'versions', 'keep')), ['1.py'], 'no version, no temp file');
			assert.equal(
				(await p.request('GET', '/functions/keep/versions')).body.map((v: { version: number; current: boolean }) => [v.version, v.current]),
				[[1, true]],
			);
		} finally {
			await p.app.close();
		}
	} finally {
		await execa('umount', [dataDir]);
		await rm(dataDir, { recursive: true, force: true });
	}
});

full.run();
