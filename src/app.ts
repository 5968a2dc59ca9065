import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFunction, deleteFunction, getFunction, listFunctions } from './api/functions.js';
import { invokeFunction } from './api/invoke.js';
import type { Config } from './config.js';
import { createRouter } from './router.js';
import { createRunner } from './run.js';
import { type Handler, createApiServer } from './server.js';
import { createStore } from './store.js';

export interface App {
	server: Server;
	url: string;
	close(): Promise<void>;
}

/** Wires the store, the runner and the routes together and starts listening. */
export async function startApp(config: Config): Promise<App> {
	const store = createStore(config);
	await store.init();
	const runner = createRunner(config);

	const routes = createRouter<Handler>();
	routes.add('GET', '/functions', listFunctions(store));
	routes.add('POST', '/functions', createFunction(config, store));
	routes.add('GET', '/functions/:name', getFunction(store));
	routes.add('DELETE', '/functions/:name', deleteFunction(store));
	routes.add('POST', '/functions/:name/invoke', invokeFunction(store, runner));
	routes.add('GET', '/healthz', async () => ({ status: 200, body: { status: 'ok' } }));

	const server = createApiServer(routes, { maxBodyBytes: config.maxBodyBytes });
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(config.port, config.host, () => resolve());
	});
	const { port } = server.address() as AddressInfo;
	const host = config.host.includes(':') ? `[${config.host}]` : config.host;

	async function close() {
		await new Promise<void>((resolve) => {
			server.close(() => resolve());
			server.closeIdleConnections();
		});
		await runner.drain();
	}

	return { server, url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`, close };
}
