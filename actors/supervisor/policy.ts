// actors/supervisor: the supervisor's decisions as pure functions over its load table.
// Placement of a new watcher, promotion of a pool server, scale-in (drain) and failure detection.

/** One active server as the supervisor sees it (the primary is one of them). */
export interface ServerLoadEntry {
  id: string;
  /** Current load level: the last report plus what was assigned since (assignments count at once). */
  load: number;
  /** Control session up, not draining, not dead: may take new watchers. */
  ready: boolean;
  /** ms epoch of the last load report (or of the session coming up). */
  lastReport: number;
  primary: boolean;
}

export interface PolicySettings {
  maxLoad: number;
  minLoad: number;
  /** A server silent this long after its last report is dead. */
  deadAfterMs: number;
  /** Load must stay below min-load this long before a server is drained. */
  scaleInAfterMs: number;
  /** No drain this soon after a promotion or a drain, and no promotion this soon after a drain. */
  cooldownMs: number;
}

export type PlaceReason = "sticky" | "least-loaded" | "overloaded";

export interface Placement {
  server: string;
  reason: PlaceReason;
}

/**
 * The server for a new watcher: the server the same user was given before while it is ready
 * (all of a user's subscriptions go to one server), else the least-loaded ready server (ties
 * by id). `overloaded` when every ready server is above max-load (the least-loaded still serves:
 * a watcher is never refused for load). Undefined when no server is ready.
 */
export function placeWatcher(
  servers: readonly ServerLoadEntry[],
  sticky: string | undefined,
  settings: Pick<PolicySettings, "maxLoad">,
): Placement | undefined {
  const ready = servers.filter((s) => s.ready);
  if (sticky !== undefined && ready.some((s) => s.id === sticky)) {
    return { server: sticky, reason: "sticky" };
  }
  const best = [...ready].sort((a, b) => a.load - b.load || a.id.localeCompare(b.id))[0];
  if (!best) return undefined;
  return { server: best.id, reason: best.load > settings.maxLoad ? "overloaded" : "least-loaded" };
}

/** Every ready server is above max-load (the paper's trigger for adding a server). */
export function allAboveMax(
  servers: readonly ServerLoadEntry[],
  settings: Pick<PolicySettings, "maxLoad">,
): boolean {
  const ready = servers.filter((s) => s.ready);
  return ready.length > 0 && ready.every((s) => s.load > settings.maxLoad);
}

export type PromotionDecision =
  | { type: "promote"; pool: string }
  | { type: "pool-exhausted" }
  | { type: "none" };

/**
 * Whether to promote, and which pool server: the first by id of the `<svr-pool>`, never while
 * a promotion is under way, and not right after a drain (no oscillation).
 */
export function decidePromotion(
  servers: readonly ServerLoadEntry[],
  pool: readonly string[],
  promoting: boolean,
  lastChangeAt: number,
  now: number,
  settings: Pick<PolicySettings, "maxLoad" | "cooldownMs">,
): PromotionDecision {
  if (promoting || !allAboveMax(servers, settings)) return { type: "none" };
  if (now - lastChangeAt < settings.cooldownMs) return { type: "none" };
  const next = [...pool].sort()[0];
  return next === undefined ? { type: "pool-exhausted" } : { type: "promote", pool: next };
}

/**
 * Scale-in: when every ready server has been below min-load for `scaleInAfterMs` (tracked by
 * the caller as `lowSince`) and the load fits on one server fewer with room to spare (the sum
 * stays under half of max-load per remaining server — hysteresis against flapping), drain the
 * least-loaded non-primary server. Never below one server; never during a promotion or drain.
 */
export function decideDrain(
  servers: readonly ServerLoadEntry[],
  lowSince: number | undefined,
  busy: boolean,
  lastChangeAt: number,
  now: number,
  settings: Pick<PolicySettings, "maxLoad" | "minLoad" | "scaleInAfterMs" | "cooldownMs">,
): string | undefined {
  if (busy || lowSince === undefined) return undefined;
  if (now - lowSince < settings.scaleInAfterMs || now - lastChangeAt < settings.cooldownMs) {
    return undefined;
  }
  const ready = servers.filter((s) => s.ready);
  if (ready.length <= 1) return undefined;
  const total = ready.reduce((sum, s) => sum + s.load, 0);
  if (total > ((ready.length - 1) * settings.maxLoad) / 2) return undefined;
  const candidate = ready
    .filter((s) => !s.primary)
    .sort((a, b) => a.load - b.load || b.id.localeCompare(a.id))[0];
  return candidate?.id;
}

/** Whether every ready server is below min-load right now (starts or resets the caller's `lowSince`). */
export function allBelowMin(
  servers: readonly ServerLoadEntry[],
  settings: Pick<PolicySettings, "minLoad">,
): boolean {
  const ready = servers.filter((s) => s.ready);
  return ready.length > 1 && ready.every((s) => s.load < settings.minLoad);
}

/** Servers whose reports stopped: silent longer than `deadAfterMs` (the primary never is). */
export function silentServers(
  servers: readonly ServerLoadEntry[],
  now: number,
  settings: Pick<PolicySettings, "deadAfterMs">,
): string[] {
  return servers
    .filter((s) => !s.primary && s.ready && now - s.lastReport > settings.deadAfterMs)
    .map((s) => s.id);
}
