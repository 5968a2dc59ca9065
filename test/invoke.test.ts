import { copyFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOfFunction, deploy, eventually, fixture, invoke, logged, orphans, startPlatform, uniqueName } from './helpers.js';

let platform: Platform;

/** Every test leaves no container the platform does not track (warm ones stay, by design). */
async function noContainersLeft() {
	assert.equal(await orphans(platform), [], 'the platform lost track of a container');
}

/** Waits until the function has no container left; fails the test otherwise. */
async function goneFor(fn: string) {
	await eventually(
		`no container of ${fn} left`,
		() => containersOfFunction(platform.config, fn),
		(left) => left.length === 0,
	);
}

const run = suite('invoke: functions that answer');
run.before(async () => {
	platform = await startPlatform();
});
run.after.each(noContainersLeft);
run.after(async () => {
	await platform.close();
});

run('Python: input arrives as the JSON body of POST /, the answer is the RunResult', async () => {
	const fn = await deploy(platform, 'echo', 'echo.py');
	const r = await invoke(platform, 'echo', { input: { hello: ['world', 1] } });
	assert.equal(Object.keys(r).sort(), ['cold_start', 'duration_ms', 'error_message', 'function_id', 'http_headers', 'http_status_code', 'output', 'run_id', 'status', 'version']);
	assert.is(r.status, 'success', r.error_message);
	assert.is(r.function_id, fn.id);
	assert.is(r.version, 1);
	assert.is(r.http_status_code, 200);
	assert.equal(r.output, { method: 'POST', path: '/', content_type: 'application/json', body: { hello: ['world', 1] } });
	assert.is(r.error_message, '');
	assert.ok(Number.isInteger(r.duration_ms) && r.duration_ms > 0);
	assert.is(r.cold_start, true);
	assert.is(r.http_headers['content-type'], 'application/json');
	assert.not.ok(JSON.stringify(r).includes('echo got a request'), 'what the function prints never enters the result');
});

run('Deno: created and invoked; no input means an empty object', async () => {
	await deploy(platform, 'echots', 'echo.ts');
	const r = await invoke(platform, 'echots');
	assert.is(r.status, 'success', r.error_message);
	assert.equal(r.output, { runtime: 'deno', content_type: 'application/json', body: {} });
});

run('the seed example: greet.py answers Hello, lowcode-faas', async () => {
	await copyFile(resolve('data/functions/greet.py'), join(platform.dataDir, 'functions/greet.py'));
	await copyFile(resolve('data/functions/greet.ts'), join(platform.dataDir, 'functions/greet.ts'));
	const r = await invoke(platform, 'greet', { input: { name: 'lowcode-faas' } });
	assert.is(r.http_status_code, 200);
	assert.equal(r.output, { message: 'Hello, lowcode-faas' });
	assert.match(r.http_headers.server ?? '', /Python/, 'with both files present the Python one runs');
});

run('the Deno example answers the same', async () => {
	await copyFile(resolve('data/functions/greet.ts'), join(platform.dataDir, 'functions/greetdeno.ts'));
	const r = await invoke(platform, 'greetdeno', { input: { name: 'Deno' } });
	assert.is(r.status, 'success', r.error_message);
	assert.equal(r.output, { message: 'Hello, Deno' });
});

run('a file dropped by hand is invocable with no create call', async () => {
	await writeFile(join(platform.dataDir, 'functions/dropped.py'), await fixture('echo.py'));
	const r = await invoke(platform, 'dropped', { input: 7 });
	assert.is(r.status, 'success', r.error_message);
	assert.is(r.output.body, 7);
	assert.is(r.function_id, (await platform.request('GET', '/functions/dropped')).body.id);
});

run("the function's own status, headers and non-JSON body pass through", async () => {
	await deploy(platform, 'teapot', 'teapot.py');
	const r = await invoke(platform, 'teapot', { input: {} });
	assert.is(r.status, 'success', 'a 4xx from the function is still a successful run');
	assert.is(r.http_status_code, 418);
	assert.is(r.http_headers['x-brew'], 'earl-grey');
	assert.is(r.output, "I'm a teapot, not JSON");
});

run('an answer of 500 or more is failed, with its status and body kept', async () => {
	await deploy(platform, 'fail500', 'fail500.ts');
	const r = await invoke(platform, 'fail500', {});
	assert.is(r.status, 'failed');
	assert.is(r.http_status_code, 500);
	assert.equal(r.output, { oops: true });
	assert.match(r.error_message, /500/);
});

run.run();

const faults = suite('invoke: functions that fail');
faults.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_READY_WAIT_S: '2' });
});
faults.after.each(noContainersLeft);
faults.after(async () => {
	await platform.close();
});

faults('a crash before listening is failed well before the deadline, with the exit code and last lines', async () => {
	await deploy(platform, 'crash', 'crash.py');
	const started = Date.now();
	const r = await invoke(platform, 'crash', { timeout_ms: 30_000 });
	const took = Date.now() - started;
	assert.is(r.status, 'failed');
	assert.is(r.http_status_code, null);
	assert.match(r.error_message, /exited with code 3/);
	assert.match(r.error_message, /the model file is missing/);
	assert.ok(took < 5_000, `the exit was noticed at once, not at the deadline (took ${took} ms)`);
	await goneFor('crash');
});

faults('a server that never listens is failed after the readiness wait', async () => {
	await deploy(platform, 'mute', 'never_listens.py');
	const started = Date.now();
	const r = await invoke(platform, 'mute', { timeout_ms: 20_000 });
	const took = Date.now() - started;
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /did not answer on port 8080 within 2 s/);
	assert.ok(took < 8_000, `gave up at the readiness wait, not at the deadline (took ${took} ms)`);
	await goneFor('mute');
});

faults('a handler that hangs times out on time and its container is removed', async () => {
	await deploy(platform, 'hang', 'hang.py');
	const started = Date.now();
	const r = await invoke(platform, 'hang', { timeout_ms: 2_500 });
	const took = Date.now() - started;
	assert.is(r.status, 'timeout');
	assert.match(r.error_message, /2500 ms/);
	assert.ok(took < 3_000, `the reply came within timeout_ms + 0.5 s (took ${took} ms)`);
	await goneFor('hang');
});

faults('a deadline that runs out during start-up is a timeout too', async () => {
	const name = uniqueName('hang');
	await deploy(platform, name, 'hang.py');
	const r = await invoke(platform, name, { timeout_ms: 50 });
	assert.is(r.status, 'timeout');
});

faults('a caller that hangs up mid-request gets its container replaced', async () => {
	await deploy(platform, 'sleeper', 'slow.py');
	assert.is((await invoke(platform, 'sleeper', { input: { seconds: 0 } })).status, 'success');
	const aborted = new AbortController();
	const call = fetch(`${platform.app.url}/functions/sleeper/invoke`, { method: 'POST', body: '{"input": {"hang": true}, "timeout_ms": 60000}', headers: { 'content-type': 'application/json' }, signal: aborted.signal });
	await logged(platform, 'sleeper', 'slow got {"hang": true}');
	aborted.abort();
	await call.catch(() => {});
	await goneFor('sleeper');
});

faults.run();

const engine = suite('invoke: the runtime cannot start');
engine.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_PYTHON_IMAGE: 'lowcode-faas/absent:never-built' });
});
engine.after.each(noContainersLeft);
engine.after(async () => {
	await platform.close();
});

engine('a missing image is failed with a reason that says how to fix it', async () => {
	await deploy(platform, 'noimage', 'echo.py');
	const r = await invoke(platform, 'noimage', {});
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /lowcode-faas\/absent:never-built is missing/);
	assert.match(r.error_message, /npm run setup/);
});

engine.run();
