const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 } as const;
export type Level = Exclude<keyof typeof LEVELS, 'silent'>;

/** Whether `value` names a log level; config.ts refuses to start on anything else. */
export const isLogLevel = (value: string): boolean => Object.hasOwn(LEVELS, value);

function threshold(): number {
	const wanted = process.env.LOWCODE_FAAS_LOG_LEVEL as keyof typeof LEVELS | undefined;
	return LEVELS[wanted ?? 'info'] ?? LEVELS.info;
}

let minimum: number | undefined;
let pending: string[] = [];

// Lines are written once per turn of the event loop, not one write each: under load a line per
// request as its own write cost a fifth of the throughput (measured).
function flush() {
	if (pending.length === 0) return;
	const text = pending.join('');
	pending = [];
	process.stdout.write(text);
}

process.on('exit', flush);

/** One JSON line per event on stdout, where journald keeps it. */
export function log(level: Level, msg: string, fields: Record<string, unknown> = {}) {
	if (LEVELS[level] < (minimum ??= threshold())) return;
	if (pending.length === 0) setImmediate(flush);
	pending.push(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
}
