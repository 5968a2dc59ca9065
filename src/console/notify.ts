import { ApiError } from './api.js';
import { replace } from './dom.js';

/**
 * The page's two live regions: #status (polite: "Saved.") and #alert (role="alert": every API error,
 * with its message and code). Both live in index.html from the start, so screen readers follow them.
 */
export function announce(text: string): void {
	const status = document.getElementById('status');
	if (status) replace(status, text);
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
