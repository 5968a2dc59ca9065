import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { type ResultPromise, execa } from 'execa';
import { type App, startApp } from '../src/app.js';
import { type Config, loadConfig } from '../src/config.js';

process.env.LOWCODE_FAAS_LOG_LEVEL ??= 'warn';

export const FIXTURES = resolve('test/fixtures');

export interface Platform {
	app: App;
	config: Config;
	dataDir: string;
	request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
	close(): Promise<void>;
}

export interface ApiResponse {
	status: number;
	headers: Headers;
	// Parsed JSON, or the raw text when the body is not JSON.
	body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON shapes
}

/** Starts the real server on a free port with a fresh data folder, holding `seed` (file → source) in functions/. */
export async function startPlatform(env: Record<string, string> = {}, seed: Record<string, string> = {}): Promise<Platform> {
	const dataDir = env.LOWCODE_FAAS_DATA ?? (await mkdtemp(join(tmpdir(), 'lowcode-faas-test-')));
	await mkdir(join(dataDir, 'functions'), { recursive: true });
	for (const [file, source] of Object.entries(seed)) await writeFile(join(dataDir, 'functions', file), source);
	const config = loadConfig({ ...process.env, LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_PORT: '0', LOWCODE_FAAS_HOST: '127.0.0.1', ...env });
	const app = await startApp(config);
	return {
		app,
		config,
		dataDir,
		request: (method, path, body, headers) => request(app.url, method, path, body, headers),
		async close() {
			await app.close();
			await rm(dataDir, { recursive: true, force: true });
			const left = await containersOf(config);
			if (left.length > 0) throw new Error(`the platform left ${left.length} container(s) after it closed`);
		},
	};
}

export async function request(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
	const init: RequestInit = { method, headers: { ...headers } };
	if (body !== undefined) {
		init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
		(init.headers as Record<string, string>)['content-type'] ??= 'application/json';
	}
	const res = await fetch(base + path, init);
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {}
	return { status: res.status, headers: res.headers, body: parsed };
}

export function fixture(file: string): Promise<string> {
	return readFile(join(FIXTURES, file), 'utf8');
}

/** Every container, running or not, that belongs to this platform instance. */
export async function containersOf(config: Config): Promise<string[]> {
	const { stdout } = await execa('docker', ['ps', '-aq', '--filter', `label=lowcode-faas.instance=${config.instance}`]);
	return stdout.split('\n').filter(Boolean);
}

/** Containers of one function of this instance, by docker's own account. */
export async function containersOfFunction(config: Config, fn: string): Promise<string[]> {
	const { stdout } = await execa('docker', ['ps', '-aq', '--filter', `label=lowcode-faas.instance=${config.instance}`, '--filter', `label=lowcode-faas.function=${fn}`]);
	return stdout.split('\n').filter(Boolean);
}

/**
 * Polls `probe` until `check` holds and returns that value; throws when it does not hold within
 * `timeoutMs`, naming `what` was awaited and the last value seen. The wait is the assertion.
 */
export async function eventually<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
	const until = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (check(value)) return value;
		if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${shown(value)}`);
		await sleep(100);
	}
}

/** A value as an error message shows it: inspected, and cut so that a big body does not bury the message. */
function shown(value: unknown): string {
	const text = inspect(value, { depth: 4, breakLength: Infinity });
	return text.length > 2_000 ? `${text.slice(0, 2_000)}… (${text.length} characters)` : text;
}

/**
 * No orphans: every container docker has for this instance is one the pool tracks, once removals
 * in flight are done. Returns the untracked ones.
 */
export async function orphans(platform: Platform): Promise<string[]> {
	await platform.app.pool.drain();
	const known = new Set(platform.app.pool.snapshot().map((c) => c.name));
	const { stdout } = await execa('docker', ['ps', '-a', '--format', '{{.Names}}', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`]);
	return stdout.split('\n').filter((name) => name && !known.has(name));
}

/** Files in the data folder, relative to it, for "nothing was written" checks. */
export async function dataFiles(dataDir: string): Promise<string[]> {
	const entries = await readdir(dataDir, { recursive: true, withFileTypes: true });
	return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(dataDir.length + 1)).sort();
}

/** Starts the server (`script`: the entry or the CLI) as its own process and waits until it listens. */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}, script = 'dist/src/main.js'): Promise<{ child: ResultPromise; url: string }> {
	const child = execa('node', [script], {
		env: { LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_PORT: '0', LOWCODE_FAAS_LOG_LEVEL: 'info', ...env },
		reject: false,
		buffer: false,
		stdin: 'ignore',
	});
	const url = await new Promise<string>((resolve, reject) => {
		let seen = '';
		const onData = (chunk: Buffer) => {
			seen += chunk.toString();
			const line = seen.split('\n').find((l) => l.includes('"listening"'));
			if (!line) return;
			child.stdout!.off('data', onData);
			resolve(JSON.parse(line).url);
		};
		child.stdout!.on('data', onData);
		void child.then((r) => reject(new Error(`the server exited early (${r.exitCode})`)));
		setTimeout(() => reject(new Error('the server did not start in 20 s')), 20_000).unref();
	});
	child.stdout!.resume();
	return { child, url };
}
