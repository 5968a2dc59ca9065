import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { isLogLevel, log } from './log.js';

/** The HTTP port a function's server listens on inside its container (passed to it as PORT). */
export const ContainerHttpPort = 8080;
/** The longest wait, in seconds, for a started function's server to answer its first request. */
export const ServerReadyWait = 10;
/** Runtime images, built offline by scripts/build-images.sh from Debian packages. */
export const PythonImage = 'lowcode-faas/python:3.11';
export const DenoImage = 'lowcode-faas/deno:2.9.6';
/**
 * The uid:gid functions run as: one no account on the host has. The host's `nobody` (65534) would
 * otherwise own every function's processes, and any host process running as nobody could signal,
 * trace or read them (their env, their source) through /proc.
 */
const FunctionUser = '2000000000:2000000000';

export type Language = 'python' | 'deno';

/** A function name: letters, digits, '_' and '-', starting with a letter or digit; safe as a file name and never a dotfile. */
export const FUNCTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** An invocation's deadline when neither the request nor the function's timeout_ms sets one. */
export const DEFAULT_TIMEOUT_MS = 5_000;
/** The longest deadline a request or a function's timeout_ms may set. */
export const MAX_TIMEOUT_MS = 300_000;
/**
 * How deep an invocation's input (and a kept output) may nest. Deeper JSON overflows the stack of
 * JSON.stringify (about 10,000 levels): one request could fail a whole batch of history or retire a
 * healthy container. No real input comes close.
 */
export const MAX_JSON_DEPTH = 64;
/**
 * Async runs accepted but not started; past this the API answers 429 too_many_async_runs. Only ids
 * wait in memory: the input is read back from the run's queued record when it starts.
 */
export const MAX_ASYNC_WAITING = 10_000;

/** How every function container is confined (see README, Security). */
export interface Sandbox {
	readonly readOnlyRoot: boolean;
	/** uid:gid the function runs as. */
	readonly user: string;
	readonly memoryMb: number;
	readonly cpus: number;
	readonly pidsLimit: number;
	readonly nofile: number;
	/** Size of the tmpfs on /tmp, in MiB. */
	readonly tmpMb: number;
	/** The bridge network functions run on; the platform creates it with inter-container traffic off. */
	readonly network: string;
	/** The Linux interface name the platform gives that network's bridge when it creates it. */
	readonly bridge: string;
	/** Largest container log kept by Docker, in KiB. */
	readonly logMaxKb: number;
}

export interface Config {
	readonly host: string;
	readonly port: number;
	/** Absolute path of the data folder; function sources live in its `functions/` folder. */
	readonly dataDir: string;
	readonly containerPort: number;
	readonly readyWaitMs: number;
	readonly images: Readonly<Record<Language, string>>;
	/** Largest request body the API reads, in bytes. */
	readonly maxBodyBytes: number;
	/** Largest function source, in bytes. */
	readonly maxSourceBytes: number;
	/** Labels every container with this, so one platform never touches another's containers. */
	readonly instance: string;
	/** A warm container idle this long is removed (scale to zero). */
	readonly idleMs: number;
	/** Functions kept warm from start-up: every one (`all`) or the names listed. */
	readonly prewarm: 'all' | readonly string[];
	/** Requests one container serves at once before another replica starts. */
	readonly concurrency: number;
	/** Also the cap of a function's own max_replicas. */
	readonly maxReplicas: number;
	readonly maxContainers: number;
	/** Runtime containers kept started per language, ready to be handed a function (stem cells); 0: none. */
	readonly stemCells: number;
	/** Caps on a function's own memory_mb and cpus: a client never sets more than the operator allows. */
	readonly maxMemoryMb: number;
	readonly maxCpus: number;
	/** Invocations that may wait for a container; past that the API answers 429. */
	readonly maxQueue: number;
	/** How long SIGTERM waits for in-flight invocations before removing containers. */
	readonly shutdownMs: number;
	readonly sandbox: Sandbox;
	/** Bearer token every endpoint but /healthz requires; null when the API is open. */
	readonly token: string | null;
	/** Runs kept in history per function. */
	readonly runsKeep: number;
	/** Source versions kept per function, the current one included. */
	readonly versionsKeep: number;
	/** Async runs executed at once. */
	readonly asyncConcurrency: number;
	/** Limits on how slowly a client may send a request to the API. */
	readonly headersTimeoutMs: number;
	readonly requestTimeoutMs: number;
	/** Host header values served besides the bound address and loopback names (DNS rebinding); `*` is any. */
	readonly allowedHosts: readonly string[];
	/** Origins, besides the API's own, whose browser requests are served (`scheme://host[:port]`). */
	readonly allowedOrigins: readonly string[];
	/** Open client connections; past it the oldest idle one is closed to make room. */
	readonly maxConnections: number;
}

export class ConfigError extends Error {
	override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function integer(env: Env, key: string, fallback: number, min: number, max: number): number {
	const raw = env[key];
	if (raw === undefined || raw === '') return fallback;
	const value = Number(raw);
	if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
		throw new ConfigError(`${key} must be an integer from ${min} to ${max}, got "${raw}"`);
	}
	return value;
}

function decimal(env: Env, key: string, fallback: number, min: number, max: number): number {
	const raw = env[key];
	if (raw === undefined || raw === '') return fallback;
	const value = Number(raw);
	if (!/^\d+(\.\d+)?$/.test(raw.trim()) || value < min || value > max) throw new ConfigError(`${key} must be a number from ${min} to ${max}, got "${raw}"`);
	return value;
}

function flag(env: Env, key: string, fallback: boolean): boolean {
	const raw = env[key];
	if (raw === undefined || raw === '') return fallback;
	if (raw === '1' || raw === 'true') return true;
	if (raw === '0' || raw === 'false') return false;
	throw new ConfigError(`${key} must be 1 or 0, got "${raw}"`);
}

function text(env: Env, key: string, fallback: string): string {
	const raw = env[key];
	if (raw === undefined) return fallback;
	const value = raw.trim();
	if (value === '' || /[\s\0]/.test(value)) throw new ConfigError(`${key} must be a non-empty value without spaces, got "${raw}"`);
	return value;
}

function nameList(env: Env, key: string): 'all' | string[] {
	const raw = (env[key] ?? '').trim();
	if (raw === 'all') return 'all';
	const names = raw
		.split(',')
		.map((name) => name.trim())
		.filter(Boolean);
	const bad = names.find((name) => !FUNCTION_NAME.test(name));
	if (bad !== undefined) throw new ConfigError(`${key} must be "all" or a comma list of function names, got "${bad}"`);
	return names;
}

function commaList(env: Env, key: string): string[] {
	return (env[key] ?? '')
		.split(',')
		.map((item) => item.trim().toLowerCase())
		.filter(Boolean);
}

/** Host names or addresses, each with an optional port: what a Host header may say. */
function hostList(env: Env, key: string): string[] {
	const hosts = commaList(env, key);
	const bad = hosts.find((host) => host !== '*' && !/^(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/.test(host));
	if (bad !== undefined) throw new ConfigError(`${key} must be a comma list of host names (with an optional :port) or *, got "${bad}"`);
	return hosts;
}

/** Browser origins, each exactly scheme://host[:port] as a browser sends it in Origin. */
function originList(env: Env, key: string): string[] {
	return commaList(env, key).map((origin) => {
		let url: URL | undefined;
		try {
			if (/^https?:\/\/[^/?#@]+\/?$/.test(origin)) url = new URL(origin);
		} catch {}
		if (!url) throw new ConfigError(`${key} must be a comma list of origins like https://host[:port], got "${origin}"`);
		return url.origin;
	});
}

function userSpec(value: string): string {
	if (!/^\d+(:\d+)?$/.test(value)) throw new ConfigError(`LOWCODE_FAAS_USER must be uid or uid:gid in numbers, got "${value}"`);
	return value;
}

function isLoopback(host: string): boolean {
	return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

// Docker's reference grammar ([registry[:port]/]path[:tag][@digest]): never starts with '-', so never a flag.
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const PATH_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE = new RegExp(`^(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]+)?/)?${PATH_PART}(?:/${PATH_PART})*` + '(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$');

function image(env: Env, key: string, fallback: string): string {
	const value = text(env, key, fallback);
	if (value.length > 255 || !IMAGE.test(value)) throw new ConfigError(`${key} must be an image reference like repo/name:tag (lowercase, not starting with "-"), got "${value}"`);
	return value;
}

// Docker's own network modes would put functions on the host's network or on the shared bridge.
const DOCKER_NETWORKS = new Set(['host', 'bridge', 'none', 'default']);

function network(env: Env, key: string, fallback: string): string {
	const value = text(env, key, fallback);
	if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(value)) throw new ConfigError(`${key} must be a network name of [a-zA-Z0-9][a-zA-Z0-9_.-]*, got "${value}"`);
	if (DOCKER_NETWORKS.has(value.toLowerCase())) throw new ConfigError(`${key} must name a network of its own, not Docker's "${value}": functions need a bridge with inter-container traffic off`);
	return value;
}

function readTokenFile(file: string): string {
	try {
		const token = readFileSync(file, 'utf8');
		// Warned, not refused: the file is the operator's, and still better than the token in the environment.
		const mode = statSync(file).mode & 0o777;
		if (mode & 0o077) log('warn', 'the token file is readable by other users; chmod 600 it', { file, mode: mode.toString(8).padStart(4, '0') });
		return token;
	} catch (err) {
		throw new ConfigError(`LOWCODE_FAAS_TOKEN_FILE cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
	}
}

/** The token, or null when neither variable is set; a variable that is set never means "no token". */
function readToken(env: Env): string | null {
	let token = env.LOWCODE_FAAS_TOKEN;
	let source = 'LOWCODE_FAAS_TOKEN';
	// Two sources would leave one silently ignored: which one the operator meant is not ours to guess.
	if (token !== undefined && env.LOWCODE_FAAS_TOKEN_FILE !== undefined) throw new ConfigError('set LOWCODE_FAAS_TOKEN or LOWCODE_FAAS_TOKEN_FILE, not both');
	if (token === undefined && env.LOWCODE_FAAS_TOKEN_FILE !== undefined) {
		token = readTokenFile(env.LOWCODE_FAAS_TOKEN_FILE);
		source = `LOWCODE_FAAS_TOKEN_FILE (${env.LOWCODE_FAAS_TOKEN_FILE})`;
	}
	if (token === undefined) return null;
	token = token.trim();
	if (token === '') throw new ConfigError(`${source} is empty: set a token of at least 16 characters, or unset it`);
	if (token.length < 16 || /\s/.test(token)) throw new ConfigError(`${source} must be a token of at least 16 characters without spaces`);
	return token;
}

/** A Linux interface name (at most 15 characters) that follows from the network's name. */
function bridgeName(network: string): string {
	return `lcf-${createHash('sha256').update(network).digest('hex').slice(0, 8)}`;
}

/** A container's default limit, checked against the operator's cap on what a function may ask for. */
function underCap(value: number, key: string, cap: number, capKey: string): number {
	if (value > cap) throw new ConfigError(`${key} (${value}) exceeds ${capKey} (${cap})`);
	return value;
}

/** Reads the configuration from the environment once; throws a ConfigError with a one-line message. */
export function loadConfig(env: Env = process.env): Config {
	const level = env.LOWCODE_FAAS_LOG_LEVEL;
	if (level !== undefined && level !== '' && !isLogLevel(level)) throw new ConfigError(`LOWCODE_FAAS_LOG_LEVEL must be one of debug, info, warn, error, silent, got "${level}"`);
	const networkName = network(env, 'LOWCODE_FAAS_NETWORK', 'lowcode-faas');
	const dataDir = resolve(text(env, 'LOWCODE_FAAS_DATA', 'data'));
	const host = text(env, 'LOWCODE_FAAS_HOST', '127.0.0.1');
	const token = readToken(env);
	// The API runs code: on the network it needs a token, unless the operator insists.
	if (!isLoopback(host) && token === null && !flag(env, 'LOWCODE_FAAS_INSECURE', false)) {
		throw new ConfigError(`LOWCODE_FAAS_HOST=${host} exposes the API beyond this machine: set LOWCODE_FAAS_TOKEN (or LOWCODE_FAAS_TOKEN_FILE), or LOWCODE_FAAS_INSECURE=1`);
	}
	// 2 GiB: eight times the default, enough for most functions, and one client cannot ask for the host.
	const maxMemoryMb = integer(env, 'LOWCODE_FAAS_MAX_MEMORY_MB', 2048, 16, 1024 * 1024);
	// Docker refuses more CPUs than the host has anyway; the cap makes that a clear 400.
	const maxCpus = decimal(env, 'LOWCODE_FAAS_MAX_CPUS', availableParallelism(), 0.01, 1024);
	return Object.freeze({
		host,
		port: integer(env, 'LOWCODE_FAAS_PORT', 8080, 0, 65535),
		dataDir,
		containerPort: integer(env, 'LOWCODE_FAAS_CONTAINER_PORT', ContainerHttpPort, 1, 65535),
		readyWaitMs: integer(env, 'LOWCODE_FAAS_READY_WAIT_S', ServerReadyWait, 1, 600) * 1000,
		images: Object.freeze({
			python: image(env, 'LOWCODE_FAAS_PYTHON_IMAGE', PythonImage),
			deno: image(env, 'LOWCODE_FAAS_DENO_IMAGE', DenoImage),
		}),
		maxBodyBytes: integer(env, 'LOWCODE_FAAS_MAX_BODY', 6 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
		maxSourceBytes: 1024 * 1024,
		// The data folder identifies an installation: two platforms on one host never share one.
		instance: createHash('sha256').update(dataDir).digest('hex').slice(0, 12),
		idleMs: integer(env, 'LOWCODE_FAAS_IDLE_S', 300, 1, 7 * 24 * 3600) * 1000,
		prewarm: Object.freeze(nameList(env, 'LOWCODE_FAAS_PREWARM')),
		concurrency: integer(env, 'LOWCODE_FAAS_CONCURRENCY', 8, 1, 1000),
		maxReplicas: integer(env, 'LOWCODE_FAAS_MAX_REPLICAS', 4, 1, 1000),
		maxContainers: integer(env, 'LOWCODE_FAAS_MAX_CONTAINERS', 32, 1, 10000),
		stemCells: integer(env, 'LOWCODE_FAAS_STEM_CELLS', 2, 0, 100),
		maxQueue: integer(env, 'LOWCODE_FAAS_MAX_QUEUE', 100, 0, 100000),
		shutdownMs: integer(env, 'LOWCODE_FAAS_SHUTDOWN_S', 10, 0, 3600) * 1000,
		maxMemoryMb,
		maxCpus,
		token,
		runsKeep: integer(env, 'LOWCODE_FAAS_RUNS_KEEP', 1000, 1, 1_000_000),
		// Each version is a source of up to 1 MiB: 1000 of them is a gigabyte per function.
		versionsKeep: integer(env, 'LOWCODE_FAAS_VERSIONS_KEEP', 20, 1, 1000),
		asyncConcurrency: integer(env, 'LOWCODE_FAAS_ASYNC_CONCURRENCY', 4, 1, 1000),
		headersTimeoutMs: integer(env, 'LOWCODE_FAAS_HEADERS_TIMEOUT_S', 10, 1, 3600) * 1000,
		requestTimeoutMs: integer(env, 'LOWCODE_FAAS_REQUEST_TIMEOUT_S', 60, 1, 3600) * 1000,
		allowedHosts: Object.freeze(hostList(env, 'LOWCODE_FAAS_ALLOWED_HOSTS')),
		allowedOrigins: Object.freeze(originList(env, 'LOWCODE_FAAS_ALLOWED_ORIGINS')),
		maxConnections: integer(env, 'LOWCODE_FAAS_MAX_CONNECTIONS', 1024, 2, 1_000_000),
		sandbox: Object.freeze({
			readOnlyRoot: flag(env, 'LOWCODE_FAAS_READ_ONLY', true),
			user: userSpec(text(env, 'LOWCODE_FAAS_USER', FunctionUser)),
			memoryMb: underCap(integer(env, 'LOWCODE_FAAS_MEMORY_MB', 256, 16, 1024 * 1024), 'LOWCODE_FAAS_MEMORY_MB', maxMemoryMb, 'LOWCODE_FAAS_MAX_MEMORY_MB'),
			cpus: underCap(decimal(env, 'LOWCODE_FAAS_CPUS', 1, 0.01, 1024), 'LOWCODE_FAAS_CPUS', maxCpus, 'LOWCODE_FAAS_MAX_CPUS'),
			pidsLimit: integer(env, 'LOWCODE_FAAS_PIDS_LIMIT', 128, 8, 1_000_000),
			nofile: integer(env, 'LOWCODE_FAAS_NOFILE', 1024, 64, 1_048_576),
			tmpMb: integer(env, 'LOWCODE_FAAS_TMP_MB', 64, 1, 1024 * 1024),
			network: networkName,
			bridge: bridgeName(networkName),
			logMaxKb: integer(env, 'LOWCODE_FAAS_LOG_MAX_KB', 1024, 16, 1024 * 1024),
		}),
	});
}
