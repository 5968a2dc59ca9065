import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFunction, deleteFunction, functionLogs, getFunction, listFunctions, patchFunction } from './api/functions.js';
import { healthz, metricsHandler, readyz } from './api/health.js';
import { invokeFunction } from './api/invoke.js';
import { rawRoute } from './api/raw.js';
import { getRun, listRuns } from './api/runs.js';
import { createAsyncRuns } from './async-runs.js';
import type { Config } from './config.js';
import { createMetrics } from './metrics.js';
import { createPool } from './pool.js';
import { createRouter } from './router.js';
import { createRunner } from './run.js';
import { createHistory } from './history.js';
import { type Handler, createApiServer } from './server.js';
import { createStore } from './store.js';

export interface App {
	server: Server;
	url: string;
	pool: ReturnType<typeof createPool>;
	/** Stops accepting, lets in-flight requests finish (up to the shutdown time), removes every container. */
	close(): Promise<void>;
}

/** Wires the store, the warm pool and the routes together and starts listening. */
export async function startApp(config: Config): Promise<App> {
	const store = createStore(config);
	await store.init();
	const pool = createPool(config);
	await pool.init({
		// A function whose file is unsafe to use is, for keeping warm, no function.
		locate: (name) => store.locate(name).catch(() => null),
		// Evaluated at every sweep: functions created later, or given min_warm, are kept warm too.
		warmTargets: () => store.keepWarm(),
	});
	const metrics = createMetrics();
	const runner = createRunner(config, pool, metrics);
	const runs = createHistory(config, config.runsKeep);
	const pending = await runs.init();
	const background = createAsyncRuns(runner, store, runs, config.asyncConcurrency);
	await background.resume(pending);

	const routes = createRouter<Handler>();
	routes.add('GET', '/functions', listFunctions(store));
	routes.add('POST', '/functions', createFunction(config, store, pool));
	routes.add('GET', '/functions/:name', getFunction(store));
	routes.add('DELETE', '/functions/:name', deleteFunction(store, pool, runs));
	routes.add('PATCH', '/functions/:name', patchFunction(config, store, pool));
	routes.add('POST', '/functions/:name/invoke', invokeFunction(store, pool, runner, runs, background));
	routes.add('GET', '/runs', listRuns(runs, store));
	routes.add('GET', '/runs/:run_id', getRun(runs));
	routes.add('GET', '/functions/:name/logs', functionLogs(store, pool));
	routes.add('*', '/fn/:name/*', rawRoute(store, pool, runner));
	routes.add('GET', '/healthz', healthz());
	routes.add('GET', '/readyz', readyz(config));
	routes.add('GET', '/metrics', metricsHandler(metrics, pool));

	const server = createApiServer(routes, {
		maxBodyBytes: config.maxBodyBytes,
		token: config.token,
		openPaths: ['/healthz'],
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
		await pool.close();
		throw err;
	}
	const { port } = server.address() as AddressInfo;
	const host = config.host.includes(':') ? `[${config.host}]` : config.host;

	async function close() {
		const closed = new Promise<void>((resolve) => server.close(() => resolve()));
		server.closeIdleConnections();
		await Promise.race([closed, sleep(config.shutdownMs)]);
		server.closeAllConnections();
		await background.close(config.shutdownMs);
		await runs.drain();
		await pool.close();
	}

	return { server, pool, url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`, close };
}
