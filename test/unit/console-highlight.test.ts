import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type HighlightedLines, type Token, highlightLines, tokenize } from '../../src/console/highlight.js';

/** The non-plain tokens as `type:text`, which is what a reader sees coloured. */
function coloured(source: string, language: 'python' | 'deno'): string[] {
	return tokenize(source, language)
		.filter((t) => t.type !== 'plain')
		.map((t) => `${t.type}:${t.text}`);
}

const join = (tokens: Token[]) => tokens.map((t) => t.text).join('');

const python = suite('highlight: Python');

python('keywords, comments, strings and numbers; identifiers that contain them are plain', () => {
	assert.equal(coloured('def handler(event):  # entry\n    return {\'n\': 42, "f": 1.5e3}', 'python'), ['keyword:def', 'comment:# entry', 'keyword:return', "string:'n'", 'number:42', 'string:"f"', 'number:1.5e3']);
	assert.equal(coloured('define = not_ok or x2 + obj.class', 'python'), ['keyword:or'], 'no keyword inside a name, none after a dot');
	assert.equal(coloured('True None False', 'python'), ['keyword:True', 'keyword:None', 'keyword:False']);
});

python('prefixed and triple-quoted strings, a # inside a string, escapes', () => {
	assert.equal(coloured(`f"{x}" rb'\\x00' R"a\\"b" u'é'`, 'python'), ['string:f"{x}"', "string:rb'\\x00'", 'string:R"a\\"b"', "string:u'é'"]);
	assert.equal(coloured('s = """one\n# not a comment\n"two"\n"""  # yes', 'python'), ['string:"""one\n# not a comment\n"two"\n"""', 'comment:# yes']);
	assert.equal(coloured("x = '''a''' + 'b'", 'python'), ["string:'''a'''", "string:'b'"]);
	assert.equal(coloured('fr = 1', 'python'), ['number:1'], 'a prefix-like name without a quote is a name');
});

python('unterminated strings stop at the line end (one-line) or run to the end (triple)', () => {
	assert.equal(coloured("a = 'open\nb = 1", 'python'), ["string:'open", 'number:1']);
	assert.equal(coloured('a = """open\nb = 1', 'python'), ['string:"""open\nb = 1']);
	assert.equal(coloured("x = 'ends with backslash\\", 'python'), ["string:'ends with backslash\\"]);
});

python('numbers: hex, octal, binary, underscores, imaginary, leading dot', () => {
	assert.equal(coloured('0xFF 0o17 0b101 1_000 3j .5', 'python'), ['number:0xFF', 'number:0o17', 'number:0b101', 'number:1_000', 'number:3j', 'number:.5']);
});

const deno = suite('highlight: Deno (TypeScript)');

deno('keywords, line and block comments, three kinds of strings, numbers', () => {
	// biome-ignore lint/suspicious/noTemplateCurlyInString: the TypeScript being tokenized holds a template literal
	assert.equal(coloured('export default async function (req: Request) { /* c */ return `t ${a}` + "d" + \'s\' // e\n}', 'deno'), [
		'keyword:export',
		'keyword:default',
		'keyword:async',
		'keyword:function',
		'comment:/* c */',
		'keyword:return',
		// biome-ignore lint/suspicious/noTemplateCurlyInString: the token is that template literal
		'string:`t ${a}`',
		'string:"d"',
		"string:'s'",
		'comment:// e',
	]);
	assert.equal(coloured('const n = 10n + 0x1f + 1e-3; x.default; # not a comment', 'deno'), ['keyword:const', 'number:10n', 'number:0x1f', 'number:1e-3']);
});

deno('template strings span lines; unterminated comments and templates run to the end', () => {
	assert.equal(coloured('`a\nb` 1', 'deno'), ['string:`a\nb`', 'number:1']);
	assert.equal(coloured('/* open\nconst x', 'deno'), ['comment:/* open\nconst x']);
	assert.equal(coloured('`open\nconst x', 'deno'), ['string:`open\nconst x']);
	assert.equal(coloured('"a\nconst', 'deno'), ['string:"a', 'keyword:const']);
});

const props = suite('highlight: properties');

props('the tokens concatenate back to the source, and no token is empty', () => {
	const alphabet = fc.constantFrom(...'ab1._ #/*\'"`\\\nrfdeflet{}$é0x'.split(''), 'def ', 'const ', "'''", '"""', '/*', '*/', '//');
	fc.assert(
		fc.property(
			fc.array(alphabet, { maxLength: 60 }).map((parts) => parts.join('')),
			fc.constantFrom<'python' | 'deno'>('python', 'deno'),
			(source, language) => {
				const tokens = tokenize(source, language);
				assert.is(join(tokens), source);
				assert.ok(tokens.every((t) => t.text.length > 0));
			},
		),
		{ numRuns: 2000 },
	);
	fc.assert(
		fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (source) => join(tokenize(source, 'python')) === source && join(tokenize(source, 'deno')) === source),
		{ numRuns: 500 },
	);
});

props('a 1 MB source tokenizes in well under 100 ms, and so do pathological ones', () => {
	const line = '    value = compute(12, "text", \'more\')  # a comment with def and 3.14\n';
	const big = line.repeat(Math.ceil(1_000_000 / line.length));
	const deno = '  const value = compute(12, `text`, "more"); // a comment with 3.14\n'.repeat(15_000);
	// Real code within 100 ms; degenerate inputs made of a quarter of a million tiny tokens get more, but stay linear (no hang).
	for (const [source, language, limit] of [
		[big, 'python', 100],
		[deno, 'deno', 100],
		["'".repeat(1_000_000), 'python', 300],
		['"""'.repeat(300_000), 'python', 300],
		['/*'.repeat(500_000), 'deno', 300],
		['`\\'.repeat(500_000), 'deno', 300],
		['x'.repeat(1_000_000), 'deno', 100],
	] as const) {
		tokenize(source, language);
		// CPU time, the best of three: the bound is the algorithm's, not the load of a shared test machine.
		let best = Number.POSITIVE_INFINITY;
		for (let n = 0; n < 3; n++) {
			const start = process.cpuUsage();
			tokenize(source, language);
			const used = process.cpuUsage(start);
			best = Math.min(best, (used.user + used.system) / 1000);
		}
		assert.ok(best < limit, `${language} ${JSON.stringify(source.slice(0, 12))}…: ${best.toFixed(1)} ms`);
	}
});

/** Each line as the colour of each of its characters: independent of how plain runs happen to be cut. */
function paint(lines: Token[][]): string[] {
	return lines.map((line) => `${line.map((t) => t.type[0]?.repeat(t.text.length)).join('')}|${line.map((t) => t.text).join('')}`);
}

const lines = suite('highlight: lines, as the editor draws them');

lines('a whole source: one entry per line, multi-line tokens cut at each newline and marked as continued', () => {
	const result = highlightLines('a = """x\ny"""\nb = 1\n', 'python', 100);
	assert.equal(paint(result.lines), ['ppppssss|a = """x', 'ssss|y"""', 'ppppn|b = 1', '|']);
	assert.equal(result.continued, [false, true, false, false]);
	assert.ok(result.complete);
	const firstTwo = highlightLines('a\nb\nc\nd', 'deno', 2);
	assert.equal(paint(firstTwo.lines), ['p|a', 'p|b']);
	assert.not.ok(firstTwo.complete);
});

lines('after any edit, reusing the previous lines gives exactly what highlighting from scratch gives (property)', () => {
	const piece = fc.constantFrom('a', ' ', '\n', '#', '"', "'", '"""', '`', '/*', '*/', '//', '\\', 'def ', 'let ', '1', 'x.');
	const text = fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(''));
	fc.assert(
		fc.property(text, text, fc.nat(200), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.constantFrom<'python' | 'deno'>('python', 'deno'), (base, insert, at, upTo1, upTo2, language) => {
			const cut = at % (base.length + 1);
			const edited = base.slice(0, cut) + insert + base.slice(cut + (at % 3));
			const before: HighlightedLines = highlightLines(base, language, upTo1);
			const reused = highlightLines(edited, language, upTo2, before);
			const fresh = highlightLines(edited, language, upTo2);
			const n = Math.min(reused.lines.length, fresh.lines.length);
			assert.ok(n >= Math.min(upTo2, edited.split('\n').length), 'at least the lines asked for');
			assert.equal(paint(reused.lines.slice(0, n)), paint(fresh.lines.slice(0, n)));
			assert.equal(reused.continued.slice(0, n), fresh.continued.slice(0, n));
			// And both agree with the tokens of the whole source.
			const whole = highlightLines(edited, language, Number.MAX_SAFE_INTEGER);
			assert.equal(paint(fresh.lines), paint(whole.lines.slice(0, fresh.lines.length)));
		}),
		{ numRuns: 3000 },
	);
});

python.run();
deno.run();
props.run();
lines.run();
