import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiError } from '../../src/errors.js';
import { boundSettings } from '../../src/settings.js';
import { checkCreate, checkInvoke, deeperThan, isValidName } from '../../src/validate.js';

function rejects(fn: () => unknown, status: number, code: string) {
	try {
		fn();
	} catch (err) {
		assert.instance(err, ApiError);
		assert.is((err as ApiError).status, status, `status for ${code}`);
		assert.is((err as ApiError).code, code);
		return;
	}
	assert.unreachable(`expected ${status} ${code}`);
}

const names = suite('validate.names');

names('accepts letters, digits, _ and - starting with a letter or digit', () => {
	for (const ok of ['a', 'greet', 'A1', '9lives', 'my_fn-2', 'x'.repeat(64)]) assert.ok(isValidName(ok), ok);
});

names('rejects traversal, separators, NUL, non-ASCII, empty and too long', () => {
	for (const bad of ['', '../x', 'a/b', 'a\\b', '.hidden', '-x', '_x', 'a\0b', 'grée', 'ａ', 'x'.repeat(65), 'a b', 'a.py']) {
		assert.not.ok(isValidName(bad), JSON.stringify(bad));
	}
});

names.run();

const create = suite('validate.checkCreate');
const good = { name: 'f', language: 'python', source_code: 'print(1)' };
const LIMITS = { maxSourceBytes: 100, maxMemoryMb: 2048, maxCpus: 2, maxReplicas: 4, maxContainers: 32 };

create('accepts a well-formed function', () => {
	assert.equal(checkCreate(good, LIMITS), { ...good, settings: {} });
});

create('rejects each bad field with its own code', () => {
	rejects(() => checkCreate({ ...good, name: 7 }, LIMITS), 400, 'invalid_name');
	rejects(() => checkCreate({ ...good, name: '../x' }, LIMITS), 400, 'invalid_name');
	rejects(() => checkCreate({ ...good, language: 'ruby' }, LIMITS), 400, 'invalid_language');
	rejects(() => checkCreate({ ...good, language: undefined }, LIMITS), 400, 'invalid_language');
	rejects(() => checkCreate({ ...good, source_code: '' }, LIMITS), 400, 'invalid_source_code');
	rejects(() => checkCreate({ ...good, source_code: ['x'] }, LIMITS), 400, 'invalid_source_code');
	rejects(() => checkCreate({ ...good, extra: 1 }, LIMITS), 400, 'unknown_field');
});

create('a source over the limit is 413', () => {
	rejects(() => checkCreate({ ...good, source_code: 'é'.repeat(51) }, LIMITS), 413, 'source_too_large');
});

create.run();

const invoke = suite('validate.checkInvoke');

invoke("defaults input to {} and leaves the timeout to the function's default", () => {
	assert.equal(checkInvoke({}), { input: {}, timeoutMs: undefined });
	assert.equal(checkInvoke({ input: null, timeout_ms: 1 }), { input: null, timeoutMs: 1 });
	assert.equal(checkInvoke({ input: [1, 'a'], timeout_ms: 300000 }), { input: [1, 'a'], timeoutMs: 300000 });
});

invoke('timeout_ms must be an integer from 1 to 300000', () => {
	for (const bad of [0, -1, 300001, 1.5, '100', null, true, {}]) rejects(() => checkInvoke({ timeout_ms: bad }), 400, 'invalid_timeout_ms');
});

invoke('input may nest 64 levels of arrays and objects, no more; checked without recursion', () => {
	const nest = (depth: number, leaf: unknown = 1): unknown => {
		let value = leaf;
		for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { k: value };
		return value;
	};
	assert.equal(checkInvoke({ input: nest(64) }).input, nest(64));
	rejects(() => checkInvoke({ input: nest(65) }), 400, 'invalid_input');
	rejects(() => checkInvoke({ input: nest(1_000_000) }), 400, 'invalid_input');
	assert.is(deeperThan('x', 0), false);
	assert.is(deeperThan([[], { a: 1 }], 2), false);
	assert.is(deeperThan([[], { a: [] }], 2), true);
});

invoke.run();

const bounds = suite('validate.boundSettings');
const CAPS = { maxMemoryMb: 96, maxCpus: 0.5, maxReplicas: 4, maxContainers: 3 };

bounds('settings on disk within the caps are kept as they are', () => {
	const stored = { env: { A: '1' }, timeout_ms: 100, memory_mb: 96, cpus: 0.25, max_replicas: 2, min_warm: 1 };
	assert.equal(boundSettings(stored, CAPS), { settings: stored, changed: [] });
});

bounds('over a cap, under a floor, or not a number: bounded or dropped, never passed on', () => {
	const { settings, changed } = boundSettings({ memory_mb: 65536, cpus: 64, max_replicas: 1000, min_warm: 500, timeout_ms: 1e12, extra: '--privileged', env: 'A=1' }, CAPS);
	assert.equal(settings, { memory_mb: 96, cpus: 0.5, max_replicas: 4, min_warm: 3, timeout_ms: 300_000 });
	assert.equal(changed.sort(), ['cpus', 'env', 'extra', 'max_replicas', 'memory_mb', 'min_warm', 'timeout_ms']);
	assert.equal(boundSettings({ memory_mb: '--privileged', cpus: -1, max_replicas: 1.5 }, CAPS).settings, { cpus: 0.01, max_replicas: 1 });
	assert.equal(boundSettings([1], CAPS).settings, {});
});

bounds.run();
