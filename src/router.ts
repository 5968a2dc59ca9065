import { ApiError } from './errors.js';

export type Params = Record<string, string>;

export type Match<H> =
	/** `rest`: for a pattern ending in `/*`, the raw (still encoded) remainder of the path, from its '/'. */
	{ kind: 'found'; handler: H; params: Params; rest: string } | { kind: 'method_not_allowed'; allow: string[] } | { kind: 'not_found' };

interface Route<H> {
	method: string;
	segments: string[];
	/** The pattern ends in `/*`: any remainder matches. */
	wildcard: boolean;
	handler: H;
}

/**
 * A small exact-segment router: `/functions/:name/invoke` matches one segment per `:param`, and a
 * trailing `/*` (`/fn/:name/*`) takes whatever follows, raw. It tells "no such path" (404) from
 * "path exists, wrong method" (405 with Allow). Method `*` takes every method.
 */
export function createRouter<H>() {
	const routes: Route<H>[] = [];

	function add(method: string, pattern: string, handler: H) {
		const segments = pattern.split('/').filter(Boolean);
		const wildcard = segments.at(-1) === '*';
		routes.push({ method, segments: wildcard ? segments.slice(0, -1) : segments, wildcard, handler });
	}

	function matchSegments(route: Route<H>, parts: string[]): Params | null {
		if (route.wildcard ? parts.length < route.segments.length : route.segments.length !== parts.length) return null;
		const params: Params = {};
		for (let i = 0; i < route.segments.length; i++) {
			const want = route.segments[i]!;
			if (want.startsWith(':')) params[want.slice(1)] = parts[i]!;
			else if (want !== parts[i]) return null;
		}
		return params;
	}

	function match(method: string, pathname: string): Match<H> {
		const parts = splitPath(pathname);
		const allow = new Set<string>();
		for (const route of routes) {
			const params = matchSegments(route, parts);
			if (!params) continue;
			if (route.method === method || route.method === '*') {
				return { kind: 'found', handler: route.handler, params, rest: route.wildcard ? remainder(pathname, route.segments.length) : '' };
			}
			allow.add(route.method);
		}
		// HEAD is not served: the API has no bodiless reads worth the extra surface.
		if (allow.size > 0) return { kind: 'method_not_allowed', allow: [...allow].sort() };
		return { kind: 'not_found' };
	}

	return { add, match };
}

/** The raw path after its first `count` segments, from the '/' that starts the next; '' when none. */
function remainder(pathname: string, count: number): string {
	let at = 0;
	for (let i = 0; i < count; i++) {
		at = pathname.indexOf('/', at + 1);
		if (at < 0) return '';
	}
	return pathname.slice(at);
}

/** Splits a raw path into decoded segments; a trailing slash is tolerated, an empty inner segment is not. */
export function splitPath(pathname: string): string[] {
	// The root is no segment at all: the route '/' has none. The asterisk form is one no route has.
	if (pathname === '/') return [];
	if (!pathname.startsWith('/')) return [pathname];
	const trimmed = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
	return trimmed
		.split('/')
		.slice(1)
		.map((part) => {
			try {
				return decodeURIComponent(part);
			} catch {
				throw new ApiError('bad_path', 'The request path is not valid percent-encoding.');
			}
		});
}
