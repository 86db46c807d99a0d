/**
 * The bench main process drives each load process with one JSON command per
 * line on its stdin; the load process answers each with one JSON line on
 * stdout carrying the same `id`. Nothing else is written to stdout.
 */

export interface ConnectCommand {
  cmd: "connect";
  /** Relay or sim server URL; /ws/daemon is appended when missing. */
  url: string;
  apiKey: string;
  count: number;
  capacity: number;
  /** machineId prefix; the daemon's index follows it. */
  prefix: string;
  /** Connections being opened at once. */
  concurrency: number;
  /** Answer each spawnTask with taskComplete at once (dispatch scenarios). */
  autoComplete: boolean;
  timeoutMs: number;
}

export interface AwaitTasksCommand {
  cmd: "awaitTasks";
  timeoutMs: number;
}

export interface StreamCommand {
  cmd: "stream";
  /** Frames per daemon. */
  frames: number;
  /** Target size of each frame, bytes. */
  bytes: number;
  mode: "blast" | "paced";
  /** Paced only: frames a second across all daemons. */
  rate: number;
  /** A daemon stops writing while its socket buffers more than this. */
  windowBytes: number;
  timeoutMs: number;
}

export interface HeartbeatsCommand {
  cmd: "heartbeats";
  /** Period per daemon; 0 stops them. */
  everyMs: number;
}

export type LoadCommand =
  | ConnectCommand
  | AwaitTasksCommand
  | StreamCommand
  | HeartbeatsCommand
  | { cmd: "stats" }
  | { cmd: "close" };

export interface ConnectResult {
  connected: number;
  failed: number;
  ms: number;
  firstError: string | null;
}

export interface StreamResult {
  sent: number;
  /** Epoch ms (sim `nowMs`) of the first and last write. */
  firstAt: number;
  lastAt: number;
  /** Paced: ticks on which some daemon was behind its schedule because its buffer was full. */
  behindTicks: number;
  timedOut: boolean;
}

export interface LoadStats {
  daemons: number;
  open: number;
  spawns: number;
  completes: number;
  heartbeats: number;
  errors: Record<string, number>;
  closes: Record<string, number>;
}

export type LoadReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string };
