import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { StartFailure } from '../../src/backend.js';
import { PoolFull, ShuttingDown, createScheduler } from '../../src/scheduler.js';
import { fakeBackend, limits, manualClock, ref, settle } from './fake-backend.js';

/** The scheduler against an in-memory backend: no Docker, no timers, no sleeps. */
const scheduler = suite('scheduler');
const never = new AbortController().signal;

scheduler('a cold function starts one instance however many invocations arrive together (single flight)', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ concurrency: 3 }), fake.backend);
	const leases = await Promise.all([s.lease(ref('a'), never), s.lease(ref('a'), never), s.lease(ref('a'), never)]);
	assert.is(fake.starts.length, 1, 'one start for three invocations');
	assert.ok(
		leases.every((l) => l.cold && l.instance === leases[0]!.instance),
		'all three wait for the same instance, cold',
	);
	fake.starts[0]!.answer('http://a/');
	await leases[0]!.instance.ready;
	await settle();
	assert.is(leases[0]!.instance.state, 'ready');
	assert.is(leases[0]!.instance.url, 'http://a/');
	for (const l of leases) s.release(l.instance);
	const warm = await s.lease(ref('a'), never);
	assert.is(warm.cold, false, 'the next invocation finds it warm');
	assert.is(fake.starts.length, 1);
});

scheduler('the instance gets the function, its version, its limits and its env; defaults fill the rest', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits(), fake.backend);
	await s.lease(ref('a', 'v7', { memory_mb: 512, env: { K: 'V' } }), never);
	const { spec } = fake.starts[0]!;
	assert.equal({ fn: spec.function, version: spec.version, memoryMb: spec.memoryMb, cpus: spec.cpus, env: spec.env }, { fn: 'a', version: 'v7', memoryMb: 512, cpus: 1, env: { K: 'V' } });
	assert.ok(spec.name.startsWith('lcf-unit-a-'), spec.name);
});

scheduler('concurrency per instance and max replicas: the third invocation waits, and gets the first free slot', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ concurrency: 1, maxReplicas: 2 }), fake.backend);
	const first = await s.lease(ref('a'), never);
	const second = await s.lease(ref('a'), never);
	assert.is(fake.starts.length, 2, 'two replicas for two invocations at concurrency 1');
	assert.is.not(first.instance, second.instance);
	let granted: string | null = null;
	const third = s.lease(ref('a'), never).then((l) => (granted = l.instance.name));
	await settle();
	assert.is(s.queueDepth(), 1, 'the third waits in the queue');
	assert.is(fake.starts.length, 2, 'no third replica past max_replicas');
	s.release(second.instance);
	await third;
	assert.is(granted, second.instance.name, 'the freed slot goes to the queued invocation');
	assert.is(s.queueDepth(), 0);
});

scheduler('a full queue is refused with PoolFull (429 too_many_invocations, Retry-After)', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ maxReplicas: 1, maxQueue: 1 }), fake.backend);
	await s.lease(ref('a'), never);
	void s.lease(ref('a'), never);
	const refused = await s.lease(ref('a'), never).catch((err: unknown) => err);
	assert.ok(refused instanceof PoolFull, String(refused));
	assert.is((refused as PoolFull).status, 429);
	assert.is((refused as PoolFull).code, 'too_many_invocations');
	assert.is((refused as PoolFull).headers['retry-after'], '1');
});

scheduler('a queued invocation whose caller goes away leaves the queue', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ maxReplicas: 1 }), fake.backend);
	await s.lease(ref('a'), never);
	const caller = new AbortController();
	const waiting = s.lease(ref('a'), caller.signal).catch((err: unknown) => err);
	await settle();
	assert.is(s.queueDepth(), 1);
	caller.abort(new Error('gone'));
	assert.is(((await waiting) as Error).message, 'gone');
	assert.is(s.queueDepth(), 0);
});

scheduler('the total cap: an idle instance of another function is evicted for room, least recently used first', async () => {
	const fake = fakeBackend();
	const clock = manualClock();
	const s = createScheduler(limits({ maxContainers: 2 }), fake.backend, { now: clock.now });
	for (const name of ['a', 'b']) {
		const l = await s.lease(ref(name), never);
		fake.starts.at(-1)!.answer();
		await l.instance.ready;
		clock.advance(10);
		s.release(l.instance);
	}
	await settle();
	const [a] = s.snapshot();
	const c = await s.lease(ref('c'), never);
	assert.is(c.cold, true);
	await s.drain();
	assert.equal(fake.removed, [a!.name], 'the least recently used idle instance (a) went');
	assert.equal(
		s
			.snapshot()
			.map((i) => i.fn)
			.sort(),
		['b', 'c'],
	);
});

scheduler('the total cap with nothing idle: invocations wait, they do not start more', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ maxContainers: 1 }), fake.backend);
	await s.lease(ref('a'), never);
	void s.lease(ref('b'), never);
	await settle();
	assert.is(fake.starts.length, 1);
	assert.is(s.queueDepth(), 1);
});

scheduler('new code wins: a new version retires the old instances, which go once their requests end', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ concurrency: 2 }), fake.backend);
	const old = await s.lease(ref('a', 'v1'), never);
	fake.starts[0]!.answer();
	await old.instance.ready;
	const fresh = await s.lease(ref('a', 'v2'), never);
	assert.is.not(fresh.instance, old.instance, 'v2 never runs on the v1 instance');
	assert.is(old.instance.state, 'draining');
	assert.equal(fake.removed, [], 'a draining instance keeps serving what it has');
	s.release(old.instance);
	await settle();
	assert.equal(fake.removed, [old.instance.name], 'removed when its last request ended');
});

scheduler('queued invocations follow the newest source: they never start the retired version', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ maxReplicas: 1 }), fake.backend);
	const first = await s.lease(ref('a', 'v1'), never);
	const queued = s.lease(ref('a', 'v1'), never);
	await settle();
	s.retireFunction('a', { ...ref('a', 'v2'), versionNumber: 2 });
	s.release(first.instance);
	const lease = await queued;
	assert.is(lease.instance.version, 'v2');
	// Its RunResult says the version its instance runs, not the one it was located with.
	assert.is(lease.instance.versionNumber, 2);
	assert.equal(
		fake.starts.map((start) => start.spec.version),
		['v1', 'v2'],
	);
});

scheduler('idle instances go after the idle time, except those a function asked to keep warm', async () => {
	const fake = fakeBackend();
	const clock = manualClock();
	const s = createScheduler(limits({ idleMs: 1_000 }), fake.backend, { now: clock.now });
	for (const name of ['a', 'b']) {
		const l = await s.lease(ref(name), never);
		fake.starts.at(-1)!.answer();
		await l.instance.ready;
		s.release(l.instance);
	}
	clock.advance(999);
	s.removeIdle(new Map());
	assert.equal(fake.removed, [], 'not yet idle long enough');
	clock.advance(1);
	s.removeIdle(new Map([['b', 1]]));
	await s.drain();
	assert.equal(
		s.snapshot().map((i) => i.fn),
		['b'],
		'b is kept warm, a went',
	);
});

scheduler('a ready instance that dies is explained, removed, and replaced on the next invocation', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits(), fake.backend);
	const first = await s.lease(ref('a'), never);
	fake.starts[0]!.answer();
	await first.instance.ready;
	s.release(first.instance);
	fake.exit(first.instance.name, 3);
	assert.is(first.instance.state, 'dead');
	assert.ok(first.instance.exited.signal.aborted, 'its requests are told at once');
	assert.is(await first.instance.why, 'exited with code 3 (last output: boom)');
	await settle();
	assert.equal(fake.removed, [first.instance.name]);
	const next = await s.lease(ref('a'), never);
	assert.is.not(next.instance, first.instance);
	assert.is(next.cold, true);
	assert.is(fake.starts.length, 2);
});

scheduler('an instance that dies while starting ends its start (the backend says why); every waiter gets the StartFailure', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ concurrency: 2 }), fake.backend);
	const [one, two] = await Promise.all([s.lease(ref('a'), never), s.lease(ref('a'), never)]);
	const start = fake.starts[0]!;
	fake.exit(one!.instance.name, 1);
	assert.ok(start.signal.aborted, 'the backend is told to stop waiting');
	start.fail(new StartFailure('The function exited with code 1 before answering.'));
	for (const lease of [one!, two!]) {
		const err = await lease.instance.ready.catch((e: unknown) => e);
		assert.ok(err instanceof StartFailure);
	}
	await settle();
	assert.equal(fake.removed, [one!.instance.name]);
	assert.equal(fake.explained, [], 'a failed start is explained by the start itself, once');
	assert.equal(s.snapshot(), []);
});

scheduler('an instance let go while it starts is removed again once its start settles (it may not have existed at the first removal)', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits(), fake.backend);
	const lease = await s.lease(ref('a', 'v1'), never);
	s.release(lease.instance);
	s.retireFunction('a');
	await settle();
	assert.equal(fake.removed, [lease.instance.name]);
	fake.starts[0]!.answer();
	const err = await lease.instance.ready.catch((e: unknown) => e);
	assert.ok(err instanceof StartFailure, 'it never serves');
	await s.drain();
	assert.equal(fake.removed, [lease.instance.name, lease.instance.name]);
});

scheduler('warm starts instances up to the count, within max replicas', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ maxReplicas: 2 }), fake.backend);
	s.warm(ref('a'), 5);
	assert.is(fake.starts.length, 2);
	s.warm(ref('a'), 1);
	assert.is(fake.starts.length, 2, 'already warm enough');
});

scheduler('close refuses queued invocations, removes every instance, and stops following exits', async () => {
	const fake = fakeBackend();
	const s = createScheduler(limits({ maxReplicas: 1 }), fake.backend);
	const lease = await s.lease(ref('a'), never);
	fake.starts[0]!.answer();
	const queued = s.lease(ref('a'), never).catch((err: unknown) => err);
	fake.existing.add('lcf-unit-stray');
	await s.close();
	assert.ok((await queued) instanceof ShuttingDown);
	assert.ok(fake.removed.includes(lease.instance.name));
	assert.ok(fake.removed.includes('lcf-unit-stray'), 'a straggler the engine holds is removed too');
	assert.is(fake.watching(), false);
	assert.ok((await s.lease(ref('a'), never).catch((err: unknown) => err)) instanceof ShuttingDown);
});

scheduler('a backend that cannot say why an instance died still has it removed and replaced', async () => {
	const fake = fakeBackend();
	fake.backend.explain = async () => {
		throw new Error('the engine went away');
	};
	const s = createScheduler(limits(), fake.backend);
	const first = await s.lease(ref('a'), never);
	fake.starts[0]!.answer();
	await first.instance.ready;
	s.release(first.instance);
	fake.exit(first.instance.name);
	assert.is(await first.instance.why, 'stopped');
	await settle();
	await s.drain();
	assert.equal(fake.removed, [first.instance.name]);
	assert.is.not((await s.lease(ref('a'), never)).instance, first.instance);
});

scheduler.run();
