import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, createFunction, dataFiles, request, startPlatform } from './helpers.js';

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let platform: Platform;

// A fresh platform for each test: the listings below show the whole functions/ folder.
const crud = suite('functions API');
crud.before.each(async () => {
	platform = await startPlatform();
});
crud.after.each(async () => {
	await platform.close();
});

const hello = () => createFunction(platform, 'hello', 'python', 'print("hi")\n');

crud('POST /functions creates a function and stores NAME.py', async () => {
	const res = await platform.request('POST', '/functions', { name: 'hello', language: 'python', source_code: 'print("hi")\n' });
	assert.is(res.status, 201);
	assert.match(res.body.id, UUID);
	assert.match(res.body.created_at, RFC3339_UTC);
	assert.equal({ ...res.body, id: 0, created_at: 0 }, { id: 0, name: 'hello', language: 'python', source_code: 'print("hi")\n', created_at: 0, settings: {}, version: 1 });
	assert.is(await readFile(join(platform.dataDir, 'functions/hello.py'), 'utf8'), 'print("hi")\n');
	assert.equal(await readdir(join(platform.dataDir, 'functions')), ['hello.py'], 'functions/ holds only sources');
});

crud('GET /functions/{name} returns it; the id is stable across reads and a restart', async () => {
	await hello();
	const first = await platform.request('GET', '/functions/hello');
	assert.is(first.status, 200);
	assert.is(first.body.source_code, 'print("hi")\n');
	const restarted = await startPlatform({ LOWCODE_FAAS_DATA: platform.dataDir });
	try {
		const again = await restarted.request('GET', '/functions/hello');
		assert.is(again.body.id, first.body.id);
		assert.is(again.body.created_at, first.body.created_at);
	} finally {
		await restarted.app.close();
	}
});

crud('replacing with the other language keeps the id and leaves one source', async () => {
	await hello();
	const before = await platform.request('GET', '/functions/hello');
	const res = await platform.request('POST', '/functions', { name: 'hello', language: 'deno', source_code: 'Deno.serve(() => new Response("x"));\n' });
	assert.is(res.status, 201);
	assert.is(res.body.id, before.body.id);
	assert.is(res.body.language, 'deno');
	assert.equal(await readdir(join(platform.dataDir, 'functions')), ['hello.ts']);
});

crud('a file dropped by hand is listed, gets an id, and keeps it', async () => {
	await hello();
	await writeFile(join(platform.dataDir, 'functions/dropped.py'), 'print("dropped")\n');
	const list = await platform.request('GET', '/functions');
	assert.is(list.status, 200);
	assert.equal(
		list.body.map((f: { name: string }) => f.name),
		['dropped', 'hello'],
	);
	const dropped = list.body.find((f: { name: string }) => f.name === 'dropped');
	assert.is(dropped.language, 'python');
	assert.match(dropped.created_at, RFC3339_UTC);
	assert.match(dropped.updated_at, RFC3339_UTC);
	assert.is(dropped.size, 'print("dropped")\n'.length);
	assert.is(dropped.source_code, undefined, 'the list shows no sources; GET /functions/NAME does');
	assert.is((await platform.request('GET', '/functions/dropped')).body.id, dropped.id);
});

crud('when NAME.py and NAME.ts both lie there, the Python one is the function', async () => {
	await writeFile(join(platform.dataDir, 'functions/both.py'), 'print("py")\n');
	await writeFile(join(platform.dataDir, 'functions/both.ts'), 'console.log("ts")\n');
	const res = await platform.request('GET', '/functions/both');
	assert.is(res.body.language, 'python');
	assert.is(res.body.source_code, 'print("py")\n');
});

crud('files that are not functions are not listed', async () => {
	await hello();
	await writeFile(join(platform.dataDir, 'functions/dropped.py'), 'print("dropped")\n');
	await writeFile(join(platform.dataDir, 'functions/.half-written.py.abc.tmp'), 'x');
	await writeFile(join(platform.dataDir, 'functions/notes.txt'), 'x');
	await writeFile(join(platform.dataDir, 'functions/bad name.py'), 'x');
	const names = (await platform.request('GET', '/functions')).body.map((f: { name: string }) => f.name);
	assert.equal(names, ['dropped', 'hello']);
});

crud('DELETE removes the source (204), then 404', async () => {
	await hello();
	assert.is((await platform.request('DELETE', '/functions/hello')).status, 204);
	assert.is((await platform.request('GET', '/functions/hello')).status, 404);
	const again = await platform.request('DELETE', '/functions/hello');
	assert.is(again.status, 404);
	assert.is(again.body.error.code, 'function_not_found');
	const files = await readdir(join(platform.dataDir, 'functions'));
	assert.not.ok(files.includes('hello.py'));
});

crud('a re-created name is a new function with a new id', async () => {
	const a = await createFunction(platform, 'phoenix', 'python', 'print(1)');
	await platform.request('DELETE', '/functions/phoenix');
	const b = await createFunction(platform, 'phoenix', 'python', 'print(2)');
	assert.is.not(a.id, b.id);
});

crud.run();

const paging = suite('GET /functions pages');
paging.before(async () => {
	const seed: Record<string, string> = {};
	// 12 functions of 1 MiB: the list must stay small, whatever their size.
	for (let i = 0; i < 12; i++) seed[`f${String(i).padStart(2, '0')}.py`] = '#'.repeat(1024 * 1024);
	platform = await startPlatform({}, seed);
	await platform.request('PATCH', '/functions/f00', { env: { KEY: 'secret-value' } });
});
paging.after(async () => {
	await platform.close();
});

paging('metadata only, 100 a page by default, env as names', async () => {
	const res = await fetch(`${platform.app.url}/functions`);
	const text = await res.text();
	assert.ok(text.length < 10_000, `${text.length} bytes for 12 functions`);
	const list = JSON.parse(text);
	assert.is(list.length, 12);
	assert.is(res.headers.get('link'), null, 'no next page');
	assert.equal(Object.keys(list[0]).sort(), ['created_at', 'id', 'language', 'name', 'settings', 'size', 'updated_at', 'version']);
	assert.equal(list[0].settings, { env: ['KEY'] });
	assert.is(list[0].size, 1024 * 1024);
	assert.not.ok(text.includes('secret-value'));
});

paging('limit and after walk the list; Link names the next page', async () => {
	const seen: string[] = [];
	let path: string | null = '/functions?limit=5';
	for (let pages = 0; path && pages < 10; pages++) {
		const res: Response = await fetch(platform.app.url + path);
		const page = (await res.json()) as { name: string }[];
		assert.ok(page.length <= 5);
		seen.push(...page.map((f) => f.name));
		path = /^<([^>]+)>; rel="next"$/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
	}
	assert.equal(
		seen,
		Array.from({ length: 12 }, (_, i) => `f${String(i).padStart(2, '0')}`),
	);
	const after = await platform.request('GET', '/functions?after=f09');
	assert.equal(
		after.body.map((f: { name: string }) => f.name),
		['f10', 'f11'],
	);
	assert.equal((await platform.request('GET', '/functions?after=zzz')).body, []);
	assert.is((await platform.request('GET', '/functions?limit=5&show_env=true')).headers.get('link'), '</functions?limit=5&show_env=true&after=f04>; rel="next"');
});

paging('a bad limit or cursor is 400', async () => {
	for (const query of ['limit=0', 'limit=1001', 'limit=x', 'limit=1.5', 'limit=']) {
		const res = await platform.request('GET', `/functions?${query}`);
		assert.is(res.status, 400, query);
		assert.is(res.body.error.code, 'invalid_limit', query);
	}
	for (const query of ['after=', 'after=..%2Fx', 'after=a%20b']) {
		const res = await platform.request('GET', `/functions?${query}`);
		assert.is(res.status, 400, query);
		assert.is(res.body.error.code, 'invalid_cursor', query);
	}
	assert.is((await platform.request('GET', '/functions?limit=1000')).body.length, 12);
});

paging.run();

const bad = suite('bad input');
bad.before(async () => {
	platform = await startPlatform();
});
bad.after(async () => {
	await platform.close();
});

const valid = { name: 'ok', language: 'python', source_code: 'print(1)' };
const cases: [string, string, string, unknown, number, string, Record<string, string>?][] = [
	['name with ..', 'POST', '/functions', { ...valid, name: '../x' }, 400, 'invalid_name'],
	['name with a slash', 'POST', '/functions', { ...valid, name: 'a/b' }, 400, 'invalid_name'],
	['empty name', 'POST', '/functions', { ...valid, name: '' }, 400, 'invalid_name'],
	['65-character name', 'POST', '/functions', { ...valid, name: 'a'.repeat(65) }, 400, 'invalid_name'],
	['NUL in name', 'POST', '/functions', { ...valid, name: 'a\0b' }, 400, 'invalid_name'],
	['non-ASCII name', 'POST', '/functions', { ...valid, name: 'grüße' }, 400, 'invalid_name'],
	['name not a string', 'POST', '/functions', { ...valid, name: 42 }, 400, 'invalid_name'],
	['missing name', 'POST', '/functions', { language: 'python', source_code: 'x' }, 400, 'invalid_name'],
	['unknown language', 'POST', '/functions', { ...valid, language: 'ruby' }, 400, 'invalid_language'],
	['empty source', 'POST', '/functions', { ...valid, source_code: '' }, 400, 'invalid_source_code'],
	['source not a string', 'POST', '/functions', { ...valid, source_code: { a: 1 } }, 400, 'invalid_source_code'],
	['source over 1 MiB', 'POST', '/functions', { ...valid, source_code: 'x'.repeat(1024 * 1024 + 1) }, 413, 'source_too_large'],
	['unknown field', 'POST', '/functions', { ...valid, extra: {} }, 400, 'unknown_field'],
	['malformed JSON', 'POST', '/functions', '{"name": "x",', 400, 'invalid_json'],
	['a JSON array', 'POST', '/functions', '[1,2]', 400, 'invalid_body'],
	['JSON null', 'POST', '/functions', 'null', 400, 'invalid_body'],
	['no body', 'POST', '/functions', undefined, 400, 'missing_body'],
	['form content type', 'POST', '/functions', 'name=x', 415, 'unsupported_media_type', { 'content-type': 'application/x-www-form-urlencoded' }],
	['body over the limit', 'POST', '/functions', 'x'.repeat(6 * 1024 * 1024 + 1), 413, 'body_too_large'],
	['unknown route', 'GET', '/nope', undefined, 404, 'not_found'],
	['wrong method on /functions', 'PUT', '/functions', undefined, 405, 'method_not_allowed'],
	['wrong method on invoke', 'GET', '/functions/ok/invoke', undefined, 405, 'method_not_allowed'],
	['traversal in the path', 'GET', '/functions/..%2F..%2Fetc%2Fpasswd', undefined, 400, 'invalid_name'],
	['bad percent-encoding', 'GET', '/functions/%E0%A4%A', undefined, 400, 'bad_path'],
	['invoke an unknown function', 'POST', '/functions/ghost/invoke', {}, 404, 'function_not_found'],
	['invoke with timeout_ms 0', 'POST', '/functions/ghost/invoke', { timeout_ms: 0 }, 400, 'invalid_timeout_ms'],
	['invoke with timeout_ms too large', 'POST', '/functions/ghost/invoke', { timeout_ms: 300001 }, 400, 'invalid_timeout_ms'],
	['invoke with a string timeout', 'POST', '/functions/ghost/invoke', { timeout_ms: '5000' }, 400, 'invalid_timeout_ms'],
	['invoke with a fractional timeout', 'POST', '/functions/ghost/invoke', { timeout_ms: 2.5 }, 400, 'invalid_timeout_ms'],
	['invoke with a bad name', 'POST', '/functions/..%2Fx/invoke', {}, 400, 'invalid_name'],
	['invoke with a non-object body', 'POST', '/functions/ghost/invoke', '"hi"', 400, 'invalid_body'],
	['delete a bad name', 'DELETE', '/functions/a%00b', undefined, 400, 'invalid_name'],
];

for (const [title, method, path, body, status, code, headers] of cases) {
	bad(`${title} → ${status} ${code}, nothing written`, async () => {
		const res = await request(platform.app.url, method, path, body, headers);
		assert.is(res.status, status, JSON.stringify(res.body));
		assert.is(res.body?.error?.code, code);
		assert.type(res.body.error.message, 'string');
		assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
		if (status === 405) assert.ok(res.headers.get('allow'), 'a 405 names what is allowed');
		assert.equal(await dataFiles(platform.dataDir), [], 'no file was written');
	});
}

bad('the server still answers normally afterwards', async () => {
	assert.is((await platform.request('GET', '/functions')).status, 200);
});

bad.run();
