/**
 * The demo's daemons: automatic sim daemons, one of which now and then closes
 * its socket and reconnects with the same machineId, as a daemon on a flaky
 * network would. Like a real daemon it keeps its tasks across the reconnect:
 * it lists them in its first heartbeat (the relay's reconciliation) and
 * finishes them afterwards.
 */
import { type AutoBehaviour, connectSimDaemon, type SimDaemon } from "../sim/index.ts";

export interface DaemonPlan {
  url: string;
  apiKey: string;
  capacities: number[];
  behaviour: AutoBehaviour & { rng: () => number };
  heartbeatMs: number;
  flapEveryMs: [min: number, max: number] | null;
  /** Longest time a dropped daemon stays away. */
  maxAwayMs: number;
  rng: () => number;
  onError(error: unknown): void;
}

export interface DemoDaemons {
  readonly current: readonly SimDaemon[];
  stopFlapping(): void;
  closeAll(): Promise<void>;
}

const machineIdOf = (i: number): string => `demo-daemon-${i + 1}`;

/**
 * Connects the demo's daemons and drops one now and then. Its closures share
 * one state (the connections, the timers, the flap in progress), so it reads
 * as one unit, a class in all but name, rather than as several functions.
 */
export async function startDemoDaemons(plan: DaemonPlan): Promise<DemoDaemons> {
  const connect = async (i: number): Promise<SimDaemon> => {
    const daemon = await connectSimDaemon({
      url: plan.url,
      apiKey: plan.apiKey,
      machineId: machineIdOf(i),
      hostname: `${machineIdOf(i)}.demo`,
      maxConcurrentTasks: plan.capacities[i] ?? 2,
      behaviour: plan.behaviour,
      heartbeatMs: plan.heartbeatMs,
    });
    await daemon.authenticated;
    return daemon;
  };
  const current = await Promise.all(plan.capacities.map((_, i) => connect(i)));
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopped = false;
  // Wakes a flap that is waiting out its time away when the demo stops.
  const halted = Promise.withResolvers<void>();
  let flapping: Promise<void> | null = null;
  let nextToDrop = 0;

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  const between = ([min, max]: [number, number]): number => min + plan.rng() * (max - min);

  /** The tasks it held run on: the first heartbeat lists them, each finishes a little later. */
  const resume = (daemon: SimDaemon, held: readonly string[]): void => {
    for (const id of held) daemon.activeTasks.add(id);
    daemon.heartbeat();
    for (const id of held) {
      later(between([200, 2000]), () => {
        if (daemon.socket.readyState !== WebSocket.OPEN || !daemon.activeTasks.has(id)) return;
        const ok = plan.behaviour.rng() >= plan.behaviour.failRate;
        daemon.complete(id, ok, ok ? undefined : "simulated failure");
      });
    }
  };

  const flap = async (): Promise<void> => {
    const i = nextToDrop++ % current.length;
    const old = current[i] as SimDaemon;
    await old.close(1000, "demo: simulated network drop");
    // Read after the close: a spawnTask can still arrive while the close handshake runs.
    const held = [...old.activeTasks];
    const away = new Promise<void>((resolve) => later(between([300, plan.maxAwayMs]), resolve));
    await Promise.race([away, halted.promise]);
    if (stopped) return;
    const fresh = await connect(i);
    if (stopped) {
      await fresh.close(1000, "demo stopping");
      return;
    }
    current[i] = fresh;
    resume(fresh, held);
  };

  const scheduleFlap = (): void => {
    if (stopped || !plan.flapEveryMs || current.length === 0) return;
    later(between(plan.flapEveryMs), () => {
      flapping = flap()
        .catch((error) => plan.onError(error))
        .finally(() => {
          flapping = null;
          scheduleFlap();
        });
    });
  };
  scheduleFlap();

  const stopFlapping = (): void => {
    stopped = true;
    halted.resolve();
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  };
  return {
    current,
    stopFlapping,
    async closeAll() {
      stopFlapping();
      await flapping;
      await Promise.all(current.map((d) => d.close(1000, "demo stopping")));
    },
  };
}
