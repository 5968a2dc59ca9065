import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, ContainerHttpPort, DenoImage, FUNCTION_NAME, PythonImage, ServerReadyWait, loadConfig } from '../../src/config.js';

const config = suite('config');

config('defaults: 127.0.0.1:8080, ./data, the seed constants', () => {
	const c = loadConfig({});
	assert.is(c.host, '127.0.0.1');
	assert.is(c.port, 8080);
	assert.ok(c.dataDir.endsWith('/data'));
	assert.is(c.containerPort, ContainerHttpPort);
	assert.is(c.readyWaitMs, ServerReadyWait * 1000);
	assert.equal(c.images, { python: PythonImage, deno: DenoImage });
	assert.ok(Object.isFrozen(c));
});

config('each setting is read from the environment', () => {
	const c = loadConfig({
		LOWCODE_FAAS_PORT: '9000',
		LOWCODE_FAAS_HOST: '0.0.0.0',
		LOWCODE_FAAS_INSECURE: '1',
		LOWCODE_FAAS_DATA: '/srv/faas',
		LOWCODE_FAAS_PYTHON_IMAGE: 'python:3.12-slim',
		LOWCODE_FAAS_DENO_IMAGE: 'denoland/deno:2.1.4',
		LOWCODE_FAAS_READY_WAIT_S: '3',
	});
	assert.equal([c.port, c.host, c.dataDir, c.images.python, c.images.deno, c.readyWaitMs], [9000, '0.0.0.0', '/srv/faas', 'python:3.12-slim', 'denoland/deno:2.1.4', 3000]);
});

config('a token from both the variable and a file stops the start', () => {
	assert.throws(() => loadConfig({ LOWCODE_FAAS_TOKEN: 'a'.repeat(20), LOWCODE_FAAS_TOKEN_FILE: '/dev/null' }), /not both/);
});

config('an unknown log level stops the start', () => {
	assert.throws(
		() => loadConfig({ LOWCODE_FAAS_LOG_LEVEL: 'verbose' }),
		(err: Error) => err instanceof ConfigError && /LOWCODE_FAAS_LOG_LEVEL/.test(err.message),
	);
	for (const level of ['debug', 'info', 'warn', 'error', 'silent', '']) loadConfig({ LOWCODE_FAAS_LOG_LEVEL: level });
});

config('LOWCODE_FAAS_VERSIONS_KEEP: 20 by default, from 1 to 1000', () => {
	assert.is(loadConfig({}).versionsKeep, 20);
	assert.is(loadConfig({ LOWCODE_FAAS_VERSIONS_KEEP: '1' }).versionsKeep, 1);
	assert.is(loadConfig({ LOWCODE_FAAS_VERSIONS_KEEP: '1000' }).versionsKeep, 1000);
});

config('the instance id follows the data folder', () => {
	assert.is(loadConfig({ LOWCODE_FAAS_DATA: '/a' }).instance, loadConfig({ LOWCODE_FAAS_DATA: '/a/' }).instance);
	assert.is.not(loadConfig({ LOWCODE_FAAS_DATA: '/a' }).instance, loadConfig({ LOWCODE_FAAS_DATA: '/b' }).instance);
});

config('bad values stop with a one-line message naming the variable', () => {
	for (const [key, value] of [
		['LOWCODE_FAAS_PORT', '80a'],
		['LOWCODE_FAAS_PORT', '70000'],
		['LOWCODE_FAAS_READY_WAIT_S', '0'],
		['LOWCODE_FAAS_READY_WAIT_S', '-1'],
		['LOWCODE_FAAS_PYTHON_IMAGE', ' '],
		['LOWCODE_FAAS_HOST', 'a b'],
		['LOWCODE_FAAS_VERSIONS_KEEP', '0'],
		['LOWCODE_FAAS_VERSIONS_KEEP', '1001'],
		['LOWCODE_FAAS_VERSIONS_KEEP', '2.5'],
	]) {
		try {
			loadConfig({ [key!]: value });
			assert.unreachable(`${key}=${value} should be refused`);
		} catch (err) {
			assert.instance(err, ConfigError);
			assert.ok((err as Error).message.includes(key!), (err as Error).message);
			assert.not.ok((err as Error).message.includes('\n'));
		}
	}
});

config.run();

const token = suite('config: the token');

/** Log lines written while `task` runs (the log writes once per turn of the event loop). */
async function logged(task: () => unknown): Promise<string> {
	const write = process.stdout.write.bind(process.stdout);
	let seen = '';
	process.stdout.write = ((chunk: string | Uint8Array) => {
		seen += chunk.toString();
		return true;
	}) as typeof process.stdout.write;
	try {
		task();
		await new Promise((resolve) => setImmediate(resolve));
	} finally {
		process.stdout.write = write;
	}
	return seen;
}

token('an empty or blank token, from the variable or the file, refuses to start', async () => {
	const dir = await mkdtemp(join(tmpdir(), 'lowcode-faas-token-'));
	try {
		for (const [content, label] of [
			['', 'empty'],
			[' \n\t\n', 'blank'],
		]) {
			const file = join(dir, label!);
			await writeFile(file, content!, { mode: 0o600 });
			for (const host of ['0.0.0.0', '127.0.0.1']) {
				const err = refused({ LOWCODE_FAAS_HOST: host, LOWCODE_FAAS_TOKEN_FILE: file });
				assert.match(err.message, /LOWCODE_FAAS_TOKEN_FILE/);
				assert.match(err.message, /empty/);
			}
		}
		for (const value of ['', '   ']) {
			const err = refused({ LOWCODE_FAAS_HOST: '0.0.0.0', LOWCODE_FAAS_TOKEN: value });
			assert.match(err.message, /LOWCODE_FAAS_TOKEN /);
		}
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
});

token('a token file readable by other users is a warning, not a refusal', async () => {
	const dir = await mkdtemp(join(tmpdir(), 'lowcode-faas-token-'));
	try {
		const file = join(dir, 'token');
		await writeFile(file, 'correct-horse-battery-staple-42\n');
		await chmod(file, 0o644);
		const loose = await logged(() => assert.is(loadConfig({ LOWCODE_FAAS_TOKEN_FILE: file }).token, 'correct-horse-battery-staple-42'));
		assert.match(loose, /"level":"warn".*token file.*0644/);
		await chmod(file, 0o600);
		assert.is(await logged(() => loadConfig({ LOWCODE_FAAS_TOKEN_FILE: file })), '');
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
});

token.run();

function refused(env: Record<string, string>): Error {
	try {
		loadConfig(env);
	} catch (err) {
		assert.instance(err, ConfigError);
		assert.not.ok((err as Error).message.includes('\n'), 'one line');
		return err as Error;
	}
	assert.unreachable(`${JSON.stringify(env)} should be refused`);
	throw new Error('unreachable');
}

const names = suite('config: image and network names');

names('image names follow the docker reference grammar; a flag is never an image', () => {
	for (const image of ['python:3.12-slim', 'denoland/deno:2.1.4', 'localhost:5000/team/py_thon:v1.2', 'registry.example.com/a/b@sha256:' + 'a'.repeat(64), 'lowcode-faas/python:3.11']) {
		assert.is(loadConfig({ LOWCODE_FAAS_PYTHON_IMAGE: image }).images.python, image);
	}
	for (const [key, image] of [
		['LOWCODE_FAAS_PYTHON_IMAGE', '--privileged'],
		['LOWCODE_FAAS_DENO_IMAGE', '-v/:/host'],
		['LOWCODE_FAAS_PYTHON_IMAGE', 'Python:3'],
		['LOWCODE_FAAS_PYTHON_IMAGE', 'a/-b'],
		['LOWCODE_FAAS_DENO_IMAGE', 'deno:-x'],
		['LOWCODE_FAAS_DENO_IMAGE', 'deno@sha256:12'],
	]) {
		assert.match(refused({ [key!]: image! }).message, new RegExp(`^${key}`));
	}
});

names('the network is a name of our own: never host, bridge, none or default, never a flag', () => {
	for (const network of ['lowcode-faas', 'my_net.2', 'N1']) assert.is(loadConfig({ LOWCODE_FAAS_NETWORK: network }).sandbox.network, network);
	for (const network of ['host', 'bridge', 'none', 'default', 'HOST', '--privileged', 'container:abc', '.x', 'a/b']) {
		assert.match(refused({ LOWCODE_FAAS_NETWORK: network }).message, /^LOWCODE_FAAS_NETWORK/);
	}
});

names('the console checks function names by the same rule as the platform (it cannot import config.ts)', () => {
	const source = readFileSync(resolve('src/console/api.ts'), 'utf8');
	const copy = /export const FUNCTION_NAME = \/(.+)\/;/.exec(source)?.[1];
	assert.is(copy, FUNCTION_NAME.source);
});

names.run();

const caps = suite('config: caps on per-function settings');

caps('defaults: 2048 MiB and every CPU of the host', () => {
	const c = loadConfig({});
	assert.is(c.maxMemoryMb, 2048);
	assert.is(c.maxCpus, availableParallelism());
	assert.equal([loadConfig({ LOWCODE_FAAS_MAX_MEMORY_MB: '512', LOWCODE_FAAS_MAX_CPUS: '0.5', LOWCODE_FAAS_CPUS: '0.5' }).maxMemoryMb, loadConfig({ LOWCODE_FAAS_MAX_CPUS: '0.5', LOWCODE_FAAS_CPUS: '0.25' }).maxCpus], [512, 0.5]);
});

caps('the default limits of a container may not exceed the caps', () => {
	assert.match(refused({ LOWCODE_FAAS_MEMORY_MB: '4096' }).message, /LOWCODE_FAAS_MEMORY_MB.*LOWCODE_FAAS_MAX_MEMORY_MB/);
	assert.match(refused({ LOWCODE_FAAS_MAX_MEMORY_MB: '128' }).message, /LOWCODE_FAAS_MEMORY_MB.*LOWCODE_FAAS_MAX_MEMORY_MB/);
	assert.match(refused({ LOWCODE_FAAS_CPUS: String(availableParallelism() + 1) }).message, /LOWCODE_FAAS_CPUS.*LOWCODE_FAAS_MAX_CPUS/);
	assert.match(refused({ LOWCODE_FAAS_MAX_CPUS: '0.5' }).message, /LOWCODE_FAAS_CPUS.*LOWCODE_FAAS_MAX_CPUS/);
});

caps.run();
