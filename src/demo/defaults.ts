/** The demo's settings when nothing else is asked for (see `makima-relay --help`). */
export const DEMO_DEFAULTS = {
  /** Tasks the simulated server spawns per second. */
  ratePerSec: 1,
  /** One simulated daemon per entry, with that capacity. */
  capacities: [2, 3, 4],
  /** A task runs for a random time in this range, in ms. */
  runMs: [2000, 6000] as [min: number, max: number],
  outputLines: 4,
  /** Share of tasks that complete with success: false. */
  failRate: 0.2,
  /** One daemon drops and reconnects every this many ms. */
  flapEveryMs: [20_000, 30_000] as [min: number, max: number],
  daemonHeartbeatMs: 10_000,
} as const;
