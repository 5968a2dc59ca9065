import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, statfs } from 'node:fs/promises';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { unguardBridge } from '../src/firewall.js';
import { containersOf, eventually } from './helpers.js';

/**
 * The unit as an operator installs it (README, "Running as a service"), started by a real systemd: PID 1
 * of a Debian container (scripts/build-images.sh systemd-test=...) on the host's network, driving the
 * host's Docker engine through its socket.
 *
 * Why these choices:
 * - `--network host`: the platform inside reaches its functions on the host's bridge (its interface must
 *   be local) and the test reaches the API on the host's 127.0.0.1. The unit's firewall step therefore
 *   writes the HOST's iptables: a chain for this test's own network, removed afterwards.
 * - Only the cgroup2 hierarchy is bound in: a systemd that saw a cgroup v1 host's whole /sys/fs/cgroup
 *   read-write would create v1 hierarchies the host never mounted, and break Docker for everyone after.
 * - The data folder has the same path inside and on the host: the engine resolves function sources'
 *   bind mounts on the host. It is set by a drop-in (LOWCODE_FAAS_DATA and ReadWritePaths), the way an
 *   operator moves it, and lies outside /tmp and /var/tmp, which PrivateTmp hides from the service.
 * - docker.service is a stand-in that checks the bound socket: the engine runs on the host.
 */

const IMAGE = 'lowcode-faas/systemd-test:1';
const CGROUP2_MAGIC = 0x63677270;

/** The host's cgroup2 mount: /sys/fs/cgroup itself (unified) or /sys/fs/cgroup/unified (hybrid); null without one. */
async function cgroup2Mount(): Promise<string | null> {
	for (const path of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
		const info = await statfs(path).catch(() => null);
		if (info && Number(info.type) === CGROUP2_MAGIC) return path;
	}
	return null;
}

async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
	const { port } = server.address() as { port: number };
	await new Promise((done) => server.close(done));
	return port;
}

async function ensureImage() {
	const { exitCode } = await execa('docker', ['image', 'inspect', IMAGE], { reject: false, stdio: 'ignore' });
	if (exitCode === 0) return;
	const log = join(await mkdtemp('/tmp/lowcode-faas-systemd-image-'), 'build.log');
	await execa('bash', ['scripts/build-images.sh', `systemd-test=${IMAGE}`], { env: { SETUP_LOG: log }, stdio: 'inherit' });
}

const sd = suite('the systemd unit, started by a real systemd');

sd('systemctl start serves greet; stop removes every container; the JSON log is in journald', async () => {
	if (process.getuid?.() !== 0) {
		console.log('  (skipped: needs root, for iptables and the Docker socket)');
		return;
	}
	const cgroup2 = await cgroup2Mount();
	assert.ok(cgroup2, `no cgroup2 hierarchy on this host (ls /sys/fs/cgroup): systemd cannot be booted safely`);
	const cgroupsBefore = await readFile('/proc/self/cgroup', 'utf8');
	const hierarchiesBefore = await readdir('/sys/fs/cgroup');
	await ensureImage();

	const name = `lcf-systemd-test-${randomBytes(4).toString('hex')}`;
	// Not under /tmp nor /var/tmp: PrivateTmp would hide it from the service.
	const dataDir = await mkdtemp('/var/lib/lowcode-faas-systemd-test-');
	const token = randomBytes(24).toString('hex');
	const port = await freePort();
	const env = { LOWCODE_FAAS_DATA: dataDir, LOWCODE_FAAS_NETWORK: name, LOWCODE_FAAS_TOKEN: token };
	const config = loadConfig(env);
	const { bridge } = config.sandbox;
	const chain = `LOWCODE-FAAS-${bridge}`;
	const dockerCli = (await execa('sh', ['-c', 'command -v docker'])).stdout.trim();
	const socket = '/var/run/docker.sock';
	const socketGid = (await stat(socket)).gid;
	const inside = (script: string, options: { reject?: boolean } = {}) => execa('docker', ['exec', '-i', name, 'bash', '-c', script], { reject: options.reject ?? true, all: true });
	const journal = async () => (await inside('journalctl --sync; journalctl -u lowcode-faas -o cat --no-pager')).stdout.split('\n');
	const containers = async () => (await execa('docker', ['ps', '-aq', '--filter', 'label=lowcode-faas', '--filter', `label=lowcode-faas.instance=${config.instance}`])).stdout.split('\n').filter(Boolean);

	try {
		await mkdir(join(dataDir, 'functions'));
		await copyFile('data/functions/greet.py', join(dataDir, 'functions', 'greet.py'));
		await chmod(join(dataDir, 'functions', 'greet.py'), 0o644);
		// prettier-ignore
		// biome-ignore format: docker flags stay paired with their values
		await execa('docker', ['run', '-d', '--name', name, '--label', 'lowcode-faas.test=systemd',
			'--network', 'host',
			// --privileged fails on a host whose bounding set lacks CAP_SYS_RESOURCE; this is the rest of it.
			'--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE', '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined',
			'--cgroupns=host', '-v', `${cgroup2}:/sys/fs/cgroup:rw`, '--tmpfs', '/run', '--tmpfs', '/run/lock',
			'--stop-signal', 'SIGRTMIN+3',
			'-v', `${process.execPath}:/usr/bin/node:ro`, '-v', `${dockerCli}:/usr/local/bin/docker:ro`, '-v', `${socket}:/run/docker.sock`,
			// The built project, as a clone in /opt/lowcode-faas would be; its data/ is the operator's, empty here.
			'-v', `${resolve('.')}:/opt/lowcode-faas:ro`, '--tmpfs', '/opt/lowcode-faas/data',
			'-v', `${dataDir}:${dataDir}`,
			IMAGE]);

		const booted = await eventually(
			'systemd to boot',
			() => inside('systemctl is-system-running --wait', { reject: false }),
			(r) => /^(running|degraded)$/m.test(r.stdout),
			30_000,
		).catch(async (err: Error) => {
			throw new Error(`${err.message}\nfailed units: ${(await inside('systemctl --failed --no-legend --plain', { reject: false })).stdout}`);
		});
		const failed = (await inside('systemctl --failed --no-legend --plain', { reject: false })).stdout;
		assert.match(booted.stdout, /^running$/m, `systemd did not reach "running": ${booted.all}\nfailed units: ${failed}`);
		const ldd = (await inside('ldd /usr/bin/node')).stdout;
		assert.not.match(ldd, /not found/, `the host's node needs libraries the image lacks:\n${ldd}`);

		// README, "Running as a service", step by step; the docker group gets the socket's group id.
		await inside(`set -euo pipefail
			groupadd -o -g ${socketGid} docker
			useradd --system --user-group --no-create-home --shell /usr/sbin/nologin lowcode-faas
			chown -R lowcode-faas:lowcode-faas /opt/lowcode-faas/data ${dataDir}
			install -d -m 0750 /etc/lowcode-faas
			printf '%s\\n' LOWCODE_FAAS_TOKEN=${token} LOWCODE_FAAS_PORT=${port} LOWCODE_FAAS_HOST=0.0.0.0 LOWCODE_FAAS_NETWORK=${name} LOWCODE_FAAS_LOG_LEVEL=info \\
				| install -m 0600 /dev/stdin /etc/lowcode-faas/env
			cp /opt/lowcode-faas/lowcode-faas.service /etc/systemd/system/
			mkdir -p /etc/systemd/system/lowcode-faas.service.d
			printf '[Service]\\nEnvironment=LOWCODE_FAAS_DATA=%s\\nReadWritePaths=%s\\n' ${dataDir} ${dataDir} > /etc/systemd/system/lowcode-faas.service.d/data.conf
			printf '[Unit]\\nDescription=the host engine, through its bound socket\\n[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/usr/bin/test -S /run/docker.sock\\n' > /etc/systemd/system/docker.service
			systemctl daemon-reload`);

		const started = await inside('systemctl start lowcode-faas', { reject: false });
		const status = async () => (await inside('systemctl status --no-pager --lines=30 lowcode-faas', { reject: false })).stdout;
		assert.is(started.exitCode, 0, `systemctl start failed: ${started.all}\n${await status()}`);

		// A client inside the container: node's http, which lets the Host header be set.
		const call = async (method: string, path: string, body?: unknown, host?: string) => {
			const script = `const req = require('node:http').request({ host: '127.0.0.1', port: ${port}, method: ${JSON.stringify(method)}, path: ${JSON.stringify(path)},
				headers: { authorization: 'Bearer ${token}', 'content-type': 'application/json'${host ? `, host: ${JSON.stringify(host)}` : ''} } }, (res) => {
				let text = ''; res.on('data', (c) => (text += c)); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, text })));
			});
			req.on('error', (e) => console.log(JSON.stringify({ status: 0, text: e.code ?? e.message })));
			req.end(${JSON.stringify(body === undefined ? '' : JSON.stringify(body))});`;
			const { stdout } = await execa('docker', ['exec', name, 'node', '-e', script]);
			const { status: code, text } = JSON.parse(stdout) as { status: number; text: string };
			// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field
			let parsed: any;
			try {
				parsed = JSON.parse(text);
			} catch {
				parsed = text;
			}
			return { status: code, body: parsed };
		};
		await eventually(
			'the service to answer /healthz',
			() => call('GET', '/healthz'),
			(r) => r.status === 200,
			15_000,
		).catch(async (err: Error) => {
			throw new Error(`${err.message}\n${await status()}`);
		});

		const greet = await call('POST', '/functions/greet/invoke', { input: { name: 'systemd' }, timeout_ms: 20_000 });
		assert.is(greet.status, 200, JSON.stringify(greet.body));
		assert.is(greet.body.status, 'success', greet.body.error_message);
		assert.equal(greet.body.output, { message: 'Hello, systemd' });

		// A function created through the API under UMask=0027: its source must still be readable by the functions' uid.
		const created = await call('POST', '/functions', { name: 'made', language: 'python', source_code: await readFile('data/functions/greet.py', 'utf8') });
		assert.is(created.status, 201, JSON.stringify(created.body));
		const made = await call('POST', '/functions/made/invoke', { input: { name: 'umask' }, timeout_ms: 20_000 });
		assert.is(made.body.status, 'success', made.body.error_message);
		const logs = await call('GET', '/functions/greet/logs');
		assert.match(String(logs.body), /greet listening/, 'docker logs works under the hardening');

		// Bound to every interface, the API serves a Host naming one of the machine's addresses: the
		// Host check lists the interfaces (os.networkInterfaces(), a netlink socket).
		const own = Object.values(networkInterfaces())
			.flat()
			.find((a) => a && a.family === 'IPv4' && !a.internal);
		if (own) {
			const byAddress = await call('GET', '/healthz', undefined, `${own.address}:${port}`);
			assert.is(byAddress.status, 200, `Host: ${own.address} answered ${byAddress.status} ${JSON.stringify(byAddress.body)}`);
		}
		// Besides the idle stem cells the service keeps (they are removed at stop, checked below).
		assert.is((await containersOf(config)).length, 2, 'greet and made run on the host engine');

		const stopped = await inside('systemctl stop lowcode-faas', { reject: false });
		assert.is(stopped.exitCode, 0, stopped.all);
		assert.equal(await containers(), [], 'systemctl stop left function containers');
		assert.is((await inside('systemctl is-active lowcode-faas', { reject: false })).stdout.trim(), 'inactive', await status());

		const lines = await eventually('the "stopping" record in the journal', journal, (all) => all.some((l) => l.includes('"msg":"stopping"')), 5_000);
		const records = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string; status?: number; url?: string });
		const uid = (await inside('id -u lowcode-faas')).stdout.trim();
		assert.ok(
			lines.some((l) => l.includes(`only uids 0, ${uid} may open connections to functions on ${bridge}`)),
			`the firewall step ran:\n${lines.join('\n')}`,
		);
		assert.ok(
			records.some((r) => r.msg === 'listening'),
			'a "listening" record',
		);
		assert.ok(
			records.some((r) => r.msg === 'request' && r.url === '/functions/greet/invoke' && r.status === 200),
			'the invocation is logged',
		);
		assert.ok(
			records.some((r) => r.msg === 'stopping'),
			'the SIGTERM is logged',
		);
		// On stop only the platform may get SIGTERM: signalled too, its `docker rm` and `docker events` die under it.
		assert.equal(
			records.filter((r) => r.level === 'warn' || r.level === 'error'),
			[],
			`no warning in the log:\n${lines.join('\n')}`,
		);
	} finally {
		await execa('docker', ['rm', '-f', name], { reject: false });
		const left = await containers();
		if (left.length > 0) await execa('docker', ['rm', '-f', ...left], { reject: false });
		await execa('docker', ['network', 'rm', name], { reject: false });
		await unguardBridge(bridge);
		await rm(dataDir, { recursive: true, force: true });
	}
	assert.is(await readFile('/proc/self/cgroup', 'utf8'), cgroupsBefore, "the host's cgroup hierarchies are unchanged");
	assert.equal(await readdir('/sys/fs/cgroup'), hierarchiesBefore, 'no cgroup hierarchy was mounted on the host');
	const { stdout: rules } = await execa('iptables', ['-S']);
	assert.not.ok(rules.includes(chain) || rules.includes(`LCF-IN-${bridge}`), 'the firewall chains are gone');
});

sd.run();
