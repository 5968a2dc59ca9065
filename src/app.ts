import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { consoleRoutes } from './api/console.js';
import { createFunction, deleteFunction, functionLogs, getFunction, listFunctions, patchFunction } from './api/functions.js';
import { healthz, metricsHandler, readyz } from './api/health.js';
import { invokeFunction } from './api/invoke.js';
import { rawRoute } from './api/raw.js';
import { getRun, listRuns } from './api/runs.js';
import { getVersion, listVersions, rollbackFunction } from './api/versions.js';
import { createAsyncRuns } from './async-runs.js';
import type { Backend } from './backend.js';
import type { Config } from './config.js';
import { createContainerLogs } from './container-logs.js';
import { type DockerBackend, createDockerBackend } from './docker-backend.js';
import { createHistory } from './history.js';
import { createKeepWarm } from './keep-warm.js';
import { createMetrics } from './metrics.js';
import { createRouter } from './router.js';
import { createRunner } from './runner.js';
import { type Scheduler, createScheduler } from './scheduler.js';
import { type Handler, createApiServer } from './server.js';
import { type StemCells, createStemCells } from './stem-cells.js';
import { createStore } from './store.js';

export interface App {
	server: Server;
	url: string;
	scheduler: Scheduler;
	backend: DockerBackend;
	/** The pre-started runtime containers; null when LOWCODE_FAAS_STEM_CELLS=0. */
	stems: StemCells | null;
	/** Stops accepting, lets in-flight requests finish (up to the shutdown time), removes every instance. */
	close(): Promise<void>;
}

/**
 * Wires the platform together and starts listening: the store (function files), the backend (where
 * instances run), the scheduler and its upkeep, the runner, run history and async runs, and the routes.
 */
export async function startApp(config: Config): Promise<App> {
	const store = createStore(config);
	await store.init();
	const docker = await createDockerBackend(config);
	// Stem cells count against the total cap with the scheduler's instances (asked only once it exists).
	const stems = config.stemCells > 0 ? createStemCells(config, docker, () => scheduler.snapshot().length) : null;
	const backend: Backend = stems ?? docker;
	const logs = createContainerLogs(backend);
	const scheduler = createScheduler(config, backend, { beforeRemove: logs.keep });
	const keepWarm = createKeepWarm(config, scheduler, backend, {
		// A function whose file is unsafe to use is, for keeping warm, no function.
		locate: (name) => store.locate(name).catch(() => null),
		// Asked at every sweep: functions created later, or given min_warm, are kept warm too.
		targets: () => store.keepWarm(),
	});
	await keepWarm.start();
	// After the leftovers of a previous run are gone: those could be stem cells too.
	await stems?.begin();
	const metrics = createMetrics();
	const runner = createRunner(config, scheduler, metrics);
	const history = createHistory(config, config.runsKeep);
	const pending = await history.init();
	const asyncRuns = createAsyncRuns(runner, store, history, config.asyncConcurrency);
	await asyncRuns.resume(pending);

	const routes = createRouter<Handler>();
	routes.add('GET', '/functions', listFunctions(store));
	routes.add('POST', '/functions', createFunction(config, store, scheduler));
	routes.add('GET', '/functions/:name', getFunction(store));
	routes.add('DELETE', '/functions/:name', deleteFunction(store, scheduler, logs, history));
	routes.add('PATCH', '/functions/:name', patchFunction(config, store, scheduler));
	routes.add('POST', '/functions/:name/invoke', invokeFunction(store, scheduler, runner, history, asyncRuns));
	routes.add('GET', '/runs', listRuns(history, store));
	routes.add('GET', '/runs/:run_id', getRun(history));
	routes.add('GET', '/functions/:name/logs', functionLogs(store, scheduler, logs));
	routes.add('GET', '/functions/:name/versions', listVersions(store));
	routes.add('GET', '/functions/:name/versions/:version', getVersion(store));
	routes.add('POST', '/functions/:name/rollback', rollbackFunction(store, scheduler));
	routes.add('*', '/fn/:name/*', rawRoute(store, scheduler, runner));
	routes.add('GET', '/healthz', healthz());
	// The console's page and scripts are public (they hold nothing); what they call asks for the token.
	const page = consoleRoutes();
	routes.add('GET', '/', page.index);
	routes.add('GET', '/console/*', page.asset);
	routes.add('GET', '/readyz', readyz(backend, stems));
	routes.add('GET', '/metrics', metricsHandler(metrics, scheduler, stems));

	const server = createApiServer(routes, {
		maxBodyBytes: config.maxBodyBytes,
		token: config.token,
		openPaths: ['/healthz', '/', '/console/*'],
		headersTimeoutMs: config.headersTimeoutMs,
		requestTimeoutMs: config.requestTimeoutMs,
		door: { bindHost: config.host, allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins },
		maxConnections: config.maxConnections,
	});
	try {
		await new Promise<void>((resolve, reject) => {
			server.once('error', reject);
			server.listen(config.port, config.host, () => resolve());
		});
	} catch (err) {
		keepWarm.stop();
		await Promise.all([scheduler.close(), stems?.close()]);
		throw err;
	}
	const { port } = server.address() as AddressInfo;
	const host = config.host.includes(':') ? `[${config.host}]` : config.host;

	async function close() {
		const closed = new Promise<void>((resolve) => server.close(() => resolve()));
		server.closeIdleConnections();
		await Promise.race([closed, sleep(config.shutdownMs)]);
		server.closeAllConnections();
		await asyncRuns.close(config.shutdownMs);
		await history.drain();
		keepWarm.stop();
		// Together: the stem cells stop refilling at once, not each time an instance's removal frees room.
		await Promise.all([scheduler.close(), stems?.close()]);
	}

	return { server, scheduler, backend: docker, stems, url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`, close };
}
