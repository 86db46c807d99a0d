/**
 * The stream scenarios' taskOutput frame: an ordinary taskOutput with two
 * extra fields, `seq` (per task, from 0) and `sentAt` (epoch ms with µs
 * decimals, sim `nowMs()`, whose clock agrees across processes on one
 * machine), padded with `output` to the requested size. Extra fields are
 * forwarded untouched by contract, so the server reads them back.
 */

/** sentAt is printed with this many decimals: microseconds. */
const SENT_AT_DECIMALS = 3;

export type FrameBuilder = (seq: number, sentAt: number) => string;

/** Frames of about `bytes` bytes (never less than the fields need) for one task. */
export function outputFrames(taskId: string, frames: number, bytes: number): FrameBuilder {
  const head = `{"type":"taskOutput","taskId":${JSON.stringify(taskId)},"seq":`;
  const widest = `${head}${Math.max(0, frames - 1)},"sentAt":${Date.now().toFixed(SENT_AT_DECIMALS)},"output":""}`;
  const pad = "x".repeat(Math.max(0, bytes - widest.length));
  const tail = `,"output":"${pad}"}`;
  return (seq, sentAt) => `${head}${seq},"sentAt":${sentAt.toFixed(SENT_AT_DECIMALS)}${tail}`;
}

export interface OutputStamp {
  taskId: string;
  seq: number;
  sentAt: number;
}

/** Reads the stamp back from a parsed frame; undefined for any other frame. */
export function outputStamp(msg: unknown): OutputStamp | undefined {
  if (typeof msg !== "object" || msg === null) return undefined;
  const m = msg as Record<string, unknown>;
  if (m.type !== "taskOutput" || typeof m.taskId !== "string") return undefined;
  if (typeof m.seq !== "number" || typeof m.sentAt !== "number") return undefined;
  return { taskId: m.taskId, seq: m.seq, sentAt: m.sentAt };
}
