import { startApp } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { engineProblem, imageExists } from './docker.js';
import { log } from './log.js';

/** Says in one line what keeps functions from running, and how to fix it; the API serves regardless. */
async function checkDocker(images: readonly string[]) {
	const problem = await engineProblem();
	if (problem) {
		console.error(`lowcode-faas: Docker is unreachable (${problem}); start it with: npm run setup (or systemctl start docker)`);
		return;
	}
	for (const image of images) {
		if (!(await imageExists(image))) console.error(`lowcode-faas: runtime image ${image} is missing; build it with: npm run setup`);
	}
}

async function main() {
	let config: Config;
	try {
		config = loadConfig();
	} catch (err) {
		if (!(err instanceof ConfigError)) throw err;
		console.error(`lowcode-faas: ${err.message}`);
		process.exit(1);
	}
	await checkDocker(Object.values(config.images));
	const app = await startApp(config).catch((err: NodeJS.ErrnoException) => {
		if (err.syscall === 'listen') console.error(`lowcode-faas: cannot listen on ${config.host}:${config.port}: ${err.code ?? err.message}`);
		else console.error(`lowcode-faas: cannot start: ${err.message}`);
		process.exit(1);
	});
	log('info', 'listening', { url: app.url, data: config.dataDir });

	let stopping = false;
	const stop = (signal: string) => {
		if (stopping) return;
		stopping = true;
		log('info', 'stopping', { signal });
		void app.close().then(() => process.exit(0));
	};
	process.on('SIGTERM', () => stop('SIGTERM'));
	process.on('SIGINT', () => stop('SIGINT'));
}

await main();
