#!/usr/bin/env node
/**
 * `lowcode-faas`: with no command (or `serve`) it runs the server; otherwise it talks to a running one
 * at LOWCODE_FAAS_URL with LOWCODE_FAAS_TOKEN. Exit codes: 0 success, 1 the function (or the request)
 * failed, 2 usage error.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';

const HELP: Record<string, string> = {
	main: `Usage: lowcode-faas [command] [options]

Commands:
  serve                          run the server (the default with no command)
  deploy FILE [--name N] [--env K=V ...]
                                 create or replace a function from a .py or .ts file
  invoke NAME [--input JSON | --input -] [--timeout MS]
                                 run a function and print its RunResult
  list                           list the functions
  logs NAME [--tail N]           print what the function's containers printed
  rm NAME                        delete a function
  runs NAME [--limit N]          list the function's recent runs
  versions NAME                  list the kept versions of the function's source
  rollback NAME VERSION          make an earlier version current again (as a new version)

Environment: LOWCODE_FAAS_URL (default http://127.0.0.1:8080), LOWCODE_FAAS_TOKEN.
Exit codes: 0 success, 1 the function or the request failed, 2 usage error.
Run "lowcode-faas COMMAND --help" for a command's options.`,
	serve: 'Usage: lowcode-faas serve\n\nRuns the server; configured by LOWCODE_FAAS_* variables (see the README).',
	deploy: 'Usage: lowcode-faas deploy FILE [--name NAME] [--env KEY=VALUE ...]\n\nThe language follows the extension: .py is python, .ts is deno. NAME defaults to the file name.',
	invoke: 'Usage: lowcode-faas invoke NAME [--input JSON | --input -] [--timeout MS]\n\nPrints the RunResult as JSON. "--input -" reads the JSON input from standard input.\nExits 1 when the run failed or timed out.',
	list: 'Usage: lowcode-faas list\n\nPrints one function a line: name, language, id.',
	logs: 'Usage: lowcode-faas logs NAME [--tail N]',
	rm: 'Usage: lowcode-faas rm NAME',
	runs: 'Usage: lowcode-faas runs NAME [--limit N]\n\nPrints one run a line, newest first: run id, status, duration, created at.',
	versions: 'Usage: lowcode-faas versions NAME\n\nPrints one kept version a line, newest first: version, created at, size, language, and "current" for the current one.',
	rollback: 'Usage: lowcode-faas rollback NAME VERSION\n\nMakes the source of VERSION current again; it becomes a new version (history is never rewritten).',
};

const MAX_SOURCE_BYTES = 1024 * 1024;

class UsageError extends Error {}
class Failure extends Error {}

// C0 controls but \n and \t, DEL, C1 controls, and the bidi controls that reorder what is shown.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from the server (what a function printed or answered) made harmless for a terminal: a control
 * character is shown as its \uXXXX escape, which keeps JSON output valid JSON of the same value.
 */
function neutralize(text: string): string {
	return text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Prints a line; everything the CLI prints goes through here or `neutralize`. */
function say(text: string) {
	process.stdout.write(neutralize(text) + '\n');
}

const base = () => (process.env.LOWCODE_FAAS_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: unknown; headers: Headers }> {
	const headers: Record<string, string> = {};
	if (process.env.LOWCODE_FAAS_TOKEN) headers.authorization = `Bearer ${process.env.LOWCODE_FAAS_TOKEN}`;
	if (body !== undefined) headers['content-type'] = 'application/json';
	let res: Response;
	try {
		res = await fetch(base() + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	} catch (err) {
		throw new Failure(`cannot reach lowcode-faas at ${base()}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`);
	}
	const text = await res.text();
	let json: unknown = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {}
	if (res.status >= 400) {
		const error = (json as { error?: { message?: string } } | null)?.error;
		// The server found the request itself wrong (a bad value given on the command line): a usage error.
		if (res.status === 400) throw new UsageError(error?.message ?? text);
		throw new Failure(`${res.status}: ${error?.message ?? text}`);
	}
	return { status: res.status, text, json, headers: res.headers };
}

function one(positionals: string[], what: string): string {
	if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
	return positionals[0]!;
}

async function readStdin(): Promise<string> {
	const chunks: Buffer[] = [];
	for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string, what: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		throw new UsageError(`${what} is not valid JSON`);
	}
}

const commands: Record<string, (args: string[]) => Promise<number>> = {
	async deploy(args) {
		const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { name: { type: 'string' }, env: { type: 'string', multiple: true } } });
		const file = one(positionals, 'FILE');
		const language = { '.py': 'python', '.ts': 'deno' }[extname(file)];
		if (!language) throw new UsageError('FILE must end in .py (python) or .ts (deno)');
		let source: string;
		try {
			// Checked before reading: a huge file (or a device) would be read whole only to be refused by the server.
			const info = await stat(file);
			if (!info.isFile()) throw new UsageError(`${file} is not a file`);
			if (info.size > MAX_SOURCE_BYTES) throw new UsageError(`${file} is over 1 MiB, the limit of a source`);
			source = await readFile(file, 'utf8');
		} catch (err) {
			if (err instanceof UsageError) throw err;
			throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
		}
		const env: Record<string, string> = {};
		for (const pair of values.env ?? []) {
			const at = pair.indexOf('=');
			if (at < 1) throw new UsageError(`--env wants KEY=VALUE, got "${pair}"`);
			env[pair.slice(0, at)] = pair.slice(at + 1);
		}
		const body = { name: values.name ?? basename(file, extname(file)), language, source_code: source, ...(values.env ? { env } : {}) };
		const { json } = await api('POST', '/functions', body);
		const fn = json as { name: string; id: string; language: string };
		say(`deployed ${fn.name} (${fn.language}, id ${fn.id})`);
		return 0;
	},

	async invoke(args) {
		const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { input: { type: 'string' }, timeout: { type: 'string' } } });
		const name = one(positionals, 'NAME');
		const body: Record<string, unknown> = {};
		if (values.input !== undefined) body.input = parseJson(values.input === '-' ? await readStdin() : values.input, '--input');
		if (values.timeout !== undefined) {
			if (!/^\d+$/.test(values.timeout)) throw new UsageError('--timeout wants milliseconds');
			body.timeout_ms = Number(values.timeout);
		}
		const { json } = await api('POST', `/functions/${encodeURIComponent(name)}/invoke`, body);
		say(JSON.stringify(json, null, 2));
		return (json as { status: string }).status === 'success' ? 0 : 1;
	},

	async list(args) {
		const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
		if (positionals.length > 0) throw new UsageError('list takes no arguments');
		// Every page: the server sends at most 1000 functions a response, and a Link header to the next page.
		let path: string | null = '/functions?limit=1000';
		while (path) {
			const { json, headers } = await api('GET', path);
			for (const fn of json as { name: string; language: string; id?: string; error?: { message: string } }[]) {
				say(`${fn.name}\t${fn.language}\t${fn.id ?? `unusable: ${fn.error?.message}`}`);
			}
			path = /^<(\/functions\?[^>]*)>; rel="next"$/.exec(headers.get('link') ?? '')?.[1] ?? null;
		}
		return 0;
	},

	async logs(args) {
		const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { tail: { type: 'string' } } });
		const name = one(positionals, 'NAME');
		const { text } = await api('GET', `/functions/${encodeURIComponent(name)}/logs${values.tail ? `?tail=${encodeURIComponent(values.tail)}` : ''}`);
		process.stdout.write(neutralize(text));
		return 0;
	},

	async rm(args) {
		const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
		const name = one(positionals, 'NAME');
		await api('DELETE', `/functions/${encodeURIComponent(name)}`);
		say(`removed ${name}`);
		return 0;
	},

	async runs(args) {
		const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { limit: { type: 'string' } } });
		const name = one(positionals, 'NAME');
		const { json } = await api('GET', `/runs?function=${encodeURIComponent(name)}&limit=${encodeURIComponent(values.limit ?? '20')}`);
		for (const run of json as { run_id: string; status: string; duration_ms: number; created_at: string }[]) {
			say(`${run.run_id}\t${run.status}\t${run.duration_ms} ms\t${run.created_at}`);
		}
		return 0;
	},

	async versions(args) {
		const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
		const name = one(positionals, 'NAME');
		const { json } = await api('GET', `/functions/${encodeURIComponent(name)}/versions`);
		for (const v of json as { version: number; created_at: string; size: number; language: string; current: boolean }[]) {
			say(`${v.version}\t${v.created_at}\t${v.size} bytes\t${v.language}${v.current ? '\tcurrent' : ''}`);
		}
		return 0;
	},

	async rollback(args) {
		const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
		if (positionals.length !== 2) throw new UsageError('expected NAME and VERSION');
		const [name, wanted] = positionals as [string, string];
		if (!/^[1-9]\d{0,14}$/.test(wanted)) throw new UsageError(`VERSION must be a positive integer, got "${wanted}"`);
		const { json } = await api('POST', `/functions/${encodeURIComponent(name)}/rollback`, { version: Number(wanted) });
		const fn = json as { name: string; version: number };
		say(`rolled ${fn.name} back to version ${wanted}: current version ${fn.version}`);
		return 0;
	},
};

async function cli(argv: string[]): Promise<number> {
	const [command, ...rest] = argv;
	if (command === undefined || command === 'serve') {
		if (rest.includes('--help') || rest.includes('-h')) {
			console.log(HELP.serve);
			return 0;
		}
		await import('./main.js');
		return -1; // the server keeps the process alive
	}
	if (command === '--help' || command === '-h' || command === 'help') {
		console.log(HELP.main);
		return 0;
	}
	const run = commands[command];
	if (!run) throw new UsageError(`unknown command "${command}"`);
	if (rest.includes('--help') || rest.includes('-h')) {
		console.log(HELP[command]);
		return 0;
	}
	try {
		return await run(rest);
	} catch (err) {
		// parseArgs reports unknown options and missing values with these codes.
		const code = (err as NodeJS.ErrnoException).code;
		if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
			throw new UsageError((err as Error).message);
		}
		throw err;
	}
}

try {
	const code = await cli(process.argv.slice(2));
	if (code >= 0) process.exitCode = code;
} catch (err) {
	if (err instanceof UsageError) {
		console.error(`lowcode-faas: ${neutralize(err.message)}\n\n${HELP.main}`);
		process.exitCode = 2;
	} else if (err instanceof Failure) {
		console.error(`lowcode-faas: ${neutralize(err.message)}`);
		process.exitCode = 1;
	} else throw err;
}
