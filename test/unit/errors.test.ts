import { readFile } from 'node:fs/promises';
import { glob } from 'tinyglobby';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';

/** The README's error table is the registry in src/errors.ts, rendered; the code uses the registry's statuses. */
const errors = suite('error codes');

function renderTable(): string {
	const rows = (Object.entries(ERROR_CODES) as [ErrorCode, readonly [number, string]][]).sort(([, [a]], [, [b]]) => a - b);
	return ['| status | `code` | when |', '|---|---|---|', ...rows.map(([code, [status, when]]) => `| ${status} | \`${code}\` | ${when} |`)].join('\n');
}

errors('the README lists every code, with its status and meaning, exactly as src/errors.ts has them', async () => {
	const readme = await readFile('README.md', 'utf8');
	const match = /<!-- error-table: begin -->\n([\s\S]*?)\n<!-- error-table: end -->/.exec(readme);
	assert.ok(match, 'README.md holds the error table between its markers');
	assert.fixture(match![1]!, renderTable(), 'the README error table is stale: replace it with the table rendered here');
});

// The status of an error is its code's, by construction (ApiError reads it from the registry), and
// TypeScript refuses a code the registry lacks; what remains to check is that no code is dead.
errors('every code in the registry is one the platform can answer with', async () => {
	const files = await glob(['src/**/*.ts']);
	// The registry itself names every code: it is left out of the search.
	const text = (await Promise.all(files.map((file) => readFile(file, 'utf8')))).join('\n').replace(/export const ERROR_CODES = \{[\s\S]*?\} as const/, '');
	const unused = Object.keys(ERROR_CODES).filter((code) => !text.includes(`'${code}'`) && !(code.startsWith('invalid_') && text.includes('`invalid_${')));
	assert.equal(unused, [], 'codes in ERROR_CODES that no module uses');
});

errors.run();
