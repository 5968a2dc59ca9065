import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createKeyedLock, createKeyedOnce } from '../../src/locks.js';

test('a keyed lock runs the tasks of one key one after another, also past a failure; other keys do not wait', async () => {
	const withLock = createKeyedLock();
	const order: string[] = [];
	let release = () => {};
	const first = withLock('a', () => new Promise<void>((done) => (release = done)).then(() => void order.push('a1')));
	const failing = withLock('a', async () => {
		order.push('a2');
		throw new Error('no');
	});
	const third = withLock('a', async () => void order.push('a3'));
	await withLock('b', async () => void order.push('b1'));
	assert.equal(order, ['b1'], 'key b ran while a waited');
	release();
	await first;
	assert.is(await failing.catch((err: Error) => err.message), 'no');
	await third;
	assert.equal(order, ['b1', 'a1', 'a2', 'a3']);
});

test('a keyed once makes each key once, hands later callers the same promise, and forgets a failure', async () => {
	const once = createKeyedOnce();
	let made = 0;
	const make = async () => void made++;
	await Promise.all([once('net', make), once('net', make)]);
	assert.is(made, 1);
	let tries = 0;
	const failed = once('entry', async () => {
		tries++;
		throw new Error('later');
	});
	assert.is(await failed.catch((err: Error) => err.message), 'later');
	await once('entry', async () => void tries++);
	assert.is(tries, 2, 'tried again after the failure');
	once.clear();
	await once('net', make);
	assert.is(made, 2, 'clear forgets what was made');
});

test.run();
