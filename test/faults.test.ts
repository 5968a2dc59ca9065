import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, containersOfFunction, deploy, fixture, invoke, logged, orphans, startPlatform, uniqueName } from './helpers.js';

let platform: Platform;

const faults = suite('faults: hostile functions');
// deploy and invoke fail a test on any answer but 201 and 200: the API never answers 5xx here.
faults.before(async () => {
	platform = await startPlatform({ LOWCODE_FAAS_READY_WAIT_S: '3' });
});
faults.after(async () => {
	assert.equal(await orphans(platform), [], 'no container beyond the warm ones');
	await platform.close();
});

faults('a fork bomb is stopped by the pids limit', async () => {
	await deploy(platform, 'forkbomb', 'forkbomb.py');
	const r = await invoke(platform, 'forkbomb', { timeout_ms: 20_000 });
	assert.is(r.status, 'success', r.error_message);
	assert.ok(r.output.forks < platform.config.sandbox.pidsLimit, `forked ${r.output.forks} times`);
	assert.is(r.output.errno, 11, 'fork failed with EAGAIN');
});

faults("a SIGKILL without Docker's OOMKilled flag is still reported as likely out of memory", async () => {
	await deploy(platform, 'selfkill', 'selfkill.py');
	const r = await invoke(platform, 'selfkill', { timeout_ms: 30_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /killed \(SIGKILL\), most likely out of memory \(limit 256 MiB\)/);
});

faults('a memory bomb is reported as out of memory', async () => {
	await deploy(platform, 'membomb', 'membomb.py');
	const r = await invoke(platform, 'membomb', { timeout_ms: 30_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /out of memory \(limit 256 MiB\)/);
});

faults('a busy loop times out while another function still answers', async () => {
	const echo = uniqueName('echo');
	await deploy(platform, 'busy', 'busy.py');
	await deploy(platform, echo, 'echo.py');
	assert.is((await invoke(platform, echo)).status, 'success');
	const started = Date.now();
	const spinning = invoke(platform, 'busy', { timeout_ms: 3_000 });
	await logged(platform, 'busy', 'busy got a request');
	const meanwhile = await invoke(platform, echo, { input: 'still here' });
	assert.is(meanwhile.status, 'success');
	assert.is(meanwhile.output.body, 'still here');
	const r = await spinning;
	assert.is(r.status, 'timeout');
	assert.ok(Date.now() - started < 3_500, 'on time');
});

faults('/tmp fills up, the source and / are read-only, the host is untouched', async () => {
	await deploy(platform, 'vandal', 'vandal.py');
	const r = await invoke(platform, 'vandal', { timeout_ms: 20_000 });
	assert.is(r.status, 'success', r.error_message);
	assert.is(r.output.tmp, 28, '/tmp is bounded (ENOSPC)');
	assert.is(r.output.source, 30, 'its own source is read-only (EROFS)');
	assert.is(r.output.root, 30, '/ is read-only (EROFS)');
	assert.ok([13, 30].includes(r.output.etc), 'and so is /etc');
	assert.is(await readFile(join(platform.dataDir, 'functions/vandal.py'), 'utf8'), await fixture('vandal.py'));
});

faults('a huge response is failed with a clear message', async () => {
	await deploy(platform, 'huge', 'huge.py');
	const r = await invoke(platform, 'huge', { timeout_ms: 20_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /larger than the \d+-byte limit/);
});

faults('a crash in the middle of a response is failed with its exit code', async () => {
	await deploy(platform, 'midcrash', 'midcrash.py');
	const r = await invoke(platform, 'midcrash', { timeout_ms: 10_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /exited with code 7|closed the connection/);
});

faults('a warm function that dies on a request it received is failed, not run again on a fresh one', async () => {
	await deploy(platform, 'crash_on', 'crash_on.py');
	// Warm, over a kept-alive connection: the crash then resets a reused socket, as an idle close would.
	for (let i = 0; i < 2; i++) assert.is((await invoke(platform, 'crash_on', { input: { crash: false } })).status, 'success');
	const r = await invoke(platform, 'crash_on', { input: { crash: true }, timeout_ms: 10_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /^The function exited with code 5 \(last output: .*crashing on this request\) while handling the request\.$/, JSON.stringify(r));
	assert.is(r.cold_start, false, 'it ran once, on the warm container: a second run would have been a cold start');
});

faults('a deadline that falls before the server answers says so', async () => {
	await deploy(platform, 'wrongport', 'wrongport.py');
	const r = await invoke(platform, 'wrongport', { timeout_ms: 1500 });
	assert.is(r.status, 'timeout');
	assert.match(r.error_message, /within 1500 ms: its server was not yet answering on port 8080/);
	const raw = await platform.request('GET', '/fn/wrongport/', undefined, { 'x-timeout-ms': '1500' });
	assert.is(raw.status, 504);
	assert.match(raw.body.error.message, /within 1500 ms: its server was not yet answering on port 8080/, 'the raw route says so too');
});

faults('a server on the wrong port never becomes ready', async () => {
	const name = uniqueName('wrongport');
	await deploy(platform, name, 'wrongport.py');
	const r = await invoke(platform, name, { timeout_ms: 20_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /did not answer on port 8080 within 3 s/);
});

faults('a process that exits 0 at once is failed', async () => {
	await deploy(platform, 'exit0', 'exit0.py');
	const r = await invoke(platform, 'exit0', { timeout_ms: 20_000 });
	assert.is(r.status, 'failed');
	assert.match(r.error_message, /exited with code 0/);
	assert.match(r.error_message, /nothing to do/);
});

faults('a function runs unprivileged: a uid no host account has, no capabilities, no Docker socket', async () => {
	await deploy(platform, 'whoami', 'whoami.py');
	const r = await invoke(platform, 'whoami');
	assert.is(r.status, 'success', r.error_message);
	assert.is(r.output.uid, 2000000000);
	assert.is(r.output.gid, 2000000000);
	const { stdout: accounts } = await execa('getent', ['passwd', '2000000000'], { reject: false });
	assert.is(accounts, '', "no host account owns the functions' processes");
	assert.is(r.output.cap_eff, '0000000000000000');
	assert.is(r.output.cap_bnd, '0000000000000000');
	assert.is(r.output.no_new_privs, '1');
	assert.equal(r.output.docker_sockets, []);
});

faults("a function cannot reach another function's container", async () => {
	const echo = uniqueName('echo');
	await deploy(platform, echo, 'echo.py');
	assert.is((await invoke(platform, echo)).status, 'success');
	await deploy(platform, 'neighbour', 'neighbour.py');
	const [id] = await containersOfFunction(platform.config, echo);
	assert.ok(id, 'echo is warm');
	const { stdout: ip } = await execa('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id!]);
	const r = await invoke(platform, 'neighbour', { input: { host: ip.trim(), port: 8080 }, timeout_ms: 10_000 });
	assert.is(r.status, 'success', r.error_message);
	assert.is(r.output.reached, false, `echo's container at ${ip} must be out of reach`);
});

faults('the platform still serves normally afterwards', async () => {
	const echo = uniqueName('echo');
	await deploy(platform, echo, 'echo.py');
	assert.is((await platform.request('GET', '/functions')).status, 200);
	assert.is((await invoke(platform, echo, { input: 'after' })).output.body, 'after');
});

faults.run();
