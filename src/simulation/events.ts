/**
 * What can happen in one step, with its weight: the server's work and
 * commands, daemons coming, going and talking, and the faults (upstream
 * outages and congestion, failing commits, crashes, time passing).
 */
import { DAEMON_KEY } from "./core.ts";
import type { SimDaemon } from "./sim-daemon.ts";
import { COMMANDS } from "./sim-server.ts";
import { advance } from "./turns.ts";
import type { World } from "./world.ts";

type Event = (w: World) => void;

const online = (w: World): SimDaemon | undefined =>
  w.prng.pick(w.daemons.filter((d) => d.online && d.authenticated));
const offline = (w: World): SimDaemon | undefined =>
  w.prng.pick(w.daemons.filter((d) => !d.online));

/** An online daemon and one task it runs (and has not forgotten). */
function running(w: World): [SimDaemon, string] | undefined {
  const d = online(w);
  const taskId = d ? w.prng.pick(d.listed()) : undefined;
  return d && taskId ? [d, taskId] : undefined;
}

const server: [number, Event][] = [
  [12, (w) => w.server.spawnNew()],
  [3, (w) => w.server.respawn()],
  [2, (w) => w.server.duplicate()],
  [
    6,
    (w) => {
      const type = w.prng.weighted(
        COMMANDS.map((c) => [c === "interruptTask" ? 1 : 3, c] as const),
      );
      w.server.command(type, w.prng.chance(0.2));
    },
  ],
  [0.5, (w) => w.server.broadcast()],
];

const daemons: [number, Event][] = [
  [6, (w) => offline(w)?.connect(w.prng.int(0, 3))],
  // The same machine dials again while its connection lives: the relay closes the old one (4409).
  [1.5, (w) => online(w)?.connect(w.prng.int(0, 3))],
  [
    2,
    (w) => {
      const d = online(w);
      if (!d) return;
      d.vanish(w.prng.chance(0.3), w.prng.chance(0.5));
      d.reconnectAt = w.prng.chance(0.7)
        ? w.clock.now() + w.prng.int(0, 2 * w.settings.graceMs)
        : null;
    },
  ],
  [
    0.4,
    (w) => {
      // A socket that never authenticates (4401 after the auth timeout), or with a wrong key.
      const stranger = w.extraDaemon("stranger");
      if (w.prng.chance(0.5)) stranger.connect(1, DAEMON_KEY, false);
      else stranger.connect(1, "wrong-key");
    },
  ],
  [
    10,
    (w) => {
      const r = running(w);
      r?.[0].output(r[1], w.prng.int(1, 3));
    },
  ],
  [
    4,
    (w) => {
      const r = running(w);
      r?.[0].status(r[1], w.prng.pick(["running", "paused", "waiting"]) as string);
    },
  ],
  [
    8,
    (w) => {
      const r = running(w);
      r?.[0].complete(r[1], w.prng.chance(0.8));
    },
  ],
  [
    1.5,
    (w) => {
      // A long build log at once: far over the rate limit, slowed down, never dropped.
      const r = running(w);
      r?.[0].output(r[1], w.prng.int(30, 300));
    },
  ],
  [
    1,
    (w) => {
      const r = running(w);
      const run = r?.[0].running.get(r[1]);
      if (run) {
        run.forgotten = true;
        w.trace.add(`${r?.[0].machineId} forgets ${r?.[1]}`);
      }
    },
  ],
  [
    0.4,
    (w) => {
      const d = online(w);
      if (d) d.hungUntil = w.clock.now() + w.prng.int(1000, 2 * w.settings.daemonTimeoutMs);
    },
  ],
  [0.5, (w) => online(w)?.capacityUpdate(w.prng.int(0, 4))],
  [
    1,
    (w) => {
      // Frames about tasks it does not hold (notYourTask), or not even JSON (badMessage).
      const d = online(w);
      const taskId = w.prng.pick([...w.server.open, ...w.server.ended]);
      if (!d || !taskId || d.running.has(taskId)) d?.garbage();
      else if (w.prng.chance(0.5)) d.output(taskId);
      else d.complete(taskId, true);
    },
  ],
  [0.5, (w) => online(w)?.notice()],
  [2, (w) => online(w)?.heartbeat()],
  [
    1,
    (w) => {
      const conn = w.prng.pick([...w.conns]);
      if (conn) conn.backpressured = true;
    },
  ],
  [
    1.5,
    (w) => {
      const conn = w.prng.pick([...w.conns].filter((c) => c.backpressured));
      if (!conn) return;
      conn.backpressured = false;
      w.core.relay.daemonDrained(conn);
    },
  ],
];

const faults: [number, Event][] = [
  [
    0.8,
    (w) => {
      if (w.outageSteps > 0) return;
      const silent = w.prng.chance(0.3);
      w.trace.add(`server ${silent ? "hangs" : "goes away"}`);
      w.server.outage(silent);
      w.outageSteps = w.prng.int(3, 60);
    },
  ],
  [0.5, (w) => w.server.congest()],
  [1, (w) => w.server.drain()],
  [
    0.8,
    (w) => {
      if (w.faults.active) return;
      const rate = w.prng.pick([0.3, 0.7, 1]) as number;
      const steps = w.prng.int(2, 40);
      w.trace.add(`commits fail with p=${rate} for ${steps} steps`);
      w.faults.start(rate, steps);
    },
  ],
  [0.3, (w) => (w.opts.stores === "sqlite" ? w.crash() : undefined)],
  [14, (w) => advance(w, w.prng.int(10, 400))],
  [3, (w) => advance(w, w.prng.int(1000, 15_000))],
];

const ALL: readonly (readonly [number, Event])[] = [...server, ...daemons, ...faults];

export function randomEvent(w: World): void {
  w.prng.weighted(ALL)(w);
}
