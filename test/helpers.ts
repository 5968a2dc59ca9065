import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { type ResultPromise, execa } from 'execa';
import * as assert from 'uvu/assert';
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
	// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON shapes
	body: any;
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
			const left = await allContainersOf(config);
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

/** What the function helpers need: a platform started here, or a server spawned as a process (apiAt). */
export type Api = Pick<Platform, 'request'>;

/** The API of a server known only by its URL, such as one started by spawnServer. */
export function apiAt(url: string): Api {
	return { request: (method, path, body, headers) => request(url, method, path, body, headers) };
}

export type Language = 'python' | 'deno';

let serial = 0;

/** A function name no other test of this process uses, so that each test owns its functions. */
export function uniqueName(base: string): string {
	return `${base}-${++serial}`;
}

/** Creates (or replaces) a function through the API; fails unless the answer is 201. Returns the function as shown. */
export async function createFunction(api: Api, name: string, language: Language, source: string, settings: Record<string, unknown> = {}) {
	const res = await api.request('POST', '/functions', { name, language, source_code: source, ...settings });
	assert.is(res.status, 201, `creating ${name}: ${JSON.stringify(res.body)}`);
	return res.body;
}

/** Creates a function from a file under test/fixtures/; its extension says the language. */
export async function deploy(api: Api, name: string, file: string, settings: Record<string, unknown> = {}) {
	return createFunction(api, name, file.endsWith('.ts') ? 'deno' : 'python', await fixture(file), settings);
}

/** Invokes a function synchronously (body: input, timeout_ms; none at all if omitted); fails unless the API answered 200. Returns the RunResult. */
export async function invoke(api: Api, name: string, body?: unknown) {
	const res = await api.request('POST', `/functions/${name}/invoke`, body);
	assert.is(res.status, 200, `invoking ${name}: ${JSON.stringify(res.body)}`);
	return res.body;
}

/** Every container, running or not, that belongs to this platform instance: instances and stem cells. */
export async function allContainersOf(config: Config): Promise<string[]> {
	return (await namesOf(config)).map(([id]) => id);
}

// An idle stem cell's name (`lcf-INSTANCE-stem.LANGUAGE-HEX`): a claimed one takes its instance's name.
const isStemCell = (name: string) => /^lcf-[0-9a-f]+-stem\.[a-z]+-[0-9a-f]+$/.test(name);

/** Containers of this platform instance that run (or ran) a function: not the idle stem cells. */
export async function containersOf(config: Config): Promise<string[]> {
	return (await namesOf(config)).filter(([, name]) => !isStemCell(name)).map(([id]) => id);
}

/** The idle stem cells of this instance, by name. */
export async function stemCellsOf(config: Config): Promise<string[]> {
	return (await namesOf(config)).map(([, name]) => name).filter(isStemCell);
}

/**
 * Containers of one function of this instance, by docker's own account: by the instance name the
 * scheduler gives (`lcf-INSTANCE-FUNCTION-HEX`), which a claimed stem cell takes too (it cannot take the
 * function's label: labels are fixed at `docker run`).
 */
export async function containersOfFunction(config: Config, fn: string): Promise<string[]> {
	const instance = new RegExp(`^lcf-${config.instance}-${fn}-[0-9a-f]{8}$`);
	return (await namesOf(config)).filter(([, name]) => instance.test(name)).map(([id]) => id);
}

async function namesOf(config: Config): Promise<[string, string][]> {
	const { stdout } = await execa('docker', ['ps', '-a', '--format', '{{.ID}} {{.Names}}', '--filter', `label=lowcode-faas.instance=${config.instance}`]);
	return stdout
		.split('\n')
		.filter(Boolean)
		.map((line) => line.split(' ') as [string, string]);
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

/** Whether `uid` gets an HTTP answer from `url` ("status N") or not ("refused CODE"), asked by a Node process running as that uid. */
export async function answersFor(uid: number, url: string): Promise<string> {
	const probe = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(2000) }).then((r) => console.log('status ' + r.status), (e) => console.log('refused ' + (e.cause?.code ?? e.name)))`;
	const { stdout } = await execa('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, '-e', probe]);
	return stdout.trim();
}

/** A value as an error message shows it: inspected, and cut so that a big body does not bury the message. */
function shown(value: unknown): string {
	const text = inspect(value, { depth: 4, breakLength: Infinity });
	return text.length > 2_000 ? `${text.slice(0, 2_000)}… (${text.length} characters)` : text;
}

/** What the function's containers printed, as GET /functions/NAME/logs shows it. */
export async function logsOf(platform: Platform, name: string): Promise<string> {
	const res = await fetch(`${platform.app.url}/functions/${name}/logs`);
	return res.text();
}

/** Waits until the function's logs show `text`: how a fixture says it got a request. */
export function logged(platform: Platform, name: string, text: string, timeoutMs = 10_000): Promise<string> {
	return eventually(
		`${name}'s logs to show ${JSON.stringify(text)}`,
		() => logsOf(platform, name),
		(logs) => logs.includes(text),
		timeoutMs,
	);
}

/**
 * No orphans: every container docker has for this instance is one the pool tracks, once removals
 * in flight are done. Returns the untracked ones.
 */
export async function orphans(platform: Platform): Promise<string[]> {
	await platform.app.scheduler.drain();
	const known = new Set([...platform.app.scheduler.snapshot().map((c) => c.name), ...(platform.app.stems?.names() ?? [])]);
	const { stdout } = await execa('docker', ['ps', '-a', '--format', '{{.Names}}', '--filter', `label=lowcode-faas.instance=${platform.config.instance}`]);
	return stdout.split('\n').filter((name) => name && !known.has(name));
}

/**
 * Files in the data folder, relative to it, for "nothing was written" checks: not the stem cells' (the
 * loaders in .stem/, written at start, and the env file of one being started, which lives while its
 * `docker run` does): the platform starts stem cells on its own.
 */
export async function dataFiles(dataDir: string): Promise<string[]> {
	const entries = await readdir(dataDir, { recursive: true, withFileTypes: true });
	const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(dataDir.length + 1));
	return files.filter((file) => !/^\.run\/lcf-[0-9a-f]+-stem\.[a-z]+-[0-9a-f]+\.env$/.test(file) && !file.startsWith('.stem/')).sort();
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
