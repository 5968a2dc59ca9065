import { readFile, stat } from 'node:fs/promises';
import { execa } from 'execa';
import { glob } from 'tinyglobby';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, startPlatform } from './helpers.js';

/**
 * The first run on a fresh machine, as far as a machine that already has Docker can replay it: both
 * runtime images built from nothing by setup.sh (under throwaway tags, through the same settings a
 * user would set), then a function invoked on each.
 */
const fresh = suite('setup: the from-nothing path');
const tag = `fresh-${process.pid}`;
const images = { LOWCODE_FAAS_PYTHON_IMAGE: `lowcode-faas/python:${tag}`, LOWCODE_FAAS_DENO_IMAGE: `lowcode-faas/deno:${tag}` };

fresh("setup.sh builds missing images, one line per step with its time, and the tools' output in a log", async () => {
	const log = `/tmp/lowcode-faas-setup-test-${process.pid}.log`;
	try {
		const result = await execa('bash', ['scripts/setup.sh'], { env: { ...images, SETUP_LOG: log }, reject: false, all: true });
		assert.is(result.exitCode, 0, result.all);
		const lines = (result.all ?? '').split('\n').filter(Boolean);
		for (const image of Object.values(images)) {
			assert.ok(
				lines.some((line) => line.includes(`building ${image}`) && / done \(\d+\.\d s\)$/.test(line)),
				`a timed step for ${image}:\n${result.all}`,
			);
		}
		assert.ok(
			lines.every((line) => line.startsWith('setup: ')),
			`nothing but step lines:\n${result.all}`,
		);
		assert.ok((await stat(log)).size > 0, 'the tools wrote to the log');
		for (const image of Object.values(images)) await execa('docker', ['image', 'inspect', image]);
	} finally {
		await execa('rm', ['-f', log]);
	}
});

fresh('a function runs on each freshly built image', async () => {
	let platform: Platform | undefined;
	try {
		const seed = { 'hello.py': await readFile('data/functions/greet.py', 'utf8'), 'hola.ts': await readFile('data/functions/greet.ts', 'utf8') };
		platform = await startPlatform(images, seed);
		for (const name of ['hello', 'hola']) {
			const res = await platform.request('POST', `/functions/${name}/invoke`, { input: { name: 'fresh' }, timeout_ms: 30_000 });
			assert.is(res.body.status, 'success', `${name}: ${res.body.error_message}`);
			assert.match(JSON.stringify(res.body.output), /fresh/);
		}
	} finally {
		await platform?.close();
		await execa('docker', ['rmi', ...Object.values(images)], { reject: false });
	}
});

fresh.run();

const lint = suite('shell scripts');

lint('shellcheck finds nothing in the scripts', async () => {
	const files = [...(await glob(['scripts/*.sh'])), '.ci/run'];
	const result = await execa('shellcheck', ['-x', ...files], { reject: false, all: true });
	assert.is(result.exitCode, 0, result.all);
});

lint('the build keeps the command line tool executable', async () => {
	const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
	// One build for both: `npm run build` and the set-up run the same script.
	assert.match(pkg.scripts.build!, /scripts\/build\.sh/);
	assert.match(await readFile('scripts/setup.sh', 'utf8'), /scripts\/build\.sh/);
	assert.match(await readFile('scripts/build.sh', 'utf8'), /chmod 0755 dist\/src\/cli\.js/);
	assert.is(((await stat(pkg.bin['lowcode-faas']!)).mode & 0o111) !== 0, true, 'dist/src/cli.js is executable after setup');
});

lint.run();
