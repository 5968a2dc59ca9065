/**
 * Syntax highlighting for the console's editor: one linear pass that splits a source into keyword,
 * string, comment, number and plain tokens whose texts concatenate back to the source exactly.
 * Pure (no DOM): the unit tests run it in Node. Not a parser: a regex literal or a `${…}` holding a
 * backtick may colour a little wrongly, and an unterminated string or comment simply runs to the end
 * of its line (or of the source, for the multi-line kinds) — the pass never looks back, so it cannot hang.
 */
export type Token = { type: 'keyword' | 'string' | 'comment' | 'number' | 'plain'; text: string };

export type Language = 'python' | 'deno';

const PYTHON_KEYWORDS = new Set(
	'False None True and as assert async await break case class continue def del elif else except finally for from global if import in is lambda match nonlocal not or pass raise return try while with yield'.split(' '),
);

const DENO_KEYWORDS = new Set(
	'abstract as async await break case catch class const continue debugger declare default delete do else enum export extends false finally for from function get if implements import in instanceof interface keyof let namespace new null of private protected public readonly return satisfies set static super switch this throw true try type typeof undefined var void while with yield'.split(
		' ',
	),
);

// Sticky: each is tried at the current position only, which keeps the pass linear.
const PYTHON_NUMBER = /(?:0[xX][\da-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)[jJlL]?/y;
const DENO_NUMBER = /(?:0[xX][\da-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y;
// The letters that may prefix a Python string: r, b, u, f and their pairs (rb, br, fr, rf), any case.
const PYTHON_PREFIX = /^(?:[rRbBuUfF]|[rR][bBfF]|[bBfF][rR])$/;

const BACKSLASH = 92;
const NEWLINE = 10;

/** Where a one-line string opened at `start` (on its quote) ends: after the closing quote, or at the line's end. */
function lineStringEnd(source: string, start: number): number {
	const quote = source.charCodeAt(start);
	const length = source.length;
	let i = start + 1;
	while (i < length) {
		const c = source.charCodeAt(i);
		if (c === BACKSLASH) i += 2;
		else if (c === quote) return i + 1;
		else if (c === NEWLINE) return i;
		else i++;
	}
	return length;
}

/** Where a multi-line string opened at `start` ends: after `close` (one quote, or three alike), or at the end of the source. */
function blockStringEnd(source: string, start: number, close: string): number {
	const quote = close.charCodeAt(0);
	const length = source.length;
	let i = start;
	while (i < length) {
		const c = source.charCodeAt(i);
		if (c === BACKSLASH) i += 2;
		else if (c === quote && (close.length === 1 || source.startsWith(close, i))) return i + close.length;
		else i++;
	}
	return length;
}

function lineEnd(source: string, start: number): number {
	const end = source.indexOf('\n', start);
	return end === -1 ? source.length : end;
}

function isDigit(c: string | undefined): boolean {
	return c !== undefined && c >= '0' && c <= '9';
}

/** Python strings from position `quoteAt` (the quote itself; any prefix lies before it). */
function pythonStringEnd(source: string, quoteAt: number): number {
	const quote = source[quoteAt] as string;
	const triple = quote + quote + quote;
	if (source.startsWith(triple, quoteAt)) return blockStringEnd(source, quoteAt + 3, triple);
	return lineStringEnd(source, quoteAt);
}

// What each ASCII character can start or continue (bit 1: an identifier's first character, bit 2: a later one).
const IDENT_START = 1;
const IDENT_PART = 2;
const CLASSES = new Uint8Array(128);
for (let code = 0; code < 128; code++) {
	const c = String.fromCharCode(code);
	if (/[A-Za-z_$]/.test(c)) CLASSES[code] = IDENT_START | IDENT_PART;
	else if (/[0-9]/.test(c)) CLASSES[code] = IDENT_PART;
}

function isIdentifier(code: number, bit: number): boolean {
	// Beyond ASCII, any letter-like character: close enough for colouring, and no table look-up needed.
	return code < 128 ? ((CLASSES[code] as number) & bit) !== 0 : code >= 0xc0;
}

const LONGEST_KEYWORD = 10;

export function tokenize(source: string, language: Language): Token[] {
	const python = language === 'python';
	const keywords = python ? PYTHON_KEYWORDS : DENO_KEYWORDS;
	const numbers = python ? PYTHON_NUMBER : DENO_NUMBER;
	const length = source.length;
	const tokens: Token[] = [];
	let plainFrom = 0;
	let i = 0;
	while (i < length) {
		const code = source.charCodeAt(i);
		let type: Token['type'] | undefined;
		let end = i + 1;
		if (code === 35 /* # */ && python) {
			type = 'comment';
			end = lineEnd(source, i);
		} else if (code === 47 /* / */ && !python && source.charCodeAt(i + 1) === 47) {
			type = 'comment';
			end = lineEnd(source, i);
		} else if (code === 47 && !python && source.charCodeAt(i + 1) === 42 /* * */) {
			type = 'comment';
			const close = source.indexOf('*/', i + 2);
			end = close === -1 ? length : close + 2;
		} else if (code === 34 /* " */ || code === 39 /* ' */) {
			type = 'string';
			end = python ? pythonStringEnd(source, i) : lineStringEnd(source, i);
		} else if (code === 96 /* ` */ && !python) {
			type = 'string';
			end = blockStringEnd(source, i + 1, '`');
		} else if ((code >= 48 && code <= 57) || (code === 46 && isDigit(source[i + 1]))) {
			type = 'number';
			numbers.lastIndex = i;
			numbers.test(source);
			end = Math.max(numbers.lastIndex, i + 1);
		} else if (isIdentifier(code, IDENT_START)) {
			while (end < length && isIdentifier(source.charCodeAt(end), IDENT_PART)) end++;
			const after = source.charCodeAt(end);
			if (python && (after === 34 || after === 39) && end - i <= 2 && PYTHON_PREFIX.test(source.slice(i, end))) {
				type = 'string';
				end = pythonStringEnd(source, end);
			} else if (end - i <= LONGEST_KEYWORD && source.charCodeAt(i - 1) !== 46 /* . */ && keywords.has(source.slice(i, end))) {
				// A keyword used as a property name (`x.default`, `obj.type`) is not one.
				type = 'keyword';
			}
		}
		if (type) {
			if (plainFrom < i) tokens.push({ type: 'plain', text: source.slice(plainFrom, i) });
			tokens.push({ type, text: source.slice(i, end) });
			plainFrom = end;
		}
		i = end;
	}
	if (plainFrom < length) tokens.push({ type: 'plain', text: source.slice(plainFrom) });
	return tokens;
}

/**
 * The tokens of a source cut into lines, as the editor draws them: only the lines up to `upTo` (the
 * last one in view), and reusing a previous result for the lines an edit did not touch.
 */
export interface HighlightedLines {
	text: string;
	language: Language;
	lines: Token[][];
	/** Whether each line begins inside a token (a multi-line string or comment) that began above it. */
	continued: boolean[];
	/** Whether `lines` covers the whole text, rather than stopping at a line that was asked for. */
	complete: boolean;
}

/** Appends the tokens to `into`, cut at each newline (a token spanning lines becomes a piece per line). */
function splitIntoLines(tokens: Token[], into: HighlightedLines): void {
	let current: Token[] = [];
	into.lines.push(current);
	into.continued.push(false);
	for (const token of tokens) {
		let from = 0;
		for (let nl = token.text.indexOf('\n'); nl !== -1; nl = token.text.indexOf('\n', from)) {
			if (nl > from) current.push({ type: token.type, text: token.text.slice(from, nl) });
			current = [];
			into.lines.push(current);
			// A newline inside a plain run is a fresh start; inside a string or comment, it is not.
			into.continued.push(token.type !== 'plain');
			from = nl + 1;
		}
		if (from < token.text.length) current.push(from ? { type: token.type, text: token.text.slice(from) } : token);
	}
}

/** Where line `n` (0-based) starts in `text`, or -1 when the text has fewer lines. */
function lineOffset(text: string, n: number): number {
	let at = 0;
	for (let line = 0; line < n; line++) {
		at = text.indexOf('\n', at) + 1;
		if (at === 0) return -1;
	}
	return at;
}

/**
 * Lines 0..upTo-1 of `text` highlighted (all of them when it has fewer). A token depends only on the
 * text before it, so the lines above an edit are kept from `previous` back to the nearest line that
 * does not begin inside a token, and the work is that of the edited lines down to `upTo`, not of the file.
 */
export function highlightLines(text: string, language: Language, upTo: number, previous?: HighlightedLines): HighlightedLines {
	let keep = 0;
	if (previous && previous.language === language && previous.lines.length > 0) {
		if (previous.text === text && (previous.complete || previous.lines.length >= upTo)) return previous;
		const old = previous.text;
		const same = Math.min(old.length, text.length);
		let prefix = 0;
		while (prefix < same && old.charCodeAt(prefix) === text.charCodeAt(prefix)) prefix++;
		// The lines that end (newline included) before the first difference are unchanged, and so are their tokens...
		let unchanged = 0;
		for (let at = text.indexOf('\n'); at !== -1 && at < prefix; at = text.indexOf('\n', at + 1)) unchanged++;
		// ...except that tokenizing must restart at a line that begins outside any token, and one whose start is known.
		keep = Math.min(unchanged, previous.lines.length - 1);
		while (keep > 0 && previous.continued[keep]) keep--;
	}
	const result: HighlightedLines = {
		text,
		language,
		lines: previous && keep > 0 ? previous.lines.slice(0, keep) : [],
		continued: previous && keep > 0 ? previous.continued.slice(0, keep) : [],
		complete: false,
	};
	const start = lineOffset(text, keep);
	const end = lineOffset(text, Math.max(upTo, keep + 1));
	result.complete = end === -1;
	// Up to the end of line upTo-1, its newline left out (it would open an empty line past the ones asked for).
	splitIntoLines(tokenize(text.slice(start, end === -1 ? text.length : end - 1), language), result);
	return result;
}
