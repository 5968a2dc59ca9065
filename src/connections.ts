import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

interface Tracked {
	/** Requests on this socket not yet answered. */
	inFlight: number;
	/** When it last became idle (opened, or its last answer done). */
	idleSince: number;
}

/**
 * Caps the open client connections at `max`. At the cap, a new connection makes room by closing the
 * socket idle the longest: one with no request in flight (it never finished sending one, or is kept
 * alive after its answer). Idle sockets cost an attacker nothing to hold and are worth nothing to a
 * caller, who opens a connection to use it at once; refusing the newcomer instead (Node's
 * maxConnections) would let a few hundred idle sockets lock everyone out. Only when every socket is
 * busy is the newcomer turned away, through `refuse`.
 * Returns `busy(req, res)`: the request marks its socket busy until its answer is done.
 */
export function limitConnections(server: Server, max: number, refuse: (socket: Socket) => void) {
	const open = new Map<Socket, Tracked>();

	function closeOldestIdle(): boolean {
		let oldest: [Socket, Tracked] | undefined;
		for (const entry of open) if (entry[1].inFlight === 0 && (!oldest || entry[1].idleSince < oldest[1].idleSince)) oldest = entry;
		if (!oldest) return false;
		open.delete(oldest[0]);
		oldest[0].destroy();
		return true;
	}

	server.on('connection', (socket: Socket) => {
		if (open.size >= max && !closeOldestIdle()) return refuse(socket);
		open.set(socket, { inFlight: 0, idleSince: performance.now() });
		socket.once('close', () => open.delete(socket));
	});

	return function busy(req: IncomingMessage, res: ServerResponse) {
		const tracked = open.get(req.socket);
		if (!tracked) return;
		tracked.inFlight++;
		res.once('close', () => {
			tracked.inFlight--;
			tracked.idleSince = performance.now();
		});
	};
}
