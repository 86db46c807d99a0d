/** The frames the relay writes itself. Everything else it forwards verbatim. */
import type { ErrorCode } from "./messages.ts";

export const encodeError = (code: ErrorCode, message: string): string =>
  JSON.stringify({ type: "error", code, message });

/** `maxFrameBytes` only to child relays (relay-to-relay extension): the largest frame they may send us. */
export const encodeAuthenticated = (daemonId: string, maxFrameBytes?: number): string =>
  JSON.stringify(
    maxFrameBytes === undefined
      ? { type: "authenticated", daemonId }
      : { type: "authenticated", daemonId, maxFrameBytes },
  );

export interface RelayIdentity {
  apiKey: string;
  machineId: string;
  hostname: string;
  maxConcurrentTasks: number;
}

export const encodeAuthenticate = (id: RelayIdentity): string =>
  JSON.stringify({ type: "authenticate", ...id, role: "relay" });

export const encodeHeartbeat = (activeTasks: readonly string[]): string =>
  JSON.stringify({ type: "heartbeat", activeTasks });

const PART_OPEN = '{"type":"heartbeat","activeTasks":[';
const PART_MORE = '],"more":true}';
const PART_LAST = "]}";

/**
 * The relay's heartbeat as frames of at most `maxBytes` UTF-8 bytes each
 * (docs/protocol.md "Heartbeat parts"): one frame when it fits or when the
 * peer announced no limit (the Makima server expects one heartbeat listing
 * everything); otherwise parts, all but the last marked `"more":true`, that
 * together list every id once, in order. An id too long to fit in any part
 * alone cannot be listed: it is returned in `unlisted`.
 */
export function encodeHeartbeatParts(
  activeTasks: readonly string[],
  maxBytes: number | null,
): { parts: string[]; unlisted: string[] } {
  const whole = encodeHeartbeat(activeTasks);
  // A UTF-8 byte is at least a UTF-16 unit, at most three: most heartbeats skip the count.
  if (maxBytes === null || whole.length * 3 <= maxBytes || Buffer.byteLength(whole) <= maxBytes)
    return { parts: [whole], unlisted: [] };
  const room = maxBytes - PART_OPEN.length - PART_MORE.length;
  const chunks: string[][] = [];
  const unlisted: string[] = [];
  let chunk: string[] = [];
  let used = 0;
  for (const id of activeTasks) {
    const encoded = JSON.stringify(id);
    const bytes = Buffer.byteLength(encoded);
    if (bytes > room) {
      unlisted.push(id);
      continue;
    }
    if (chunk.length > 0 && used + 1 + bytes > room) {
      chunks.push(chunk);
      chunk = [];
      used = 0;
    }
    used += (chunk.length > 0 ? 1 : 0) + bytes;
    chunk.push(encoded);
  }
  chunks.push(chunk);
  const parts = chunks.map(
    (c, i) => PART_OPEN + c.join(",") + (i === chunks.length - 1 ? PART_LAST : PART_MORE),
  );
  return { parts, unlisted };
}

export const encodeTaskComplete = (taskId: string, success: boolean, error?: string): string =>
  JSON.stringify(
    error === undefined
      ? { type: "taskComplete", taskId, success }
      : { type: "taskComplete", taskId, success, error },
  );

export const encodeCapacityUpdate = (maxConcurrentTasks: number): string =>
  JSON.stringify({ type: "capacityUpdate", maxConcurrentTasks });
