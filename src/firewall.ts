import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { type Config, ConfigError, loadConfig } from './config.js';
import { inspectNetwork } from './docker.js';
import { ensureNetwork as ensureSwarmNetwork } from './swarm.js';

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
 * With the Swarm backend, tasks are published in host mode on every address of their node (IPv4 and
 * IPv6), so a third chain, for IPv4 and IPv6, hooked into OUTPUT for new TCP connections to the
 * LOWCODE_FAAS_SWARM_PORTS range at any address (the manager calls tasks on other nodes too), lets
 * only the same uids through; and the swarm network's bridge on this node gets the first two.
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

type Tables = (args: string[]) => Promise<unknown>;
const tables =
	(command: 'iptables' | 'ip6tables'): Tables =>
	(args) =>
		execa(command, ['-w', '5', ...args], { stdin: 'ignore' });
const iptables = tables('iptables');
const ip6tables = tables('ip6tables');
// IPv6 rules where the kernel has IPv6 (Docker publishes on [::] there too); ip6tables fails where it has none.
const families = (): Tables[] => (existsSync('/proc/net/if_inet6') ? [iptables, ip6tables] : [iptables]);

/** Makes `chain` hold exactly `rules` and hooks it in; a correct chain is left untouched. */
async function ensureChain(chain: string, rules: string[][], hook: string[], run = iptables) {
	await run(['-N', chain]).catch(() => {}); // exists already
	const { stdout } = (await run(['-S', chain])) as { stdout: string };
	const want = [`-N ${chain}`, ...rules.map((rule) => rule.join(' '))];
	const have = stdout
		.split('\n')
		.filter(Boolean)
		.map((line) => line.replace(/ --reject-with icmp6?-port-unreachable$/, ''));
	if (have.join('\n') !== want.join('\n')) {
		// Filled before it is hooked in (first time), or refilled in place: a stale chain is rare.
		await run(['-F', chain]);
		for (const rule of rules) await run(rule);
	}
	await run(['-C', ...hook]).catch(() => run(['-I', ...hook]));
}

/** Unhooks and deletes `chain`; one already gone counts as removed. */
async function removeChain(chain: string, hook: string[], run = iptables) {
	await run(['-D', ...hook, '-j', chain]).catch(() => {});
	await run(['-F', chain]).catch(() => {});
	await run(['-X', chain]).catch(() => {});
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
	for (const [chain, hook] of guards) await removeChain(chain, hook);
}

type Ports = Config['swarmPorts'];
// Named by the range, as the bridge chains are by the bridge: a platform on another range keeps its own.
const portsChain = ({ first, last }: Ports) => `LCF-SW-${first}-${last}`;
// Matched on the port the connection was opened to, before Docker's DNAT turns it into the task's 8080.
const portsMatch = ({ first, last }: Ports) => ['-p', 'tcp', '-m', 'conntrack', '--ctorigdstport', `${first}:${last}`];

/** Installs (or repairs) the guard of the swarm's published ports, IPv4 and IPv6; idempotent. */
export async function guardPorts(ports: Ports, uids: readonly number[]): Promise<void> {
	const chain = portsChain(ports);
	for (const run of families()) await ensureChain(chain, outRules(chain, uids), ['OUTPUT', ...portsMatch(ports), '-j', chain], run);
}

/** Removes the guard of the swarm's published ports (tests; a range the platform no longer uses). */
export async function unguardPorts(ports: Ports): Promise<void> {
	for (const run of families()) await removeChain(portsChain(ports), ['OUTPUT', ...portsMatch(ports)], run);
}

/**
 * Swarm mode: only `uids` may open connections to the tasks' addresses on this node's swarm bridge,
 * and no task may open one to the host. The bridge is the swarm network's, made here if it is not
 * yet; only a manager can make it (on a worker it exists once a task runs there): that fails.
 */
export async function guardSwarmBridge(config: Config, uids: readonly number[]): Promise<string> {
	const network = `${config.sandbox.network}-swarm`;
	await ensureSwarmNetwork(network);
	const info = await inspectNetwork(network);
	if (!info) throw new Error(`the network ${network} is missing`);
	await guardBridge(info.bridge, uids);
	return info.bridge;
}

/** Removes what guardPorts and guardSwarmBridge installed (tests). */
export async function unguardSwarm(config: Config): Promise<void> {
	await unguardPorts(config.swarmPorts);
	const info = await inspectNetwork(`${config.sandbox.network}-swarm`).catch(() => null);
	if (info) await unguardBridge(info.bridge);
}

/** The bridge interface of `network`: Docker's own account when the network exists, else the name the platform will give it. */
async function bridgeOf(network: string, planned: string): Promise<string> {
	return (await inspectNetwork(network))?.bridge ?? planned;
}

/**
 * `node dist/src/firewall.js [USER]`, run as root before the platform starts under another user (the
 * systemd unit's ExecStartPre=+): guards the configured network's bridge for root and USER, and with
 * LOWCODE_FAAS_BACKEND=swarm the swarm's published ports and its bridge on this node too.
 */
async function main() {
	const user = process.argv[2];
	const uids = [0];
	if (user) uids.push(/^\d+$/.test(user) ? Number(user) : Number((await execa('id', ['-u', '--', user])).stdout.trim()));
	const config = loadConfig();
	const bridge = await bridgeOf(config.sandbox.network, config.sandbox.bridge);
	await guardBridge(bridge, uids);
	console.error(`lowcode-faas: only uids ${uids.join(', ')} may open connections to functions on ${bridge}`);
	if (config.backend !== 'swarm') return;
	const { first, last } = config.swarmPorts;
	const who = `only uids ${uids.join(', ')} may open connections`;
	await guardPorts(config.swarmPorts, uids);
	await guardSwarmBridge(config, uids).then(
		(swarm) => console.error(`lowcode-faas: ${who} to ports ${first}-${last} (any address) and to tasks on ${swarm}`),
		// No swarm yet, or a worker without a task: nothing runs on that bridge yet; run this again once it exists.
		(err: unknown) => console.error(`lowcode-faas: ${who} to ports ${first}-${last} (any address); the swarm network's bridge is not guarded: ${describe(err)}`),
	);
}

const describe = (err: unknown) => (err instanceof ConfigError ? err.message : ((err as { shortMessage?: string }).shortMessage ?? String(err)));

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
	await main().catch((err: unknown) => {
		console.error(`lowcode-faas firewall: ${describe(err)}`);
		process.exit(1);
	});
}
