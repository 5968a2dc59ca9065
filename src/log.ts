const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 } as const;
export type Level = Exclude<keyof typeof LEVELS, 'silent'>;

function threshold(): number {
	const wanted = process.env.LOWCODE_FAAS_LOG_LEVEL as keyof typeof LEVELS | undefined;
	return LEVELS[wanted ?? 'info'] ?? LEVELS.info;
}

let minimum: number | undefined;

/** One JSON line per event on stdout, where journald keeps it. */
export function log(level: Level, msg: string, fields: Record<string, unknown> = {}) {
	if (LEVELS[level] < (minimum ??= threshold())) return;
	process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
}
