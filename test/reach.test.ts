import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { unguardBridge } from '../src/firewall.js';
import { type Platform, answersFor, containersOfFunction, deploy, invoke, startPlatform, uniqueName } from './helpers.js';

/** A local user's view of a function: the platform's token must be the only way in. */
const reach = suite('who can reach a function container');
let platform: Platform;

reach.before(async () => {
	platform = await startPlatform();
});
reach.after(async () => platform?.close());

reach('the platform reaches its containers on their bridge address, with no published port', async () => {
	assert.is(platform.app.backend.reach(), 'bridge', 'this host routes Docker bridge addresses');
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	const r = await invoke(platform, name, { input: { hi: 1 }, timeout_ms: 20_000 });
	assert.is(r.status, 'success', r.error_message);
	const [id] = await containersOfFunction(platform.config, name);
	const { stdout: ports } = await execa('docker', ['inspect', '--format', '{{json .HostConfig.PortBindings}}', id!]);
	assert.ok(['{}', 'null'].includes(ports.trim()), `no port published, got ${ports}`);
});

reach('another local user cannot call the container directly; root (the platform here) can', async () => {
	const name = uniqueName('echo');
	await deploy(platform, name, 'echo.py');
	assert.is((await invoke(platform, name, { input: 1 })).status, 'success');
	const [id] = await containersOfFunction(platform.config, name);
	const { stdout } = await execa('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id!]);
	const url = `http://${stdout.trim()}:8080/`;
	assert.match(await answersFor(0, url), /^status 204$/, 'root gets the answer');
	assert.match(await answersFor(65534, url), /^refused /, 'uid 65534 is refused');
	assert.match(await answersFor(1000, url), /^refused /, 'uid 1000 is refused');
	// The function still serves the platform afterwards.
	assert.is((await invoke(platform, name, { input: 2 })).output.body, 2);
});

reach('a function cannot open a connection to a service on the host (listening on all interfaces)', async () => {
	const { createServer } = await import('node:net');
	const service = createServer((socket) => socket.on('error', () => {}).end('host secret\n'));
	await new Promise<void>((resolve) => service.listen(0, '0.0.0.0', resolve));
	try {
		const port = (service.address() as { port: number }).port;
		await deploy(platform, 'neighbour', 'neighbour.py');
		const { stdout: gateway } = await execa('docker', ['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', platform.config.sandbox.network]);
		const tried = await platform.request('POST', '/functions/neighbour/invoke', { input: { host: gateway.trim(), port }, timeout_ms: 20_000 });
		assert.is(tried.body.status, 'success', tried.body.error_message);
		assert.is(tried.body.output.reached, false, `the host's port ${port} on ${gateway.trim()} is out of reach`);
		// The host itself still reaches the same service: the rule is about the functions' bridge only.
		const { connect } = await import('node:net');
		await new Promise<void>((resolve, reject) => {
			const socket = connect(port, '127.0.0.1', () => {
				socket.destroy();
				resolve();
			}).on('error', reject);
		});
	} finally {
		await new Promise((resolve) => service.close(resolve));
	}
});

reach.run();

const guard = suite('the firewall step for the systemd unit');

guard('firewall.js guards the configured bridge for root and the named user, idempotently', async () => {
	const env = { ...process.env, LOWCODE_FAAS_NETWORK: 'lcf-guard-test' };
	const { loadConfig } = await import('../src/config.js');
	const bridge = loadConfig(env).sandbox.bridge;
	const chain = `LOWCODE-FAAS-${bridge}`;
	try {
		for (let i = 0; i < 2; i++) await execa('node', ['dist/src/firewall.js', 'nobody'], { env });
		const { stdout } = await execa('iptables', ['-S', chain]);
		assert.match(stdout, /--uid-owner 0 -j RETURN/);
		assert.match(stdout, /--uid-owner 65534 -j RETURN/);
		assert.match(stdout, /-j REJECT/);
		const { stdout: output } = await execa('iptables', ['-S', 'OUTPUT']);
		assert.is(output.split('\n').filter((line) => line === `-A OUTPUT -o ${bridge} -j ${chain}`).length, 1, 'hooked in once');
		assert.match((await execa('iptables', ['-S', `LCF-IN-${bridge}`])).stdout, /RELATED,ESTABLISHED -j RETURN[\s\S]*-j REJECT/, 'containers may not open connections to the host');
	} finally {
		await unguardBridge(bridge);
	}
});

guard.run();
