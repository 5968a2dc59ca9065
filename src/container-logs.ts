import type { Backend } from './backend.js';

// What is kept of removed containers' output: the last lines of the last few containers per function.
const KEPT_LOG_LINES = 500;
const KEPT_CONTAINERS = 5;

export type ContainerLogs = ReturnType<typeof createContainerLogs>;

/**
 * What functions' instances printed (their stdout and stderr; not RunResult.output, the answer's body),
 * for GET /functions/{name}/logs: read live from the backend, and kept (bounded) from instances about
 * to be removed, whose own logs go with them.
 */
export function createContainerLogs(backend: Pick<Backend, 'logs'>) {
	const removed = new Map<string, { container: string; text: string }[]>();
	/** Bumped when a function is deleted: a read begun before must not bring its output back under a namesake. */
	const generations = new Map<string, number>();

	/** Keeps the last lines of a container about to be removed. */
	async function keep(fn: string, container: string) {
		const generation = generations.get(fn) ?? 0;
		const text = await backend.logs(container, KEPT_LOG_LINES);
		if (!text || (generations.get(fn) ?? 0) !== generation) return;
		removed.set(fn, [...(removed.get(fn) ?? []), { container, text }].slice(-KEPT_CONTAINERS));
	}

	/** One block per container headed `==> NAME <==`: the removed ones first, then `live`, `tail` lines each. */
	async function render(fn: string, live: string[], tail: number): Promise<string> {
		const blocks = (removed.get(fn) ?? []).map((kept) => ({ header: `${kept.container} (removed)`, text: kept.text }));
		for (const container of live) blocks.push({ header: container, text: await backend.logs(container, tail) });
		return blocks
			.map(({ header, text }) => {
				const lines = text.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1);
				return `==> ${header} <==\n${lines.slice(-tail).join('\n')}\n`;
			})
			.join('\n');
	}

	/** A deleted function's kept output goes with it. */
	function forget(fn: string) {
		removed.delete(fn);
		generations.set(fn, (generations.get(fn) ?? 0) + 1);
	}

	return { keep, render, forget };
}
