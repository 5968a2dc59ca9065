import { mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { SourceTooLarge, type Store, UnsafeFile, createStore } from '../../src/store.js';

// The store's refusals are classes of their own, so callers catch them and nothing else. No Docker.

const errors = suite('store errors');
let dataDir = '';
let store: Store;
errors.before.each(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'lcf-store-'));
	store = createStore(loadConfig({ LOWCODE_FAAS_DATA: dataDir }));
	await store.init();
});
errors.after.each(async () => {
	await rm(dataDir, { recursive: true, force: true });
});

async function thrown(promise: Promise<unknown>): Promise<unknown> {
	return promise.then(
		() => assert.unreachable('expected a rejection'),
		(err: unknown) => err,
	);
}

errors('a link in functions/ is an UnsafeFile (409), and is listed with why', async () => {
	await writeFile(join(dataDir, 'target.py'), 'print(1)');
	await symlink(join(dataDir, 'target.py'), join(dataDir, 'functions', 'linked.py'));
	const err = await thrown(store.locate('linked'));
	assert.instance(err, UnsafeFile);
	assert.is((err as UnsafeFile).status, 409);
	assert.is((err as UnsafeFile).code, 'unsafe_function_file');
	const { functions } = await store.list(null, 10);
	assert.equal(functions, [{ name: 'linked', language: 'python', error: { code: 'unsafe_function_file', message: (err as UnsafeFile).message } }]);
});

errors('a source over the size read is a SourceTooLarge (413) on load and on a settings change', async () => {
	const path = join(dataDir, 'functions', 'big.py');
	await writeFile(path, '');
	await truncate(path, 1024 * 1024 + 1);
	const ref = await store.locate('big');
	assert.ok(ref);
	const err = await thrown(store.load(ref));
	assert.instance(err, SourceTooLarge);
	assert.is((err as SourceTooLarge).status, 413);
	assert.instance(await thrown(store.updateSettings('big', { timeout_ms: 1000 })), SourceTooLarge);
});

errors.run();
