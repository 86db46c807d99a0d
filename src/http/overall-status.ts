/**
 * The one-word status both GET /status and the dashboard report, in a module of
 * its own so the dashboard does not depend on the status routes.
 */
export type OverallStatus = "ok" | "degraded" | "disconnected";

/** disconnected: upstream not authenticated; degraded: authenticated, no daemon; ok: both. */
export function statusOf(authenticated: boolean, daemons: number): OverallStatus {
  if (!authenticated) return "disconnected";
  return daemons > 0 ? "ok" : "degraded";
}
