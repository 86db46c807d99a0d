/**
 * Time and I/O in the simulated world: which socket the relay reads next and
 * how much, when the batch commits (the end of an event-loop turn), and how
 * the clock moves. Both the random events and the run (driver.ts) use them.
 */
import type { SimUpstreamSocket, UpstreamEvent } from "./fake-sockets.ts";
import { HEARTBEAT_EVERY_MS } from "./sim-daemon.ts";
import type { World } from "./world.ts";

function shuffled<T>(w: World, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = w.prng.int(0, i);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function deliverUpstream(w: World, e: UpstreamEvent, socket: SimUpstreamSocket): void {
  if (e.kind !== "message") w.trace.add(`upstream ${e.kind}`);
  if (e.kind === "open") socket.handlers.onOpen();
  else if (e.kind === "message") socket.handlers.onMessage(e.text);
  else if (e.kind === "close") socket.handlers.onClose(e.code, e.reason);
  else socket.handlers.onError(e.message);
}

/**
 * Lets the relay read its sockets. A partial pump reads a few frames from
 * some sockets (interleavings within a turn); a full one reads until nothing
 * readable is left, committing between rounds as turns of the event loop do.
 */
export function pump(w: World, full: boolean): void {
  const rounds = full ? 100 : 1;
  for (let round = 0; round < rounds && !w.verdict.failed; round++) {
    let progress = false;
    for (const conn of shuffled(w, [...w.conns])) {
      const budget = full ? 10_000 : w.prng.int(0, 6);
      for (let i = 0; i < budget && w.observer.readFrame(conn); i++) progress = true;
    }
    for (const socket of [...w.server.sockets]) {
      const budget = full ? 10_000 : w.prng.int(0, 3);
      for (let i = 0; i < budget; i++) {
        const e = socket.nextEvent();
        if (!e) break;
        deliverUpstream(w, e, socket);
        progress = true;
      }
    }
    w.server.prune();
    for (const d of w.allDaemons()) if (!d.hung) d.process();
    w.flush();
    if (!progress) break;
  }
}

/** Periodic daemon behaviour: heartbeats when due, dialling again after a lost connection. */
function tickDaemons(w: World): void {
  const now = w.clock.now();
  for (const d of w.allDaemons()) {
    if (d.online && d.authenticated && !d.hung && now >= d.nextHeartbeat) {
      d.heartbeat();
      d.nextHeartbeat = now + HEARTBEAT_EVERY_MS + w.prng.int(0, 200);
    } else if (!d.online && d.reconnectAt !== null && now >= d.reconnectAt) {
      if (!d.connect(w.prng.int(0, 3))) d.reconnectAt = now + w.prng.int(100, 2000);
    }
  }
}

/** Moves the clock in slices, so that timers, daemons and sockets interleave. */
export function advance(w: World, ms: number): void {
  let left = ms;
  while (left > 0 && !w.verdict.failed) {
    const dt = Math.min(left, w.prng.int(50, 250));
    w.clock.advance(dt);
    left -= dt;
    tickDaemons(w);
    pump(w, true);
  }
}
