import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { ConfigError, loadConfig } from './config.js';
import { inspectNetwork } from './docker.js';

/**
 * Keeps other local users off the functions' bridge. The platform reaches a container on its bridge
 * address, and the host routes that address for every process, so without this any local user could
 * call a function around the API's token. One iptables chain, hooked into OUTPUT for the bridge's
 * interface: replies on connections the container opened pass, and new connections only from the
 * allowed uids (root and the platform's user).
 */

const chainOf = (bridge: string) => `LOWCODE-FAAS-${bridge}`;

function rulesFor(chain: string, uids: readonly number[]): string[][] {
	return [
		['-A', chain, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN'],
		...[...new Set(uids)].map((uid) => ['-A', chain, '-m', 'owner', '--uid-owner', String(uid), '-j', 'RETURN']),
		['-A', chain, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'],
		['-A', chain, '-j', 'REJECT'],
	];
}

const iptables = (args: string[]) => execa('iptables', ['-w', '5', ...args], { stdin: 'ignore' });

/** Installs (or repairs) the guard of `bridge`; idempotent, and leaves a correct chain untouched. */
export async function guardBridge(bridge: string, uids: readonly number[]): Promise<void> {
	const chain = chainOf(bridge);
	const rules = rulesFor(chain, uids);
	await iptables(['-N', chain]).catch(() => {}); // exists already
	const { stdout } = await iptables(['-S', chain]);
	const want = [`-N ${chain}`, ...rules.map((rule) => rule.join(' '))];
	const have = stdout.split('\n').filter(Boolean).map((line) => line.replace(/ --reject-with icmp-port-unreachable$/, ''));
	if (have.join('\n') !== want.join('\n')) {
		// Filled before it is hooked in (first time), or refilled in place: a stale chain is rare.
		await iptables(['-F', chain]);
		for (const rule of rules) await iptables(rule);
	}
	const hook = ['OUTPUT', '-o', bridge, '-j', chain];
	await iptables(['-C', ...hook]).catch(() => iptables(['-I', ...hook]));
}

/** The bridge interface of `network`: Docker's own account when the network exists, else the name the platform will give it. */
export async function bridgeOf(network: string, planned: string): Promise<string> {
	return (await inspectNetwork(network))?.bridge ?? planned;
}

/**
 * `node dist/src/firewall.js [USER]`, run as root before the platform starts under another user (the
 * systemd unit's ExecStartPre=+): guards the configured network's bridge for root and USER.
 */
async function main() {
	const user = process.argv[2];
	const uids = [0];
	if (user) uids.push(/^\d+$/.test(user) ? Number(user) : Number((await execa('id', ['-u', '--', user])).stdout.trim()));
	const config = loadConfig();
	const bridge = await bridgeOf(config.sandbox.network, config.sandbox.bridge);
	await guardBridge(bridge, uids);
	console.error(`lowcode-faas: only uids ${uids.join(', ')} may open connections to functions on ${bridge}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
	await main().catch((err: unknown) => {
		console.error(`lowcode-faas firewall: ${err instanceof ConfigError ? err.message : ((err as { shortMessage?: string }).shortMessage ?? String(err))}`);
		process.exit(1);
	});
}
