import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually } from '../helpers.js';

const wait = suite('helpers: eventually');

wait('returns the first value that holds', async () => {
	let n = 0;
	assert.is(
		await eventually(
			'n to reach 3',
			async () => ++n,
			(v) => v >= 3,
		),
		3,
	);
});

wait('throws on timeout, naming what was awaited and the last value seen', async () => {
	let message = '';
	try {
		await eventually(
			'the answer',
			async () => ({ answer: 41 }),
			(v) => v.answer === 42,
			300,
		);
	} catch (err) {
		message = (err as Error).message;
	}
	assert.match(message, /timed out after 300 ms waiting for the answer/);
	assert.match(message, /last value: \{ answer: 41 \}/);
});

wait.run();
