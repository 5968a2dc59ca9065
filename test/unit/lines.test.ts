import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readLines } from '../../src/lines.js';
import { KEPT_OUTPUT_CHARS, keptOutput } from '../../src/result.js';

const MiB = 1024 * 1024;

async function linesOf(text: string, max: number): Promise<string[]> {
	const dir = await mkdtemp(join(tmpdir(), 'lowcode-faas-lines-'));
	try {
		await writeFile(join(dir, 'f'), text);
		const out: string[] = [];
		for await (const line of readLines(join(dir, 'f'), max)) out.push(line);
		return out;
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
}

const lines = suite('readLines');

lines('lines across chunk boundaries, an overlong one skipped, a last one without newline kept', async () => {
	const wanted = ['a', '', 'b'.repeat(MiB - 3), 'c'.repeat(1.5 * MiB), 'd', 'é'.repeat(MiB)];
	const text = `${wanted.slice(0, 4).join('\n')}\n${'x'.repeat(3 * MiB)}\n${wanted.slice(4).join('\n')}`;
	assert.equal(await linesOf(text, 2.5 * MiB), wanted);
	assert.equal(await linesOf('', 10), []);
	assert.equal(await linesOf('only\n', 10), ['only']);
	assert.equal(await linesOf('12345678901\nok\n', 10), ['ok'], 'a line over the limit in the first chunk');
});

lines('a missing file has no lines', async () => {
	const out: string[] = [];
	for await (const line of readLines('/nonexistent/lowcode-faas', 10)) out.push(line);
	assert.equal(out, []);
});

lines.run();

const kept = suite('keptOutput');

kept('small outputs are kept whole; long ones as a string starting like them, within the bound', () => {
	fc.assert(
		fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 30_000 }), fc.jsonValue({ maxDepth: 4 })), (output) => {
			const { output: out, output_truncated } = keptOutput(output);
			const json = JSON.stringify(output) ?? '';
			if (json.length <= KEPT_OUTPUT_CHARS) return assert.equal(out, output) === undefined && output_truncated === undefined;
			assert.is(output_truncated, true);
			assert.type(out, 'string');
			assert.ok(JSON.stringify(out).length <= KEPT_OUTPUT_CHARS);
			assert.ok((typeof output === 'string' ? output : json).startsWith(out as string));
			return true;
		}),
		{ numRuns: 300 },
	);
	const control = keptOutput('\x01'.repeat(MiB));
	assert.is(control.output_truncated, true);
	assert.is(JSON.stringify(control.output).length, KEPT_OUTPUT_CHARS - ((KEPT_OUTPUT_CHARS - 2) % 6));
	const pair = keptOutput('😀'.repeat(40_000)).output as string;
	assert.ok(pair.isWellFormed(), 'never half a surrogate pair');
});

kept.run();
