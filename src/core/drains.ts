/**
 * Draining, as an operator asks for it (docs/protocol.md "Draining"): a
 * drained machine's daemon gets no new task, and a drained relay tells its
 * server it has no room (capacity 0 in `auto` mode) and says it is not ready.
 * Which machines are drained is a dispatch fact, so DaemonRegistry holds it;
 * this module only writes both drains to the meta store, in the turn's write
 * batch (an answer to the operator leaves after that write, as every frame
 * does), and reads them back at start, so that a drain survives reconnects and
 * restarts. The meta store avoids a table of its own: the drained machines are
 * one JSON list, the relay's drain one flag.
 */
import type { DaemonRegistry } from "./daemon-registry.ts";
import type { EventLog, MetaStore } from "./ports.ts";

/** Meta-store key of the drained machineIds (a JSON array of strings). */
export const DRAINED_MACHINES = "drainedMachines";
/** Meta-store key of the relay's own drain ("true" while it drains). */
export const RELAY_DRAINING = "relayDraining";

/** What an operator is told after draining a machine or returning it to rotation. */
export interface MachineDrain {
  machineId: string;
  draining: boolean;
  /** Whether a daemon with this machineId is connected now. */
  connected: boolean;
  /** False when the machine was already so (the call changed nothing). */
  changed: boolean;
}

export interface RelayDrain {
  draining: boolean;
  changed: boolean;
}

export class Drains {
  private relay = false;

  constructor(
    private readonly meta: MetaStore,
    private readonly registry: DaemonRegistry,
    private readonly log: EventLog,
  ) {}

  /** At start: the drains written before the last stop. */
  restore(): void {
    this.relay = this.meta.get(RELAY_DRAINING) === "true";
    for (const machineId of parseList(this.meta.get(DRAINED_MACHINES)))
      this.registry.setDraining(machineId, true);
  }

  get relayDraining(): boolean {
    return this.relay;
  }

  machine(machineId: string, on: boolean): MachineDrain {
    const changed = this.registry.setDraining(machineId, on);
    const connected = this.registry.byMachineId(machineId) !== undefined;
    if (changed) {
      this.meta.set(DRAINED_MACHINES, JSON.stringify(this.registry.drainingMachines()));
      this.log.connection(
        on ? "daemon_drained" : "daemon_undrained",
        on
          ? `machineId ${machineId} drained by an operator: no new task; what it holds runs on`
          : `machineId ${machineId} returned to rotation by an operator`,
      );
    }
    return { machineId, draining: on, connected, changed };
  }

  setRelay(on: boolean): RelayDrain {
    if (this.relay === on) return { draining: on, changed: false };
    this.relay = on;
    this.meta.set(RELAY_DRAINING, on ? "true" : "false");
    this.log.connection(
      on ? "relay_draining" : "relay_drain_ended",
      on
        ? "The relay drains: it says it is not ready, and advertises capacity 0 in auto mode"
        : "The relay's drain ended",
    );
    return { draining: on, changed: true };
  }
}

/** A stored list; anything unreadable counts as none (it is only ever written by `machine`). */
function parseList(text: string | null): string[] {
  if (text === null) return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch {
    return [];
  }
}
