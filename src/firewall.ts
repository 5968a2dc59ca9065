import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { ConfigError, loadConfig } from './config.js';
import { inspectNetwork } from './docker.js';

/**
 * Keeps other local users off the functions' bridge, and functions off the host. The platform reaches
 * a container on its bridge address, and the host routes that address for every process, so without
 * this any local user could call a function around the API's token; and a function could open
 * connections to any host service listening on all interfaces, through the bridge's gateway.
 * Two iptables chains for the bridge's interface:
 * - hooked into OUTPUT: replies on connections a container opened pass, and new connections only
 *   from the allowed uids (root and the platform's user);
 * - hooked into INPUT: a container may answer the host, never open a connection to it. Traffic that
 *   leaves the host (the network at large) is forwarded, not input, and stays allowed.
 */

const outChain = (bridge: string) => `LOWCODE-FAAS-${bridge}`;
const inChain = (bridge: string) => `LCF-IN-${bridge}`;

const REJECT = (chain: string) => [
	['-A', chain, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'],
	['-A', chain, '-j', 'REJECT'],
];

function outRules(chain: string, uids: readonly number[]): string[][] {
	return [
		// Written as iptables -S prints it, so that a correct chain compares equal and is left alone.
		['-A', chain, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'],
		...[...new Set(uids)].map((uid) => ['-A', chain, '-m', 'owner', '--uid-owner', String(uid), '-j', 'RETURN']),
		...REJECT(chain),
	];
}

function inRules(chain: string): string[][] {
	return [['-A', chain, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'], ...REJECT(chain)];
}

const iptables = (args: string[]) => execa('iptables', ['-w', '5', ...args], { stdin: 'ignore' });

/** Makes `chain` hold exactly `rules` and hooks it in; a correct chain is left untouched. */
async function ensureChain(chain: string, rules: string[][], hook: string[]) {
	await iptables(['-N', chain]).catch(() => {}); // exists already
	const { stdout } = await iptables(['-S', chain]);
	const want = [`-N ${chain}`, ...rules.map((rule) => rule.join(' '))];
	const have = stdout
		.split('\n')
		.filter(Boolean)
		.map((line) => line.replace(/ --reject-with icmp-port-unreachable$/, ''));
	if (have.join('\n') !== want.join('\n')) {
		// Filled before it is hooked in (first time), or refilled in place: a stale chain is rare.
		await iptables(['-F', chain]);
		for (const rule of rules) await iptables(rule);
	}
	await iptables(['-C', ...hook]).catch(() => iptables(['-I', ...hook]));
}

/** Installs (or repairs) the guards of `bridge`; idempotent. */
export async function guardBridge(bridge: string, uids: readonly number[]): Promise<void> {
	await ensureChain(outChain(bridge), outRules(outChain(bridge), uids), ['OUTPUT', '-o', bridge, '-j', outChain(bridge)]);
	await ensureChain(inChain(bridge), inRules(inChain(bridge)), ['INPUT', '-i', bridge, '-j', inChain(bridge)]);
}

/** Removes the guards of `bridge` (tests; a network the platform no longer uses). */
export async function unguardBridge(bridge: string): Promise<void> {
	const guards: [string, string[]][] = [
		[outChain(bridge), ['OUTPUT', '-o', bridge]],
		[inChain(bridge), ['INPUT', '-i', bridge]],
	];
	for (const [chain, hook] of guards) {
		await iptables(['-D', ...hook, '-j', chain]).catch(() => {});
		await iptables(['-F', chain]).catch(() => {});
		await iptables(['-X', chain]).catch(() => {});
	}
}

/** The bridge interface of `network`: Docker's own account when the network exists, else the name the platform will give it. */
async function bridgeOf(network: string, planned: string): Promise<string> {
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
