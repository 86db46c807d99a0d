/**
 * What a run costs each process: CPU time and utilisation of the relay, the
 * load process(es) and the bench main process (the sim server), plus the
 * relay's memory and outbox backlog sampled while the run lasts. On a
 * 2-core machine the utilisations show whether the box itself was the limit.
 */
import { CpuMeter, machineCpuMs } from "./proc.ts";
import type { RelayProcess } from "./relay-process.ts";

const SAMPLE_MS = 100;

/** Every run's `otherUtil`, for the report's per-scenario "machine shared" note. */
export const otherLoad: number[] = [];
const STATUS_EVERY = 1;

export interface RunCost {
  relayCpuMs: number | null;
  /** CPU-seconds per wall-second: 1.0 is one core fully busy. */
  relayUtil: number | null;
  loadUtil: number;
  serverUtil: number;
  /**
   * Cores kept busy by other processes on the machine (machine-wide process
   * time minus the three above): well above 0 means the run shared the box.
   */
  otherUtil: number;
  /** Cores in irq/softirq/steal: mostly the loopback traffic of the run itself. */
  kernelUtil: number;
  wallMs: number;
  relayRssPeakMB: number | null;
  relayOutboxPeak: number | null;
}

export class Meters {
  readonly #relay: RelayProcess | null;
  readonly #relayCpu: CpuMeter | null;
  readonly #loadCpu: CpuMeter[];
  readonly #serverCpu = new CpuMeter(process.pid);
  readonly #machine0 = machineCpuMs();
  readonly #timer: ReturnType<typeof setInterval>;
  #rssPeak = 0;
  #outboxPeak = 0;
  #ticks = 0;
  #polling = false;

  constructor(relay: RelayProcess | null, loadPids: readonly number[]) {
    this.#relay = relay;
    this.#relayCpu = relay ? new CpuMeter(relay.pid) : null;
    this.#loadCpu = loadPids.map((pid) => new CpuMeter(pid));
    this.#timer = setInterval(() => this.#sample(), SAMPLE_MS);
  }

  #sample(): void {
    const relay = this.#relay;
    if (!relay) return;
    this.#rssPeak = Math.max(this.#rssPeak, relay.memory().rss);
    if (this.#ticks++ % STATUS_EVERY !== 0 || this.#polling) return;
    this.#polling = true;
    relay
      .status()
      .then((s) => {
        this.#outboxPeak = Math.max(this.#outboxPeak, s.outbox.frames);
      })
      .catch(() => {})
      .finally(() => {
        this.#polling = false;
      });
  }

  stop(): RunCost {
    clearInterval(this.#timer);
    this.#sample();
    const relay = this.#relayCpu?.read() ?? null;
    const server = this.#serverCpu.read();
    const loads = this.#loadCpu.map((m) => m.read());
    const loadUtil = loads.reduce((sum, l) => sum + l.utilisation, 0);
    const machine = machineCpuMs();
    const perWall = (ms: number) => (server.wallMs > 0 ? ms / server.wallMs : 0);
    const otherUtil = Math.max(
      0,
      perWall(machine.process - this.#machine0.process) -
        (relay?.utilisation ?? 0) -
        loadUtil -
        server.utilisation,
    );
    const kernelUtil = perWall(machine.kernel - this.#machine0.kernel);
    otherLoad.push(otherUtil);
    return {
      relayCpuMs: relay?.cpuMs ?? null,
      relayUtil: relay?.utilisation ?? null,
      loadUtil,
      serverUtil: server.utilisation,
      otherUtil,
      kernelUtil,
      wallMs: server.wallMs,
      relayRssPeakMB: this.#relay ? this.#rssPeak / 2 ** 20 : null,
      relayOutboxPeak: this.#relay ? this.#outboxPeak : null,
    };
  }
}
