import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { unguardBridge } from '../src/firewall.js';
import { startPlatform } from './helpers.js';

const network = suite('network: functions run only on a bridge with inter-container traffic off');
const name = (what: string) => `lcf-test-${what}-${process.pid}`;

network('an existing network with inter-container traffic on refuses to start the platform', async () => {
	const open = name('icc-on');
	await execa('docker', ['network', 'create', '--driver', 'bridge', '--label', 'lowcode-faas=test', '--', open]);
	const dataDir = await mkdtemp(join(tmpdir(), 'lowcode-faas-net-'));
	try {
		await startPlatform({ LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_NETWORK: open }).then(
			async (platform) => {
				await platform.close();
				assert.unreachable('the platform started on a network where functions reach each other');
			},
			(err: Error) => {
				assert.match(err.message, new RegExp(`LOWCODE_FAAS_NETWORK=${open}.*enable_icc`));
				assert.not.ok(err.message.includes('\n'));
			},
		);
	} finally {
		await rm(dataDir, { recursive: true, force: true });
		await execa('docker', ['network', 'rm', '--', open]);
	}
});

network('a missing network is created with inter-container traffic off, then reused', async () => {
	const fresh = name('fresh');
	try {
		for (let i = 0; i < 2; i++) {
			const platform = await startPlatform({ LOWCODE_FAAS_NETWORK: fresh });
			await platform.close();
		}
		const { stdout } = await execa('docker', ['network', 'inspect', '--format', '{{.Driver}} {{index .Options "com.docker.network.bridge.enable_icc"}}', '--', fresh]);
		assert.is(stdout.trim(), 'bridge false');
	} finally {
		await execa('docker', ['network', 'rm', '--', fresh], { reject: false });
		// Its firewall chains go with it: a network per test run would otherwise leave a pair each time.
		await unguardBridge(loadConfig({ LOWCODE_FAAS_NETWORK: fresh }).sandbox.bridge);
	}
});

network.run();
