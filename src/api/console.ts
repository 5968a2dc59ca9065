import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError } from '../errors.js';
import type { Handler, Reply } from '../server.js';

/**
 * The web console: static files compiled and copied to dist/src/console by the build, read once at
 * start-up and served from memory. Only names read then are served, so no request path ever reaches
 * the file system (no traversal, no file dropped later, no link followed).
 */
const ASSETS = fileURLToPath(new URL('../console/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
	'.html': 'text/html; charset=utf-8',
	'.js': 'text/javascript; charset=utf-8',
	'.css': 'text/css; charset=utf-8',
	'.svg': 'image/svg+xml; charset=utf-8',
};

/**
 * What the browser may do with these pages: scripts, styles and requests to this origin only (no
 * inline script, no eval, no CDN), framed by nobody (clickjacking), no form posted elsewhere, no
 * <base> that re-points relative URLs. Function output is shown as text, never as markup, so a
 * hostile function cannot script the page either; the policy is the second wall.
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
	'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	'x-content-type-options': 'nosniff',
	'x-frame-options': 'DENY',
	'referrer-policy': 'no-referrer',
	'cross-origin-opener-policy': 'same-origin',
	'cross-origin-resource-policy': 'same-origin',
	// Revalidated every time (the ETag makes that cheap): a new version of the platform is never mixed with a cached old script.
	'cache-control': 'no-cache',
};

interface Asset {
	body: string;
	headers: Record<string, string>;
}

/** Every servable (text) file of the console folder, by name; none when the console was not built. */
function loadAssets(dir: string): Map<string, Asset> {
	const assets = new Map<string, Asset>();
	let names: string[];
	try {
		names = readdirSync(dir);
	} catch {
		return assets;
	}
	for (const name of names) {
		const type = TYPES[extname(name)];
		if (!type || !/^[a-z0-9][a-z0-9.-]*$/.test(name)) continue;
		const body = readFileSync(join(dir, name), 'utf8');
		const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
		assets.set(name, { body, headers: { ...CONSOLE_HEADERS, 'content-type': type, etag } });
	}
	return assets;
}

function serve(asset: Asset | undefined, ifNoneMatch: string | undefined): Reply {
	if (!asset) throw new ApiError('not_found', 'No such console file.');
	if (ifNoneMatch === asset.headers.etag) return { status: 304, headers: asset.headers };
	return { status: 200, headers: asset.headers, text: asset.body };
}

/** GET / and GET /console/NAME. */
export function consoleRoutes(dir = ASSETS): { index: Handler; asset: Handler } {
	const assets = loadAssets(dir);
	return {
		index: async (req) => serve(assets.get('index.html'), req.raw.req.headers['if-none-match']),
		// Only a bare file name: `/console/a/b` or an encoded slash is no asset.
		asset: async (req) => serve(req.raw.rest.includes('/', 1) ? undefined : assets.get(req.raw.rest.slice(1)), req.raw.req.headers['if-none-match']),
	};
}
