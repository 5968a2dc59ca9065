/** Stand-in for diff.ts (branch `editor`): a line diff by longest common subsequence. */
export interface DiffLine {
	op: 'same' | 'add' | 'del';
	text: string;
}

export function diffLines(before: string, after: string): DiffLine[] {
	const a = before.split('\n');
	const b = after.split('\n');
	const table: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
	for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) table[i]![j] = a[i] === b[j] ? table[i + 1]![j + 1]! + 1 : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
	const out: DiffLine[] = [];
	let i = 0;
	let j = 0;
	while (i < a.length && j < b.length) {
		if (a[i] === b[j]) {
			out.push({ op: 'same', text: a[i]! });
			i++;
			j++;
		} else if (table[i + 1]![j]! >= table[i]![j + 1]!) out.push({ op: 'del', text: a[i++]! });
		else out.push({ op: 'add', text: b[j++]! });
	}
	while (i < a.length) out.push({ op: 'del', text: a[i++]! });
	while (j < b.length) out.push({ op: 'add', text: b[j++]! });
	return out;
}
