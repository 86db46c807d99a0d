/**
 * Time and I/O in the simulated world: which socket the relay reads next and
 * how much, when the batch commits (the end of an event-loop turn), how the
 * clock moves, and the run itself: random steps, then a quiet period in which
 * every fault heals and all work must come to an end upstream.
 */
import { canTakeTask } from "../core/dispatch-heap.ts";
import { randomEvent } from "./events.ts";
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

export function step(w: World, index: number): void {
  w.trace.step = index;
  w.faults.tick();
  if (w.outageSteps > 0 && --w.outageSteps === 0) {
    w.trace.add("server back");
    w.server.recover();
  }
  const actions = w.prng.int(1, 3);
  for (let i = 0; i < actions && !w.verdict.failed; i++) {
    randomEvent(w);
    if (w.prng.chance(0.5)) pump(w, false);
  }
  pump(w, true);
  if (!w.verdict.failed) w.checkStep();
}

/** Nothing left in flight: no active task, an empty outbox, every socket read, the batch clean. */
function settled(w: World): boolean {
  const { relay, outbox, link, batch } = w.core;
  return (
    relay.tasks.active === 0 &&
    outbox.stats().waiting === 0 &&
    link.authenticated &&
    batch.status.ok &&
    !w.core.flushDue &&
    [...w.conns].every((c) => c.outbound.length === 0) &&
    w.server.sockets.every((s) => s.events.length === 0)
  );
}

/**
 * The end of a run: faults heal, the server comes back, daemons finish what
 * they run (or stay away past the grace period), and a finisher connects if
 * work waits with no slot for it. Then every accepted attempt must have
 * ended upstream once and every held frame must have arrived.
 */
export function quiet(w: World): void {
  w.trace.add("quiet period: faults heal, the server comes back, daemons finish");
  w.faults.heal();
  w.outageSteps = 0;
  w.server.recover();
  w.server.drain();
  for (const d of w.allDaemons()) d.hungUntil = 0;
  for (const conn of w.conns) {
    if (!conn.backpressured) continue;
    conn.backpressured = false;
    w.core.relay.daemonDrained(conn);
  }
  const needed = w.settings.graceMs + w.settings.daemonTimeoutMs + 5000;
  let calm = 0;
  let finisher = null as ReturnType<World["extraDaemon"]> | null;
  for (let round = 0; round < 1000 && calm < needed && !w.verdict.failed; round++) {
    w.server.drain();
    for (const d of w.daemons) {
      if (d.online && d.authenticated) for (const id of d.listed()) d.complete(id, true);
      else if (!d.online && d.reconnectAt === null && w.prng.chance(0.05))
        d.reconnectAt = w.clock.now() + w.prng.int(0, 2 * w.settings.graceMs);
    }
    if (finisher?.online && finisher.authenticated)
      for (const id of finisher.listed()) finisher.complete(id, true);
    const relay = w.core.relay;
    const slots = relay.registry.list().some((d) => d.capacity > 0 || canTakeTask(d));
    if (relay.tasks.queued > 0 && !slots && !finisher?.online) {
      finisher = w.extraDaemon("finisher");
      finisher.connect(3);
    }
    advance(w, 500);
    calm = settled(w) ? calm + 500 : 0;
  }
  if (w.verdict.failed) return;
  if (calm < needed) {
    const { relay, outbox, link } = w.core;
    w.fail(
      "quiescence",
      `the relay did not settle: ${relay.tasks.active} active (${relay.tasks.queued} queued), ${outbox.stats().waiting} frames waiting, link ${link.state.kind}, storage ${w.core.batch.status.ok ? "ok" : "failing"}`,
    );
    return;
  }
  w.finalChecks();
}
