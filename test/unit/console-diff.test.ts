import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type DiffLine, diffLines } from '../../src/console/diff.js';

/** The two texts a diff describes: its same+del lines, its same+add lines. */
function sides(diff: DiffLine[]): [string, string] {
	const before = diff.filter((l) => l.op !== 'add').map((l) => l.text);
	const after = diff.filter((l) => l.op !== 'del').map((l) => l.text);
	return [before.join('\n'), after.join('\n')];
}

const changes = (diff: DiffLine[]) => diff.filter((l) => l.op !== 'same').length;

const diff = suite('diffLines');

diff('an edit in the middle is one deletion and one addition between kept lines', () => {
	assert.equal(diffLines('a\nb\nc', 'a\nB\nc'), [
		{ op: 'same', text: 'a' },
		{ op: 'del', text: 'b' },
		{ op: 'add', text: 'B' },
		{ op: 'same', text: 'c' },
	]);
});

diff('insertions, deletions, empty sides', () => {
	assert.equal(diffLines('', ''), []);
	assert.equal(diffLines('', 'x\ny'), [
		{ op: 'add', text: 'x' },
		{ op: 'add', text: 'y' },
	]);
	assert.equal(diffLines('x\ny', ''), [
		{ op: 'del', text: 'x' },
		{ op: 'del', text: 'y' },
	]);
	assert.equal(diffLines('a\nc', 'a\nb\nc'), [
		{ op: 'same', text: 'a' },
		{ op: 'add', text: 'b' },
		{ op: 'same', text: 'c' },
	]);
	assert.equal(diffLines('a\n', 'a'), [
		{ op: 'same', text: 'a' },
		{ op: 'del', text: '' },
	]);
});

diff('moved blocks: the shortest script (Myers), not a rewrite', () => {
	const before = 'def f():\n    return 1\n\ndef g():\n    return 2';
	const after = 'def g():\n    return 2\n\ndef f():\n    return 1';
	const result = diffLines(before, after);
	assert.equal(sides(result), [before, after]);
	assert.is(changes(result), 6, 'three lines out and three in, the other two kept');
});

diff('applying the diff to before yields after, and it is no longer than a rewrite (property)', () => {
	const text = fc.array(fc.constantFrom('a', 'b', 'c', '', 'def x():', '  return 1'), { maxLength: 30 }).map((lines) => lines.join('\n'));
	fc.assert(
		fc.property(text, text, (before, after) => {
			const result = diffLines(before, after);
			assert.equal(sides(result), [before, after]);
			const lines = (s: string) => (s === '' ? 0 : s.split('\n').length);
			assert.ok(changes(result) <= lines(before) + lines(after));
		}),
		{ numRuns: 2000 },
	);
});

diff('identical texts have no changes, however large', () => {
	const big = Array.from({ length: 200_000 }, (_, n) => `line ${n}`).join('\n');
	const start = performance.now();
	assert.is(changes(diffLines(big, big)), 0);
	assert.ok(performance.now() - start < 1000);
});

diff('a huge wholesale rewrite falls back to a coarse diff quickly instead of hanging', () => {
	const before = Array.from({ length: 50_000 }, (_, n) => `old ${n}`).join('\n');
	const after = Array.from({ length: 50_000 }, (_, n) => `new ${n}`).join('\n');
	const start = performance.now();
	const result = diffLines(before, after);
	const ms = performance.now() - start;
	assert.equal(sides(result), [before, after]);
	assert.is(changes(result), 100_000);
	assert.ok(ms < 2000, `${ms.toFixed(0)} ms`);
});

diff('many scattered edits in a large file stay exact while within the bound', () => {
	const lines = Array.from({ length: 20_000 }, (_, n) => `line ${n}`);
	const edited = lines.map((line, n) => (n % 1000 === 0 ? `${line} changed` : line));
	const result = diffLines(lines.join('\n'), edited.join('\n'));
	assert.equal(sides(result), [lines.join('\n'), edited.join('\n')]);
	assert.is(changes(result), 40, 'twenty lines changed: twenty out, twenty in');
});

diff.run();
