/**
 * The run itself: random steps, then a quiet period in which every fault
 * heals and all work must come to an end upstream. How each step reads
 * sockets and moves the clock is in turns.ts.
 */
import { canTakeTask } from "../core/daemon.ts";
import { randomEvent } from "./events.ts";
import { advance, pump } from "./turns.ts";
import type { World } from "./world.ts";

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
