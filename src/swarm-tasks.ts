import { setTimeout as sleep } from 'node:timers/promises';
import { StartFailure } from './backend.js';
import { type TaskState, inspectTasks, runningTasks, taskLogs } from './swarm.js';
import type { SwarmPlacement } from './swarm-nodes.js';
import { LOG_LINES, describeTask, ended, noNode, replaced } from './swarm-spec.js';

/** A Swarm service's task: waiting for it to run, and saying how it ended. */

// How often the tasks of serving instances are checked, for nodes whose die events this engine does not see.
const TASK_POLL_MS = 2_000;
// How long Swarm may find no node for a task before the start fails: a node may be coming back, or joining.
const NO_NODE_MS = 5_000;

/** How a task ended, in words, with its last output; or that its node is gone (whose output cannot be read). */
export async function explainTask(task: TaskState, memoryMb: number, placement: SwarmPlacement): Promise<string> {
	const lost = replaced(task) ? await placement.lost(task.nodeId) : null;
	return describeTask(task, lost ? '' : await taskLogs(task.id, LOG_LINES), memoryMb, lost);
}

/**
 * Waits until the service's task runs and has its port; `seen` is told each task looked at. A task that
 * failed, none that Swarm can place, or none by the deadline, is a StartFailure that says why.
 */
export async function waitRunning(service: string, deadline: number, allowanceS: number, signal: AbortSignal, seen: (task: TaskState) => void, placement: SwarmPlacement): Promise<TaskState> {
	let last: TaskState | undefined;
	let unplaced = 0;
	while (Date.now() < deadline) {
		signal.throwIfAborted();
		const [id] = await runningTasks(service);
		// Swarm gives up a failed task within moments (its desired state is then shutdown) and restarts it 5 s
		// later: the task seen before, gone from the running ones, may have failed, which says enough.
		if (last && id !== last.id) {
			const [before] = await inspectTasks([last.id]);
			if (before && ended(before) && !replaced(before)) throw new StartFailure(`The function ${await explainTask(before, 0, placement)} before answering.`);
		}
		const [task] = id ? await inspectTasks([id]) : [];
		if (task) {
			last = task;
			seen(task);
			// No node may run it (the constraints match none that is up): said once it lasts, not after the whole allowance.
			unplaced = noNode(task) ? unplaced || Date.now() : 0;
			if (unplaced && Date.now() - unplaced >= NO_NODE_MS) throw new StartFailure(`Swarm has no node to run the function on: ${task.error}.`);
			if (task.state === 'running' && task.port && !replaced(task)) return task;
			// Given up with its node: the next look finds the replacement Swarm places.
			if (ended(task) && !replaced(task)) throw new StartFailure(`The function ${await explainTask(task, 0, placement)} before answering.`);
		}
		await sleep(50, undefined, { signal }).catch(() => {});
	}
	const why = last?.error ? `: ${last.error}` : last ? ` (its task is ${last.state})` : '';
	throw new StartFailure(`Swarm did not run the function's service within ${allowanceS} s${why}.`);
}

/** Checks the tasks `ids()` names every TASK_POLL_MS; `over` is told each one that ended or that Swarm gave up. A timer to clear. */
export function pollTasks(ids: () => string[], over: (task: TaskState) => void): NodeJS.Timeout {
	const poller = setInterval(() => {
		const asked = ids();
		if (asked.length === 0) return;
		void inspectTasks(asked).then(
			(tasks) => {
				const byId = new Map(tasks.map((t) => [t.id, t]));
				// A task Swarm no longer has is over too.
				for (const id of asked) {
					const task = byId.get(id);
					if (ended(task)) over(task ?? { id, state: 'remove', desiredState: 'remove', error: '', exitCode: -1, nodeId: '', port: 0 });
				}
			},
			() => {},
		);
	}, TASK_POLL_MS);
	poller.unref();
	return poller;
}
