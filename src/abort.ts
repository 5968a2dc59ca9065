/**
 * Abort signals built from plain controllers and timers. Node 20's AbortSignal.any() holds its sources
 * weakly, so an AbortSignal.timeout() inside it can be collected and never fire: a hung request then
 * hangs for ever. Here every source is held until `dispose`.
 */
export interface Scope {
	signal: AbortSignal;
	/** Detaches from the parents and stops the timer. */
	dispose(): void;
}

export class TimeoutError extends Error {
	override name = 'TimeoutError';
}

/** A signal that fires when any parent fires, or after `ms` (with a TimeoutError) when given. */
export function scope(parents: AbortSignal[], ms?: number): Scope {
	const controller = new AbortController();
	const listeners: [AbortSignal, () => void][] = [];
	let timer: NodeJS.Timeout | undefined;
	const dispose = () => {
		clearTimeout(timer);
		for (const [parent, listener] of listeners) parent.removeEventListener('abort', listener);
		listeners.length = 0;
	};
	for (const parent of parents) {
		if (parent.aborted) {
			controller.abort(parent.reason);
			break;
		}
		const listener = () => {
			controller.abort(parent.reason);
			dispose();
		};
		parent.addEventListener('abort', listener, { once: true });
		listeners.push([parent, listener]);
	}
	if (ms !== undefined && !controller.signal.aborted) {
		timer = setTimeout(() => {
			controller.abort(new TimeoutError(`timed out after ${ms} ms`));
			dispose();
		}, ms);
	}
	if (controller.signal.aborted) dispose();
	return { signal: controller.signal, dispose };
}

/** Resolves with `promise`, or rejects as soon as `signal` fires. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
	if (signal.aborted) return Promise.reject(signal.reason);
	return new Promise((resolve, reject) => {
		const onAbort = () => reject(signal.reason);
		signal.addEventListener('abort', onAbort, { once: true });
		promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
	});
}
