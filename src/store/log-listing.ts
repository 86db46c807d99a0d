/**
 * What /logs lists (ConnectionLogStore.list), for both stores: the newest
 * rows, except that up to half of the answer is kept for the newest security
 * events, however many other rows came after them. A burst of noise (failed
 * authentications from many addresses, reconnect churn) then cannot push the
 * record of an attack out of sight.
 */
export interface ListedRow {
  id: number;
  security: boolean;
}

/**
 * `newest`: the newest `n` rows of any kind, newest first; `security`: the
 * newest security rows, newest first (at least `n / 2` of them when there
 * are). Returns at most `n` rows, newest first.
 */
export function reserveForSecurity<T extends ListedRow>(
  newest: readonly T[],
  security: readonly T[],
  n: number,
): T[] {
  const reserved = security.slice(0, Math.floor(n / 2));
  const shown = new Set(newest.filter((r) => r.security).map((r) => r.id));
  const missing = reserved.filter((r) => !shown.has(r.id));
  if (missing.length === 0) return newest.slice(0, n);
  // Room for them: leave out as many of the oldest other rows.
  let drop = missing.length - Math.max(0, n - newest.length);
  const kept: T[] = [];
  for (let i = newest.length - 1; i >= 0; i--) {
    const row = newest[i] as T;
    if (drop > 0 && !row.security) drop -= 1;
    else kept.push(row);
  }
  return [...kept, ...missing].sort((a, b) => b.id - a.id);
}
