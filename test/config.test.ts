import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, ContainerHttpPort, DenoImage, PythonImage, ServerReadyWait, loadConfig } from '../src/config.js';

const config = suite('config');

config('defaults: 127.0.0.1:8080, ./data, the seed constants', () => {
	const c = loadConfig({});
	assert.is(c.host, '127.0.0.1');
	assert.is(c.port, 8080);
	assert.ok(c.dataDir.endsWith('/data'));
	assert.is(c.containerPort, ContainerHttpPort);
	assert.is(c.readyWaitMs, ServerReadyWait * 1000);
	assert.equal(c.images, { python: PythonImage, deno: DenoImage });
	assert.ok(Object.isFrozen(c));
});

config('each setting is read from the environment', () => {
	const c = loadConfig({ LOWCODE_FAAS_PORT: '9000', LOWCODE_FAAS_HOST: '0.0.0.0', LOWCODE_FAAS_INSECURE: '1', LOWCODE_FAAS_DATA: '/srv/faas', LOWCODE_FAAS_PYTHON_IMAGE: 'python:3.12-slim', LOWCODE_FAAS_DENO_IMAGE: 'denoland/deno:2.1.4', LOWCODE_FAAS_READY_WAIT_S: '3' });
	assert.equal([c.port, c.host, c.dataDir, c.images.python, c.images.deno, c.readyWaitMs], [9000, '0.0.0.0', '/srv/faas', 'python:3.12-slim', 'denoland/deno:2.1.4', 3000]);
});

config('an unknown log level stops the start', () => {
	assert.throws(() => loadConfig({ LOWCODE_FAAS_LOG_LEVEL: 'verbose' }), (err: Error) => err instanceof ConfigError && /LOWCODE_FAAS_LOG_LEVEL/.test(err.message));
	for (const level of ['debug', 'info', 'warn', 'error', 'silent', '']) loadConfig({ LOWCODE_FAAS_LOG_LEVEL: level });
});

config('the instance id follows the data folder', () => {
	assert.is(loadConfig({ LOWCODE_FAAS_DATA: '/a' }).instance, loadConfig({ LOWCODE_FAAS_DATA: '/a/' }).instance);
	assert.is.not(loadConfig({ LOWCODE_FAAS_DATA: '/a' }).instance, loadConfig({ LOWCODE_FAAS_DATA: '/b' }).instance);
});

config('bad values stop with a one-line message naming the variable', () => {
	for (const [key, value] of [['LOWCODE_FAAS_PORT', '80a'], ['LOWCODE_FAAS_PORT', '70000'], ['LOWCODE_FAAS_READY_WAIT_S', '0'], ['LOWCODE_FAAS_READY_WAIT_S', '-1'], ['LOWCODE_FAAS_PYTHON_IMAGE', ' '], ['LOWCODE_FAAS_HOST', 'a b']]) {
		try {
			loadConfig({ [key!]: value });
			assert.unreachable(`${key}=${value} should be refused`);
		} catch (err) {
			assert.instance(err, ConfigError);
			assert.ok((err as Error).message.includes(key!), (err as Error).message);
			assert.not.ok((err as Error).message.includes('\n'));
		}
	}
});

config.run();
