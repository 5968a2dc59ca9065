import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../../src/config.js';
import { createKeepWarm } from '../../src/keep-warm.js';
import { createScheduler } from '../../src/scheduler.js';
import type { SourceRef } from '../../src/store.js';
import { fakeBackend, limits, manualClock, ref } from './fake-backend.js';

/** The scheduler's upkeep against an in-memory backend: leftovers, strays, keeping warm, idle removal. */
const keepWarm = suite('keep-warm');
const config = { ...limits({ idleMs: 1_000 }) } as unknown as Config;

function setup(targets: Map<string, number> = new Map(), known: Record<string, SourceRef> = {}) {
	const fake = fakeBackend();
	const clock = manualClock();
	const scheduler = createScheduler(config, fake.backend, { now: clock.now });
	const upkeep = createKeepWarm(config, scheduler, fake.backend, { locate: async (name) => known[name] ?? null, targets: async () => targets });
	return { fake, clock, scheduler, upkeep };
}

keepWarm('start removes what a previous run left, then starts the functions kept warm', async () => {
	const { fake, upkeep } = setup(
		new Map([
			['a', 2],
			['gone', 1],
		]),
		{ a: ref('a') },
	);
	fake.existing.add('lcf-unit-a-left0ver');
	await upkeep.start();
	upkeep.stop();
	assert.equal(fake.removed, ['lcf-unit-a-left0ver']);
	assert.equal(
		fake.starts.map((s) => s.spec.function),
		['a', 'a'],
		'two of a; none of a function that has no source',
	);
});

keepWarm('a sweep removes instances the scheduler does not track, and idle ones past the idle time', async () => {
	const { fake, clock, scheduler, upkeep } = setup();
	const lease = await scheduler.lease(ref('b'), new AbortController().signal);
	fake.starts[0]!.answer();
	await lease.instance.ready;
	scheduler.release(lease.instance);
	fake.existing.add('lcf-unit-stray');
	await upkeep.sweep();
	await scheduler.drain();
	assert.equal(fake.removed, ['lcf-unit-stray'], 'the stray goes, the tracked instance stays');
	clock.advance(1_000);
	await upkeep.sweep();
	await scheduler.drain();
	assert.equal(fake.removed, ['lcf-unit-stray', lease.instance.name], 'idle past the idle time: removed');
});

keepWarm('a function kept warm is started again after its instance died', async () => {
	const { fake, scheduler, upkeep } = setup(new Map([['a', 1]]), { a: ref('a') });
	await upkeep.sweep();
	assert.is(fake.starts.length, 1);
	fake.starts[0]!.answer();
	await scheduler.drain();
	const [first] = scheduler.snapshot();
	fake.exit(first!.name);
	await new Promise((resolve) => setImmediate(resolve));
	await scheduler.drain();
	await upkeep.sweep();
	assert.is(fake.starts.length, 2, 'replaced at the next sweep');
});

keepWarm.run();
