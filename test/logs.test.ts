import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Platform, deploy, eventually, invoke, orphans, startPlatform, uniqueName } from './helpers.js';

let platform: Platform;
const logs = suite('function logs');
logs.before(async () => {
	platform = await startPlatform();
});
logs.after(async () => {
	assert.equal(await orphans(platform), []);
	await platform.close();
});

const text = async (path: string) => {
	const res = await fetch(`${platform.app.url}${path}`);
	return { status: res.status, type: res.headers.get('content-type') ?? '', nosniff: res.headers.get('x-content-type-options'), body: await res.text() };
};

logs('GET /functions/{name}/logs shows what the live container printed, as text', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	const r = await invoke(platform, name, { input: 1 });
	assert.not.ok(JSON.stringify(r).includes('echo got a request'), 'never in the result');
	const res = await text(`/functions/${name}/logs`);
	assert.is(res.status, 200);
	assert.is(res.type, 'text/plain; charset=utf-8');
	assert.is(res.nosniff, 'nosniff', 'what functions print is never sniffed into HTML');
	assert.match(res.body, /echo got a request/);
	assert.match(res.body, new RegExp(`==> lcf-.*-${name}-`));
});

logs('the last lines of a removed container are kept', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	await invoke(platform, name, { input: 1 });
	await platform.request('PATCH', `/functions/${name}`, { env: { A: '1' } }); // retires the container
	const res = await eventually(
		"the removed container's lines in the logs",
		() => text(`/functions/${name}/logs`),
		(r) => r.body.includes('(removed)'),
	);
	assert.match(res.body, /\(removed\) <==\n(.*\n)*.*echo got a request/);
});

logs('tail bounds the lines; bad tail is 400; an unknown function is 404', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	for (let i = 0; i < 3; i++) await invoke(platform, name, { input: i });
	const res = await text(`/functions/${name}/logs?tail=1`);
	for (const block of res.body.split('==> ').filter(Boolean)) assert.ok(block.trim().split('\n').length <= 2, `one line a container: ${block}`);
	assert.is((await platform.request('GET', `/functions/${name}/logs?tail=0`)).status, 400);
	assert.is((await platform.request('GET', `/functions/${name}/logs?tail=x`)).status, 400);
	assert.is((await platform.request('GET', '/functions/ghost/logs')).status, 404);
});

logs.run();
