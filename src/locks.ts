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

/**
 * Per-key once: `once(key, make)` runs `make` the first time a key is asked, and hands every later
 * caller the same promise; a failure is forgotten, so the next caller tries again.
 */
export function createKeyedOnce() {
	const done = new Map<string, Promise<void>>();
	const once = (key: string, make: () => Promise<void>): Promise<void> => {
		let made = done.get(key);
		if (!made) {
			made = make();
			done.set(key, made);
			made.catch(() => done.delete(key));
		}
		return made;
	};
	return Object.assign(once, { clear: () => done.clear() });
}
