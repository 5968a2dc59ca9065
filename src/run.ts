import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { Config, Language } from './config.js';
import { DockerError, inspectState, removeContainer, runContainer, tailLogs, waitExit } from './docker.js';
import { OutputTooLarge, ReadyTimeout, forward, waitReady } from './forward.js';
import { log } from './log.js';
import { type RunContext, type RunResult, answeredResult, unansweredResult } from './result.js';
import type { SourceRef } from './store.js';

export const LABEL = 'lowcode-faas';
const LOG_LINES = 10;

/** The command that runs a function's source, mounted at `path`, inside its image. */
export function commandFor(language: Language, path: string): string[] {
	if (language === 'python') return ['python3', '-u', path];
	// A server needs the network and its PORT; nothing else (no files, no subprocesses, no FFI).
	return ['deno', 'run', '--no-prompt', '--allow-net', '--allow-env', path];
}

/** A free TCP port on 127.0.0.1 to publish the container on. */
function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.unref();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

class Exited extends Error {
	override name = 'Exited';
}

export type Runner = ReturnType<typeof createRunner>;

/**
 * Runs one invocation in a container of its own: start, wait until the server answers, forward the
 * input, build the RunResult, remove the container whatever happened.
 */
export function createRunner(config: Config) {
	const removals = new Set<Promise<void>>();

	function startContainer(ref: SourceRef, name: string, hostPort: number, signal: AbortSignal) {
		const target = `/app/${ref.file}`;
		return runContainer(
			{
				name,
				image: config.images[ref.language],
				labels: { [LABEL]: 'function', [`${LABEL}.instance`]: config.instance, [`${LABEL}.function`]: ref.name },
				env: { PORT: String(config.containerPort) },
				publish: { host: '127.0.0.1', hostPort, containerPort: config.containerPort },
				mounts: [{ source: ref.path, target, readonly: true }],
				command: commandFor(ref.language, target),
			},
			{ signal },
		);
	}

	/** Starts the container on a free port; a port taken between choosing and binding is retried. */
	async function start(ref: SourceRef, signal: AbortSignal): Promise<{ name: string; port: number }> {
		for (let attempt = 1; ; attempt++) {
			const name = `lcf-${config.instance}-${randomBytes(6).toString('hex')}`;
			const port = await freePort();
			try {
				schedule(name, signal); // removal once this invocation ends, even if `docker run` is cut short
				await startContainer(ref, name, port, signal);
				return { name, port };
			} catch (err) {
				if (!(err instanceof DockerError && err.kind === 'port_taken' && attempt < 3)) throw err;
			}
		}
	}

	/** Removes the container when `done` fires, tracked so shutdown can wait for it. */
	function schedule(name: string, done: AbortSignal) {
		done.addEventListener(
			'abort',
			() => {
				const removal = removeContainer(name).catch(() => {});
				removals.add(removal);
				void removal.finally(() => removals.delete(removal));
			},
			{ once: true },
		);
	}

	async function explainExit(name: string): Promise<string> {
		const [state, logs] = await Promise.all([inspectState(name).catch(() => null), tailLogs(name, LOG_LINES)]);
		const how = state?.oomKilled ? 'was killed for running out of memory' : `exited with code ${state?.exitCode ?? 'unknown'}`;
		const tail = logs.trim() ? `; last output: ${logs.trim().split('\n').slice(-LOG_LINES).join(' | ')}` : '';
		return `The function ${how} before answering${tail}`;
	}

	async function run(ref: SourceRef, functionId: string, input: unknown, timeoutMs: number, caller: AbortSignal): Promise<RunResult> {
		const ctx: RunContext = { runId: randomUUID(), functionId, startedAt: performance.now() };
		const deadline = Date.now() + timeoutMs;
		// `finished` fires once this invocation is over, for any reason: it stops the watchers and removes the container.
		const finished = new AbortController();
		const timedOut = AbortSignal.timeout(timeoutMs);
		const live = AbortSignal.any([timedOut, caller, finished.signal]);
		const exited = new AbortController();
		const active = AbortSignal.any([live, exited.signal]);
		let name = '';
		try {
			const started = await start(ref, live);
			name = started.name;
			void waitExit(name, live).then(
				() => exited.abort(new Exited()),
				() => {},
			);
			const url = `http://127.0.0.1:${started.port}/`;
			await waitReady(url, Math.min(deadline, Date.now() + config.readyWaitMs), active);
			return answeredResult(ctx, await forward(url, input, config.maxBodyBytes, active));
		} catch (err) {
			if (timedOut.aborted) return unansweredResult(ctx, 'timeout', `The function did not answer within ${timeoutMs} ms.`);
			if (caller.aborted) return unansweredResult(ctx, 'failed', 'The caller went away before the function answered.');
			if (exited.signal.aborted) return unansweredResult(ctx, 'failed', await explainExit(name));
			if (err instanceof ReadyTimeout) {
				return unansweredResult(ctx, 'failed', `The function's server did not answer on port ${config.containerPort} within ${config.readyWaitMs / 1000} s.`);
			}
			if (err instanceof OutputTooLarge) return unansweredResult(ctx, 'failed', `The function's response body is larger than the ${config.maxBodyBytes}-byte limit.`);
			if (err instanceof DockerError) return unansweredResult(ctx, 'failed', describeDockerError(err, config.images[ref.language]));
			// The request itself failed (connection reset mid-answer): most often the process died under it.
			const state = name ? await inspectState(name).catch(() => null) : null;
			if (state && !state.running) return unansweredResult(ctx, 'failed', await explainExit(name));
			log('warn', 'invocation failed', { function: ref.name, error: String(err) });
			return unansweredResult(ctx, 'failed', `The request to the function failed: ${(err as Error).message}.`);
		} finally {
			finished.abort();
		}
	}

	/** Waits for every scheduled removal: used at shutdown and by tests. */
	async function drain() {
		while (removals.size > 0) await Promise.all([...removals]);
	}

	return { run, drain };
}

function describeDockerError(err: DockerError, image: string): string {
	switch (err.kind) {
		case 'unreachable':
			return `Docker is unreachable (${err.message}); start it with: npm run setup (or systemctl start docker).`;
		case 'no_image':
			return `The runtime image ${image} is missing; build it with: npm run setup.`;
		default:
			return `The container could not be started: ${err.message}.`;
	}
}
