import type { IncomingHttpHeaders } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { ApiError } from './errors.js';

/** Who may knock: checked on every request before its body is read or a route runs. */
export interface DoorOptions {
	/** The address the server listens on (LOWCODE_FAAS_HOST). */
	bindHost: string;
	/** Host header values also served: a name (any port) or name:port; `*` turns the Host check off. */
	allowedHosts: readonly string[];
	/** Browser origins also served, as `scheme://host[:port]`. */
	allowedOrigins: readonly string[];
}

// A Host header is a name or a bracketed IPv6 address, then an optional port; nothing else.
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/;
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

/** The host name (lower case, IPv6 in brackets, no trailing dot) and port of a Host header; null when malformed. */
function splitHost(value: string): { name: string; port: string | undefined } | null {
	const match = HOST.exec(value.trim().toLowerCase());
	if (!match) return null;
	const name = match[1]!.length > 1 ? match[1]!.replace(/\.$/, '') : match[1]!;
	return { name, port: match[2] };
}

const bracketed = (address: string) => (address.includes(':') ? `[${address.split('%')[0]}]` : address);

function isLoopbackName(name: string): boolean {
	return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/**
 * Bound to every interface, the server is addressed by any of the machine's own addresses or its host
 * name; read at each miss, so an address gained after start-up (DHCP) counts too.
 */
function isOwnName(name: string, bindHost: string): boolean {
	if (name === bracketed(bindHost.toLowerCase())) return true;
	if (!WILDCARDS.has(bindHost)) return false;
	if (name === hostname().toLowerCase()) return true;
	return ownAddresses().some((address) => bracketed(address.toLowerCase()) === name);
}

/** This machine's addresses; none when they cannot be read (a sandbox without netlink): only listed hosts then pass. */
function ownAddresses(): string[] {
	try {
		return Object.values(networkInterfaces()).flatMap((addresses) => (addresses ?? []).map((a) => a.address));
	} catch {
		return [];
	}
}

function isListed(name: string, port: string | undefined, allowed: readonly string[]): boolean {
	return allowed.some((entry) => entry === '*' || entry === name || (port !== undefined && entry === `${name}:${port}`));
}

/**
 * DNS rebinding: a page on attacker.example whose name the attacker re-points at 127.0.0.1 reaches the
 * API as its own origin, so the browser lets it read every answer. Its requests still say
 * `Host: attacker.example`, which this refuses. The port is not checked: a browser can only reach this
 * port, and a proxy in front may forward its own. 421 (Misdirected Request) is the status for "this
 * server does not serve that authority" (RFC 9110 §15.5.20).
 */
export function checkHost(header: string | undefined, door: DoorOptions): void {
	// HTTP/1.0 without Host: no browser sends that; HTTP/1.1 without one is refused before this.
	if (header === undefined) return;
	const host = splitHost(header);
	if (host && (isLoopbackName(host.name) || isListed(host.name, host.port, door.allowedHosts) || isOwnName(host.name, door.bindHost))) return;
	throw new ApiError('host_not_allowed', 'The Host header names no address of this server; list the name in LOWCODE_FAAS_ALLOWED_HOSTS to serve it.', { connection: 'close' });
}

/** The Origin is this server itself: same scheme-less authority as the Host the request was sent to. */
function isOwnOrigin(origin: string, host: string | undefined): boolean {
	if (host === undefined || !/^https?:\/\/[^/?#@]+$/i.test(origin)) return false;
	try {
		const url = new URL(origin);
		return new URL(`${url.protocol}//${host.trim()}`).host === url.host;
	} catch {
		return false;
	}
}

/**
 * Cross-site request forgery: a page elsewhere cannot be stopped from sending a request, but a browser
 * says where it comes from. Refused: an Origin that is neither this server nor listed (`null` included:
 * sandboxed frames, file pages), and `Sec-Fetch-Site: cross-site` or `same-site` without a listed
 * Origin (a GET from an <img> or a link carries no Origin). same-site is refused too because a site
 * ignores ports: every other program serving pages on localhost is "same-site" to this API.
 * `same-origin` and `none` (typed into the address bar) pass; curl and the CLI send neither header.
 * `pageVisit`: a top-level navigation to the console's static page, which a link elsewhere may open
 * (framing it is refused by its own headers, and the page does nothing on load but read).
 */
export function checkOrigin(headers: IncomingHttpHeaders, door: DoorOptions, pageVisit = false): void {
	const origin = headers.origin?.trim().toLowerCase();
	const listed = origin !== undefined && door.allowedOrigins.includes(origin);
	if (origin !== undefined && !listed && !isOwnOrigin(origin, headers.host)) {
		throw new ApiError('origin_not_allowed', 'Requests from this web page are not allowed; list its origin in LOWCODE_FAAS_ALLOWED_ORIGINS to allow them.', { connection: 'close' });
	}
	const site = headers['sec-fetch-site']?.trim().toLowerCase();
	if ((site === 'cross-site' || site === 'same-site') && !listed && !pageVisit) {
		throw new ApiError('cross_site_request', 'Requests from another site are not allowed; list its origin in LOWCODE_FAAS_ALLOWED_ORIGINS to allow them.', { connection: 'close' });
	}
}
