/**
 * Reading the relay's operator surfaces (/ready, /status, /metrics) from
 * integration tests, and waiting for one of them to change. The relay says
 * when its storage fails or recovers in a log line, so the tests wait for that
 * line and then check that every surface agrees; `pollUntil` is for the rare
 * state that has no event to wait for.
 */
import type { TestRelay } from "./relay.ts";

export interface Ready {
  status: number;
  ready: boolean;
  reasons: string[];
}

export async function ready(relay: TestRelay): Promise<Ready> {
  const res = await relay.get("/ready");
  const body = (await res.json()) as { ready: boolean; reasons: string[] };
  return { status: res.status, ...body };
}

/** The value of one unlabelled sample of `/metrics` (prefix included), or undefined. */
export async function metric(relay: TestRelay, name: string): Promise<number | undefined> {
  const text = await (await relay.get("/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * Polls `read` every `everyMs` until `done` holds; rejects after `timeoutMs`
 * with the last value seen. For state that changes without an event to wait
 * for (an HTTP surface, a socket being paused).
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 5000,
  everyMs = 20,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (done(last)) return last;
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${done.toString()}; last: ${JSON.stringify(last)}`,
      );
    }
    await Bun.sleep(everyMs);
  }
}

/** Resolves after `ms`; only for "nothing happens meanwhile" checks, never to wait for an event. */
export const quietFor = (ms: number): Promise<void> => Bun.sleep(ms);
