import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isRunId } from '../src/history.js';
import { startPlatform } from './helpers.js';

// The README is what a newcomer runs first: what it says about the code is checked against the code.
const README = readFileSync(resolve('README.md'), 'utf8');
const EXAMPLES = resolve('data/functions');
const RAW_EXAMPLE = 'web.ts';

/** The text of a `## Title` section, up to the next `## ` heading. */
function section(title: string): string {
	const start = README.indexOf(`\n## ${title}\n`);
	assert.ok(start >= 0, `README has a "## ${title}" section`);
	const end = README.indexOf('\n## ', start + 1);
	return README.slice(start, end < 0 ? undefined : end);
}

/** The lines of the README's shell examples. */
function shellLines(): string[] {
	const lines: string[] = [];
	for (const [, body] of README.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)) lines.push(...body!.split('\n'));
	return lines;
}

/** A shell line without its quoted parts and its trailing comment: what the shell would glob. */
function unquoted(line: string): string {
	return line.replace(/'[^']*'|"(?:[^"\\]|\\.)*"/g, "''").replace(/(^|\s)#.*$/, '');
}

/** Every string literal of the sources, as a regex where each interpolation matches anything, with how much of it is fixed text. */
function sourceMessages(): { regex: RegExp; literal: number }[] {
	const patterns: { regex: RegExp; literal: number }[] = [];
	const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
	const files = ['src', 'src/api', 'src/console'].flatMap((dir) =>
		readdirSync(resolve(dir))
			.filter((f) => f.endsWith('.ts'))
			.map((f) => join(dir, f)),
	);
	for (const file of files) {
		// Messages are one line each: pairing quotes per line keeps a stray quote from spoiling the rest.
		for (const line of readFileSync(resolve(file), 'utf8').split('\n')) {
			for (const [literal] of line.matchAll(/`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g)) {
				const parts = splitTemplate(literal!.slice(1, -1));
				patterns.push({ regex: new RegExp('^' + parts.map(escapeRegex).join('.+') + '$'), literal: parts.join('').length });
			}
		}
	}
	// The set-up's messages: `die "..."` and `say "..."` print "setup: ...".
	for (const file of readdirSync(resolve('scripts')).filter((f) => f.endsWith('.sh'))) {
		for (const [, text] of readFileSync(resolve('scripts', file), 'utf8').matchAll(/\b(?:die|say) "((?:[^"\\]|\\.)*)"/g)) {
			const parts = ('setup: ' + text!).split(/\$\{[^}]*\}|\$\([^)]*\)|\$\w+/);
			patterns.push({ regex: new RegExp('^' + parts.map(escapeRegex).join('.+') + '$'), literal: parts.join('').length });
		}
	}
	return patterns;
}

/** A template literal's text around its `${...}` parts (which may hold braces of their own). */
function splitTemplate(text: string): string[] {
	const parts: string[] = [];
	let current = '';
	for (let i = 0; i < text.length; i++) {
		if (text[i] === '$' && text[i + 1] === '{') {
			let depth = 0;
			for (i++; i < text.length; i++) {
				if (text[i] === '{') depth++;
				else if (text[i] === '}' && --depth === 0) break;
			}
			parts.push(current);
			current = '';
		} else current += text[i];
	}
	parts.push(current);
	return parts.map((part) => part.replace(/\\(.)/g, '$1'));
}

const docs = suite('README');

docs('every URL with a query in a curl example is quoted (zsh globs an unquoted "?")', () => {
	const curls = shellLines().filter((line) => /\bcurl\b/.test(line));
	assert.ok(curls.length > 10, 'the README has curl examples');
	for (const line of curls) {
		const bare = unquoted(line)
			.split(/\s+/)
			.filter((word) => /localhost|127\.0\.0\.1|:\/\//.test(word));
		for (const word of bare) assert.not.match(word, /[?*[\]&]/, `quote the URL in: ${line}`);
	}
});

docs('the configuration table lists every LOWCODE_FAAS_* variable the code reads, and no other', () => {
	const read = new Set<string>();
	for (const file of readdirSync(resolve('src')).filter((f) => f.endsWith('.ts'))) {
		const text = readFileSync(resolve('src', file), 'utf8');
		for (const [, name] of text.matchAll(/(?:\benv\.|\benv\[['"]|\benv, ['"])(LOWCODE_FAAS_[A-Z0-9_]+)/g)) read.add(name!);
	}
	assert.ok(read.size > 30, 'variables are found in the sources');
	const table = new Set([...section('Configuration').matchAll(/^\| `(LOWCODE_FAAS_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
	assert.equal([...read].filter((name) => !table.has(name)).sort(), [], 'read by the code but missing from the table');
	assert.equal([...table].filter((name) => !read.has(name)).sort(), [], 'in the table but read by no code');
});

docs('the configuration table gives the defaults the code uses', () => {
	const config = readFileSync(resolve('src/config.ts'), 'utf8');
	const table = section('Configuration');
	let checked = 0;
	for (const [, name, value] of config.matchAll(/(?:integer|decimal)\(env, '(LOWCODE_FAAS_[A-Z0-9_]+)', ([\d_.]+),/g)) {
		const row = new RegExp(`^\\| \`${name}\` \\| \`([^\`]*)\` \\|`, 'm').exec(table);
		assert.ok(row, `${name} has a default in the table`);
		assert.is(row![1], value!.replaceAll('_', ''), `default of ${name}`);
		checked++;
	}
	assert.ok(checked > 15, 'defaults are found in the sources');
});

docs('messages quoted in Troubleshooting are ones the code prints', () => {
	const table = section('Troubleshooting')
		.split('\n')
		.filter((line) => line.startsWith('| '));
	const messages: string[] = [];
	for (const line of table) {
		for (const [, text] of line.matchAll(/`((?:lowcode-faas|setup): [^`]+)`/g)) messages.push(text!);
		// Sentences in double quotes, in the symptom or the fix; not JSON like "timeout_ms".
		for (const [, text] of line.matchAll(/"([A-Z][^"]* [^"]*)"/g)) messages.push(text!);
	}
	assert.ok(messages.length >= 6, 'messages are found in the table');
	const sources = sourceMessages();
	for (const message of messages) {
		// "..." and "N" stand for what varies; each stands for some text in the code's template.
		const concrete = message.replaceAll('...', 'X').replace(/\bN\b/g, '3');
		// A template that is mostly interpolation ("lowcode-faas: ${message}") would match anything: most of the text must be the code's own.
		const found = sources.some(({ regex, literal }) => regex.test(concrete) && literal >= 0.4 * concrete.length);
		assert.ok(found, `no string in src/ or scripts/ prints: ${message}`);
	}
});

docs('shown run ids are UUIDv7, as the code makes them', () => {
	const ids = [...README.matchAll(/"run_id":\s*"([^"]+)"|\/runs\/([0-9a-f-]{36})/g)].map((m) => m[1] ?? m[2]!);
	assert.ok(ids.length >= 5, 'the README shows run ids');
	for (const id of ids) assert.ok(isRunId(id), `not a run id the platform would make: ${id}`);
});

docs('the module map names every module in src/', () => {
	const map = section('Architecture');
	for (const dir of ['src', 'src/api', 'src/console']) {
		for (const file of readdirSync(resolve(dir)).filter((f) => f.endsWith('.ts'))) assert.ok(map.includes(`${dir}/${file}`), `${dir}/${file} is in the module map`);
	}
	for (const [, path] of map.matchAll(/^(src\/\S+\.ts)/gm)) assert.ok(readdirSync(resolve(path!, '..')).includes(path!.split('/').at(-1)!), `${path} exists`);
});

docs('the raw-route examples use the shipped example function, which git keeps', () => {
	assert.ok(readdirSync(EXAMPLES).includes(RAW_EXAMPLE), `data/functions/${RAW_EXAMPLE} exists`);
	const name = RAW_EXAMPLE.replace(/\.ts$/, '');
	const raw = shellLines().filter((line) => /\/fn\//.test(line));
	assert.ok(raw.length >= 4, 'the README has raw-route examples');
	for (const line of raw) assert.match(line, new RegExp(`/fn/${name}(?:/|'|\\s|$)`), `a raw example calls the shipped ${name}: ${line}`);
	assert.ok(README.includes(`data/functions/${RAW_EXAMPLE}`), 'the README names the file');
	// The upload example needs its file made first.
	assert.ok(
		shellLines().some((line) => /> big\.bin\b/.test(line)),
		'the README shows how to make big.bin',
	);
	// .gitignore drops everything under data/functions but the examples it lists. (Not every file there:
	// `npm start` serves ./data, so a developer's own functions lie there too.)
	const kept = [...readFileSync(resolve('.gitignore'), 'utf8').matchAll(/^!\/data\/functions\/(.+)$/gm)].map((m) => m[1]!);
	assert.ok(kept.includes(RAW_EXAMPLE), `.gitignore keeps data/functions/${RAW_EXAMPLE}`);
	for (const file of kept) assert.ok(readdirSync(EXAMPLES).includes(file), `the example ${file} that .gitignore keeps exists`);
});

docs.run();

const example = suite('README raw example');

example('web.ts echoes what it got, counts an upload, streams events and honours X-Timeout-Ms', async () => {
	const platform = await startPlatform({}, { [RAW_EXAMPLE]: readFileSync(join(EXAMPLES, RAW_EXAMPLE), 'utf8') });
	try {
		const echo = await platform.request('GET', '/fn/web/items/42?verbose=1');
		assert.is(echo.status, 200);
		assert.equal([echo.body.method, echo.body.path, echo.body.query, echo.body.body_bytes], ['GET', '/items/42', { verbose: '1' }, 0]);
		assert.ok(echo.body.headers['x-forwarded-host'], 'the function sees the headers');
		assert.is(echo.headers.get('content-security-policy'), 'sandbox');

		const upload = await platform.request('PUT', '/fn/web/upload', new Uint8Array(3 * 1024 * 1024), { 'content-type': 'application/octet-stream' });
		assert.equal([upload.status, upload.body.method, upload.body.body_bytes], [200, 'PUT', 3 * 1024 * 1024]);

		const events = await fetch(`${platform.app.url}/fn/web/events`);
		assert.is(events.headers.get('content-type'), 'text/event-stream');
		// Streamed: the first event arrives before the last one is sent, a second later.
		const reader = events.body!.getReader();
		const first = new TextDecoder().decode((await reader.read()).value);
		assert.match(first, /^id: 1\nevent: tick\ndata: \{"n": 1, /);
		assert.not.match(first, /id: 3/);
		let rest = '';
		for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
		assert.match(rest, /id: 3\nevent: tick\n/);

		const late = await platform.request('GET', '/fn/web/slow', undefined, { 'x-timeout-ms': '1000' });
		assert.equal([late.status, late.headers.get('x-lowcode-faas-error')], [504, 'function_timeout']);
		const slow = await platform.request('GET', '/fn/web/slow?ms=100', undefined, { 'x-timeout-ms': '5000' });
		assert.equal(slow.body, { slept_ms: 100 });
	} finally {
		await platform.close();
	}
});

example.run();
