/** Small waits on simulated daemons shared by the integration tests. */
import type { SimDaemon } from "../../src/sim/index.ts";

let barriers = 0;

/**
 * Resolves once the relay has handled every frame `d` sent before it: frames
 * on one socket are handled in order, and a frame about an unknown task is
 * answered (after the turn's writes are committed).
 */
export async function barrier(d: SimDaemon): Promise<void> {
  const id = `barrier-${++barriers}`;
  d.taskOutput(id, "sync");
  await d.waitFor((f) => f.msg?.code === "notYourTask" && String(f.msg.message).includes(id));
}

/** Matches the spawnTask frame of one task. */
export const isSpawn =
  (taskId: string) =>
  (f: { msg?: { type?: string; taskId?: string } }): boolean =>
    f.msg?.type === "spawnTask" && f.msg.taskId === taskId;

/** Environment for a relay binary on 127.0.0.1 with fast reconnects. */
export function binaryEnv(
  serverUrl: string,
  apiKey: string,
  port: number,
  extra: Record<string, string> = {},
) {
  return {
    MAKIMA_SERVER_URL: serverUrl,
    MAKIMA_API_KEY: apiKey,
    MAKIMA_RELAY_PORT: String(port),
    MAKIMA_RELAY_HOST: "127.0.0.1",
    MAKIMA_RELAY_RECONNECT_BASE_MS: "20",
    MAKIMA_RELAY_RECONNECT_MAX_MS: "200",
    ...extra,
  };
}
