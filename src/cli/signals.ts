/**
 * Shutdown on SIGINT or SIGTERM: the first signal starts a clean stop, a
 * second one exits at once, and a stop that hangs is cut short so that a
 * supervisor's stop never waits on us for long.
 */

/** A clean stop takes well under a second; past this, exit anyway (we promise 5 s). */
export const SHUTDOWN_DEADLINE_MS = 4500;
export const EXIT_SECOND_SIGNAL = 130;
export const EXIT_STOP_TIMEOUT = 1;

/** Resolves with the name of the first SIGINT or SIGTERM; a second one exits the process. */
export function firstShutdownSignal(): Promise<NodeJS.Signals> {
  const { promise, resolve } = Promise.withResolvers<NodeJS.Signals>();
  let seen = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (seen) process.exit(EXIT_SECOND_SIGNAL);
    seen = true;
    resolve(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return promise;
}

/**
 * SIGHUP re-reads secrets and certificates (relay-reload.ts), as nginx and
 * Caddy do; it never stops the relay. Returns the unsubscribe.
 */
export function onReloadSignal(reload: () => void): () => void {
  const onSignal = (): void => reload();
  process.on("SIGHUP", onSignal);
  return () => process.off("SIGHUP", onSignal);
}

/** Runs `stop`; exits with EXIT_STOP_TIMEOUT if it is not done within the deadline. */
export async function stopWithin(
  stop: () => Promise<void>,
  onTimeout: () => void,
  deadlineMs = SHUTDOWN_DEADLINE_MS,
): Promise<void> {
  const timer = setTimeout(() => {
    onTimeout();
    process.exit(EXIT_STOP_TIMEOUT);
  }, deadlineMs);
  try {
    await stop();
  } finally {
    clearTimeout(timer);
  }
}
