import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { containersOf, eventually, fixture, orphans, request, spawnServer, startPlatform } from './helpers.js';

/** A valid Python function whose source is about `kb` KiB, recognisable by `tag`. */
const sourceOf = (tag: string, kb = 1) => `# ${tag}\n${`# ${'x'.repeat(78)}\n`.repeat(kb * 13)}print(${JSON.stringify(tag)})\n`;

const durable = suite('durability');

durable('a full disk answers 507 and leaves the old source intact', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-full-'));
	await execa('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dataDir]);
	try {
		const platform = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
		try {
			const first = await platform.request('POST', '/functions', { name: 'keep', language: 'python', source_code: sourceOf('old', 8) });
			assert.is(first.status, 201);
			const full = await platform.request('POST', '/functions', { name: 'keep', language: 'python', source_code: sourceOf('new', 400) });
			assert.is(full.status, 507, JSON.stringify(full.body));
			assert.is(full.body.error.code, 'insufficient_storage');
			assert.is(await readFile(join(dataDir, 'functions/keep.py'), 'utf8'), sourceOf('old', 8));
			assert.equal(await readdir(join(dataDir, 'functions')), ['keep.py'], 'no temp file is left');
			const other = await platform.request('POST', '/functions', { name: 'other', language: 'deno', source_code: sourceOf('new', 400) });
			assert.is(other.status, 507);
			assert.is((await platform.request('GET', '/functions/other')).status, 404, 'a failed create leaves no function');
		} finally {
			await platform.app.close();
		}
	} finally {
		await execa('umount', [dataDir]);
		await rm(dataDir, { recursive: true, force: true });
	}
});

durable('concurrent creates, deletes and invocations of one name never cross bodies or 5xx', async () => {
	const platform = await startPlatform();
	try {
		const versions = [
			{ language: 'python', source_code: await fixture('echo.py') },
			{ language: 'deno', source_code: await fixture('echo.ts') },
			{ language: 'python', source_code: sourceOf('big', 200) },
		];
		const ops = Array.from({ length: 45 }, (_, i) => {
			if (i % 3 === 0) return platform.request('POST', '/functions', { name: 'contested', ...versions[i % versions.length]! });
			if (i % 3 === 1) return platform.request('DELETE', '/functions/contested');
			return platform.request('POST', '/functions/contested/invoke', { input: i, timeout_ms: 20_000 });
		});
		const results = await Promise.all(ops);
		for (const res of results) assert.ok(res.status < 500, `${res.status} ${JSON.stringify(res.body)}`);
		const files = (await readdir(join(platform.dataDir, 'functions'))).filter((f) => f.startsWith('contested'));
		assert.ok(files.length <= 1, `one name, one source: ${files}`);
		const now = await platform.request('GET', '/functions/contested');
		if (now.status === 200)
			assert.ok(
				versions.some((v) => v.source_code === now.body.source_code && v.language === now.body.language),
				'the source is one version in full',
			);
		assert.equal(await orphans(platform), []);
	} finally {
		await platform.close();
	}
});

durable('kill -9 during creates and invocations: every source old or new in full, no orphan', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-crash-'));
	await mkdir(join(dataDir, 'functions'), { recursive: true });
	try {
		const { child, url } = await spawnServer(dataDir);
		const names = ['a', 'b', 'c', 'd'];
		for (const name of names) assert.is((await request(url, 'POST', '/functions', { name, language: 'python', source_code: sourceOf(`old-${name}`, 300) })).status, 201);
		await request(url, 'POST', '/functions', { name: 'echo', language: 'python', source_code: await fixture('echo.py') });
		let rounds = 0;
		const traffic = (async () => {
			for (let round = 0; round < 50; round++, rounds++) {
				await Promise.all([
					...names.map((name) => request(url, 'POST', '/functions', { name, language: 'python', source_code: sourceOf(`new-${name}-${round}`, 300) })),
					request(url, 'POST', '/functions/echo/invoke', { input: round }),
				]).catch(() => {});
			}
		})();
		// Kill it in the middle of the traffic: some rounds done, more in flight.
		await eventually(
			'a few rounds of traffic',
			async () => rounds,
			(n) => n >= 3,
			30_000,
		);
		child.kill('SIGKILL');
		await child;
		await traffic;
		const restarted = await startPlatform({ LOWCODE_FAAS_DATA: dataDir });
		try {
			assert.equal(await containersOf(loadConfig({ LOWCODE_FAAS_DATA: dataDir })), [], 'no orphan after the restart');
			assert.equal((await readdir(join(dataDir, 'functions'))).sort(), ['a.py', 'b.py', 'c.py', 'd.py', 'echo.py'], 'no temp file survives');
			for (const name of names) {
				const source = await readFile(join(dataDir, 'functions', `${name}.py`), 'utf8');
				const tag = /^# (\S+)\n/.exec(source)?.[1] ?? '';
				assert.ok(tag === `old-${name}` || tag.startsWith(`new-${name}-`), `${name}: ${tag}`);
				assert.is(source, sourceOf(tag, 300), `${name} is whole`);
			}
			assert.is((await restarted.request('POST', '/functions/echo/invoke', { input: 'after' })).body.output.body, 'after');
		} finally {
			await restarted.app.close();
		}
	} finally {
		await rm(dataDir, { recursive: true, force: true });
	}
});

durable.run();
