import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const unit = suite('systemd unit');

unit('systemd-analyze verify accepts lowcode-faas.service', async () => {
	const dir = await mkdtemp(join(tmpdir(), 'lowcode-faas-unit-'));
	try {
		await copyFile('lowcode-faas.service', join(dir, 'lowcode-faas.service'));
		const result = await execa('systemd-analyze', ['verify', join(dir, 'lowcode-faas.service')], { reject: false, all: true });
		const complaints = (result.all ?? '').split('\n').filter((line) => line.includes('lowcode-faas.service'));
		assert.is(result.exitCode, 0, result.all);
		assert.equal(complaints, [], 'no warning about the unit');
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
});

unit('it runs after and requires docker, restarts on failure, and is hardened', async () => {
	const text = await readFile('lowcode-faas.service', 'utf8');
	const settings = new Map<string, string[]>();
	for (const line of text.split('\n')) {
		const match = /^(\w+)=(.*)$/.exec(line.trim());
		if (match) settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!]);
	}
	const has = (key: string, value: string) => assert.ok(settings.get(key)?.includes(value), `${key}=${value}`);
	has('Requires', 'docker.service');
	assert.match(settings.get('After')?.join(' ') ?? '', /docker\.service/);
	has('Restart', 'on-failure');
	has('ProtectSystem', 'strict');
	has('ReadWritePaths', '/opt/lowcode-faas/data');
	has('PrivateTmp', 'yes');
	has('NoNewPrivileges', 'yes');
	has('EnvironmentFile', '-/etc/lowcode-faas/env');
	has('Environment', 'LOWCODE_FAAS_DATA=/opt/lowcode-faas/data');
	has('ExecStartPre', '+/usr/bin/node /opt/lowcode-faas/dist/src/firewall.js lowcode-faas');
	assert.not.ok(settings.has('MemoryDenyWriteExecute'), "V8's JIT needs writable executable memory");
	// Found by test/systemd.test.ts: SIGTERM to the whole group killed the shutdown's docker calls, and
	// without netlink os.networkInterfaces() throws (the Host check of an API bound to 0.0.0.0).
	has('KillMode', 'mixed');
	assert.match(settings.get('RestrictAddressFamilies')?.join(' ') ?? '', /\bAF_NETLINK\b/);
});

unit.run();
