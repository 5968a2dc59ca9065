import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createContainerLogs } from '../../src/container-logs.js';

/** What instances printed, kept past their removal: no Docker, the backend's logs are a map. */
const logs = suite('container logs (unit)');

logs('output kept from removed instances comes first, then the live ones, each cut to the tail', async () => {
	const printed: Record<string, string> = { old: 'a\nb\nc\n', live: 'x\ny\n' };
	const kept = createContainerLogs({
		logs: async (name, tail) =>
			printed[name]!.split('\n')
				.slice(-tail - 1)
				.join('\n'),
	});
	await kept.keep('fn', 'old');
	assert.is(await kept.render('fn', ['live'], 2), '==> old (removed) <==\nb\nc\n\n==> live <==\nx\ny\n');
});

logs('a function deleted while its last output was being read does not get it back under a namesake', async () => {
	let release: (text: string) => void = () => {};
	const kept = createContainerLogs({ logs: () => new Promise<string>((resolve) => (release = resolve)) });
	const keeping = kept.keep('fn', 'old');
	kept.forget('fn');
	release('secret of the deleted function\n');
	await keeping;
	assert.is(await kept.render('fn', [], 10), '');
});

logs.run();
