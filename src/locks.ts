/**
 * Per-key serialisation: `withLock(key, task)` runs `task` after every earlier task on the same key has
 * settled (fulfilled or not), so that writes of one function never interleave. Keys with nothing
 * pending take no memory.
 */
export function createKeyedLock() {
	const locks = new Map<string, Promise<unknown>>();
	return function withLock<T>(key: string, task: () => Promise<T>): Promise<T> {
		const previous = locks.get(key) ?? Promise.resolve();
		const run = previous.then(task, task);
		const settled = run.catch(() => {});
		locks.set(key, settled);
		void settled.then(() => locks.get(key) === settled && locks.delete(key));
		return run;
	};
}
