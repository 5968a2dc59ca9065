/**
 * A line diff for the console's version history (a version against the current source). Pure (no
 * DOM): unit-tested in Node. Myers' O((N+M)·D) algorithm on the lines left once the common head and
 * tail are set aside, with its work bounded: past MAX_WORK steps or MAX_EDITS edits (a huge source rewritten wholesale)
 * it gives up on finding the shortest script and answers a coarse but still correct diff — every
 * remaining old line deleted, then every new line added — instead of freezing the page.
 */
export type DiffLine = { op: 'same' | 'add' | 'del'; text: string };

// About 20 million cells of the edit graph: a fraction of a second in a browser, whatever the input.
const MAX_WORK = 20_000_000;
// The walk back keeps every round's frontier, about D² numbers: 2,000 rounds is 16 MB at most.
const MAX_EDITS = 2_000;

function splitLines(text: string): string[] {
	return text === '' ? [] : text.split('\n');
}

/**
 * Myers' forward search, keeping the frontier of each round (it grows by 2 per round, so D rounds
 * keep O(D²) numbers), then the edit script walked back from the end. Returns undefined past `maxD`.
 */
function myers(a: readonly number[], b: readonly number[], maxD: number): DiffLine['op'][] | undefined {
	const n = a.length;
	const m = b.length;
	const offset = maxD + 1;
	const v = new Int32Array(2 * offset + 1);
	const trace: Int32Array[] = [];
	let found = -1;
	for (let d = 0; d <= maxD && found < 0; d++) {
		// The frontier before this round, diagonals -d..d (the walk back reads it).
		trace.push(v.slice(offset - d, offset + d + 1));
		for (let k = -d; k <= d; k += 2) {
			const down = k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number));
			let x = down ? (v[offset + k + 1] as number) : (v[offset + k - 1] as number) + 1;
			let y = x - k;
			while (x < n && y < m && a[x] === b[y]) {
				x++;
				y++;
			}
			v[offset + k] = x;
			if (x >= n && y >= m) {
				found = d;
				break;
			}
		}
	}
	if (found < 0) return undefined;
	const ops: DiffLine['op'][] = [];
	let x = n;
	let y = m;
	for (let d = found; d > 0; d--) {
		const before = trace[d] as Int32Array;
		// `before` holds diagonals -d..d of round d's start, i.e. the results of round d-1 (diagonals -(d-1)..d-1).
		const at = (k: number) => before[k + d] as number;
		const k = x - y;
		const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
		const prevK = down ? k + 1 : k - 1;
		const prevX = at(prevK);
		const prevY = prevX - prevK;
		while (x > prevX && y > prevY) {
			ops.push('same');
			x--;
			y--;
		}
		ops.push(down ? 'add' : 'del');
		x = prevX;
		y = prevY;
	}
	while (x > 0 && y > 0) {
		ops.push('same');
		x--;
		y--;
	}
	return ops.reverse();
}

export function diffLines(before: string, after: string): DiffLine[] {
	const a = splitLines(before);
	const b = splitLines(after);
	let head = 0;
	while (head < a.length && head < b.length && a[head] === b[head]) head++;
	let tail = 0;
	while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
	const oldMiddle = a.slice(head, a.length - tail);
	const newMiddle = b.slice(head, b.length - tail);
	// Lines compared as small integers: one string comparison per distinct line, not per cell.
	const ids = new Map<string, number>();
	const id = (line: string) => {
		let value = ids.get(line);
		if (value === undefined) ids.set(line, (value = ids.size));
		return value;
	};
	const oldIds = oldMiddle.map(id);
	const newIds = newMiddle.map(id);
	const size = oldIds.length + newIds.length;
	const maxD = Math.min(size, MAX_EDITS, Math.floor(MAX_WORK / Math.max(1, size)));
	const ops = myers(oldIds, newIds, maxD) ?? [...oldIds.map((): DiffLine['op'] => 'del'), ...newIds.map((): DiffLine['op'] => 'add')];
	const result: DiffLine[] = a.slice(0, head).map((text) => ({ op: 'same', text }));
	let i = 0;
	let j = 0;
	for (const op of ops) {
		if (op === 'same') {
			result.push({ op, text: oldMiddle[i++] as string });
			j++;
		} else if (op === 'del') result.push({ op, text: oldMiddle[i++] as string });
		else result.push({ op, text: newMiddle[j++] as string });
	}
	for (const text of a.slice(a.length - tail)) result.push({ op: 'same', text });
	return result;
}
