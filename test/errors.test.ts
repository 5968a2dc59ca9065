import { readFile } from 'node:fs/promises';
import { glob } from 'tinyglobby';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_CODES, type ErrorCode } from '../src/errors.js';

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

errors('every place that makes an error gives the status the registry has for its code', async () => {
	const files = await glob(['src/**/*.ts']);
	const seen = new Set<string>();
	for (const file of files) {
		const text = await readFile(file, 'utf8');
		const shapes: [RegExp, (m: RegExpExecArray) => [number, string]][] = [
			[/(?:ApiError|platformError)\(\s*(\d{3}),\s*'([a-z_]+)'/g, (m) => [Number(m[1]), m[2]!]],
			[/replyRaw\(\s*socket,\s*(\d{3}),\s*'([a-z_]+)'/g, (m) => [Number(m[1]), m[2]!]],
			[/badRequest\(\s*'([a-z_]+)'/g, (m) => [400, m[1]!]],
			[/notFound\(\s*'([a-z_]+)'/g, (m) => [404, m[1]!]],
		];
		for (const [pattern, read] of shapes) {
			for (const m of text.matchAll(pattern)) {
				const [status, code] = read(m as RegExpExecArray);
				seen.add(code);
				assert.ok(code in ERROR_CODES, `${file}: ${code} is not in ERROR_CODES`);
				assert.is(ERROR_CODES[code as ErrorCode][0], status, `${file}: ${code} made with ${status}`);
			}
		}
	}
	assert.ok(seen.size > 30, `the scan finds the codes (${seen.size})`);
});

errors.run();
