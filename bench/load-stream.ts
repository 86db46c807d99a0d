/**
 * The stream scenarios' sender, inside a load process: every daemon writes
 * its frames on its one task, either as fast as its socket drains ("blast")
 * or on a schedule ("paced"). Both stop at the deadline whatever happens.
 */
import { nowMs } from "../src/sim/wait.ts";
import { type FrameBuilder, outputFrames } from "./frames.ts";
import type { LoadDaemon } from "./load-daemon.ts";
import type { StreamCommand, StreamResult } from "./load-protocol.ts";

/** Frames one daemon writes before the next gets a turn, so one fast socket cannot starve the rest. */
const BLAST_TURN = 64;
const PACE_TICK_MS = 1;

interface Sender {
  daemon: LoadDaemon;
  frame: FrameBuilder;
  seq: number;
}

export function stream(daemons: readonly LoadDaemon[], cmd: StreamCommand): Promise<StreamResult> {
  const senders: Sender[] = [];
  for (const daemon of daemons) {
    const taskId = daemon.tasks[0];
    if (taskId === undefined || !daemon.open) continue;
    senders.push({ daemon, frame: outputFrames(taskId, cmd.frames, cmd.bytes), seq: 0 });
  }
  const result: StreamResult = {
    sent: 0,
    firstAt: 0,
    lastAt: 0,
    behindTicks: 0,
    timedOut: false,
  };
  const deadline = performance.now() + cmd.timeoutMs;
  const { promise, resolve } = Promise.withResolvers<StreamResult>();
  const write = (s: Sender): void => {
    const at = nowMs();
    s.daemon.ws.send(s.frame(s.seq++, at));
    result.sent++;
    if (result.firstAt === 0) result.firstAt = at;
    result.lastAt = at;
  };
  const finished = (): boolean => {
    if (senders.every((s) => s.seq >= cmd.frames || !s.daemon.open)) return true;
    if (performance.now() < deadline) return false;
    result.timedOut = true;
    return true;
  };
  if (cmd.mode === "blast") {
    const pump = (): void => {
      let progressed = false;
      for (const s of senders) {
        const ws = s.daemon.ws;
        for (let n = 0; n < BLAST_TURN && s.seq < cmd.frames; n++) {
          if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > cmd.windowBytes) break;
          write(s);
          progressed = true;
        }
      }
      if (finished()) resolve(result);
      // Busy only while bytes move; a blocked round waits a tick instead of spinning a core.
      else if (progressed) setImmediate(pump);
      else setTimeout(pump, PACE_TICK_MS);
    };
    pump();
    return promise;
  }
  const perDaemonPerMs = cmd.rate / 1000 / Math.max(1, senders.length);
  const start = performance.now();
  const tick = (): void => {
    const owed = Math.min(cmd.frames, Math.floor((performance.now() - start) * perDaemonPerMs));
    let behind = false;
    for (const s of senders) {
      const ws = s.daemon.ws;
      while (s.seq < owed && ws.readyState === WebSocket.OPEN) {
        if (ws.bufferedAmount > cmd.windowBytes) {
          behind = true;
          break;
        }
        write(s);
      }
    }
    if (behind) result.behindTicks++;
    if (finished()) resolve(result);
    else setTimeout(tick, PACE_TICK_MS);
  };
  tick();
  return promise;
}
