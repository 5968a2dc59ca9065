import { badRequest } from './errors.js';

export type Params = Record<string, string>;

export type Match<H> =
	| { kind: 'found'; handler: H; params: Params }
	| { kind: 'method_not_allowed'; allow: string[] }
	| { kind: 'not_found' };

interface Route<H> {
	method: string;
	segments: string[];
	handler: H;
}

/**
 * A small exact-segment router: `/functions/:name/invoke` matches one segment per `:param`.
 * It tells "no such path" (404) from "path exists, wrong method" (405 with Allow).
 */
export function createRouter<H>() {
	const routes: Route<H>[] = [];

	function add(method: string, pattern: string, handler: H) {
		routes.push({ method, segments: pattern.split('/').filter(Boolean), handler });
	}

	function matchSegments(route: Route<H>, parts: string[]): Params | null {
		if (route.segments.length !== parts.length) return null;
		const params: Params = {};
		for (let i = 0; i < parts.length; i++) {
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
			if (route.method === method) return { kind: 'found', handler: route.handler, params };
			allow.add(route.method);
		}
		// HEAD is not served: the API has no bodiless reads worth the extra surface.
		if (allow.size > 0) return { kind: 'method_not_allowed', allow: [...allow].sort() };
		return { kind: 'not_found' };
	}

	return { add, match };
}

/** Splits a raw path into decoded segments; a trailing slash is tolerated, an empty inner segment is not. */
export function splitPath(pathname: string): string[] {
	const trimmed = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
	return trimmed
		.split('/')
		.slice(1)
		.map((part) => {
			try {
				return decodeURIComponent(part);
			} catch {
				throw badRequest('bad_path', 'The request path is not valid percent-encoding.');
			}
		});
}
