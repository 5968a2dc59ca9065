import { ApiError } from './api.js';
import { replace } from './dom.js';

/**
 * The page's two live regions: #status (polite: "Saved.") and #alert (role="alert": every API error,
 * with its message and code). Both live in index.html from the start, so screen readers follow them.
 */
let announcedAt = 0;

export function announce(text: string): void {
	const status = document.getElementById('status');
	if (status) replace(status, text);
	announcedAt = Date.now();
}

/** On a new screen, the last screen's news goes, unless it was just made ("Deleted NAME." leads to the list). */
export function clearStaleStatus(): void {
	const status = document.getElementById('status');
	if (status && Date.now() - announcedAt > 1500) replace(status);
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
