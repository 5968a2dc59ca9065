import { ApiError } from './api.js';
import { replace } from './dom.js';

/**
 * The page's two live regions: #status (polite: "Saved.") and #alert (role="alert": every API error,
 * with its message and code). Both live in index.html from the start, so screen readers follow them.
 */
let carried = false;

/** Says `text` in the status region; `carry` keeps it on the next screen ("Deleted NAME." leads to the list). */
export function announce(text: string, carry = false): void {
	const status = document.getElementById('status');
	if (status) replace(status, text);
	carried = carry;
}

/** On a new screen, the last screen's news goes, unless it was meant for this one. */
export function clearStaleStatus(): void {
	const status = document.getElementById('status');
	if (status && !carried) replace(status);
	carried = false;
}

export function showError(err: unknown): void {
	const alert = document.getElementById('alert');
	if (!alert) return;
	const text = err instanceof ApiError ? `${err.message} (${err.status ? `${err.status} ` : ''}${err.code})` : err instanceof Error ? err.message : String(err);
	replace(alert, text);
}

export function clearError(): void {
	const alert = document.getElementById('alert');
	if (!alert) return;
	replace(alert);
}
