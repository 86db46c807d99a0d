/** The frames the relay writes itself. Everything else it forwards verbatim. */
import type { ErrorCode } from "./messages.ts";

export const encodeError = (code: ErrorCode, message: string): string =>
  JSON.stringify({ type: "error", code, message });

export const encodeAuthenticated = (daemonId: string): string =>
  JSON.stringify({ type: "authenticated", daemonId });

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

export const encodeTaskComplete = (taskId: string, success: boolean, error?: string): string =>
  JSON.stringify(
    error === undefined
      ? { type: "taskComplete", taskId, success }
      : { type: "taskComplete", taskId, success, error },
  );

export const encodeCapacityUpdate = (maxConcurrentTasks: number): string =>
  JSON.stringify({ type: "capacityUpdate", maxConcurrentTasks });
