// bootstrap: this node's view of where presentities live, derived from the cluster membership.
// Candidates are the ready primary/server nodes; pool and draining nodes host no resources.

import type { MemberInfo } from "../transport/membership.js";
import { homeOf } from "../transport/placement.js";

/**
 * How long after a change of the candidate set a new home asks the previous one for a
 * presentity's state before serving it (the previous home pushes too; either way wins).
 */
const HANDOVER_WINDOW_MS = 30_000;

export class Homes {
  private candidates: string[];
  private previous: string[];
  private changedAt = 0;
  private members = new Set<string>();
  private readonly cache = new Map<string, string>();

  constructor(private readonly selfId: string) {
    this.candidates = [selfId];
    this.previous = [selfId];
  }

  /** Adopts a new membership; says whether the candidate set (and so any home) changed. */
  update(members: readonly MemberInfo[]): boolean {
    const next = members
      .filter((m) => m.state === "ready" && (m.role === "primary" || m.role === "server"))
      .map((m) => m.id)
      .sort();
    // With no candidate at all (alone and draining, or only pool nodes) the state stays here.
    const candidates = next.length > 0 ? next : [this.selfId];
    this.members = new Set(members.map((m) => m.id));
    if (candidates.join(",") === this.candidates.join(",")) return false;
    this.previous = this.candidates;
    this.candidates = candidates;
    this.changedAt = Date.now();
    this.cache.clear();
    return true;
  }

  /**
   * Shortly after the candidates changed: the live node that was the presentity's home before,
   * when that is another node (it may still hold the state). Undefined otherwise.
   */
  previousHomeOf(presentity: string, now: number = Date.now()): string | undefined {
    if (now - this.changedAt > HANDOVER_WINDOW_MS) return undefined;
    const before = homeOf(presentity, this.previous);
    return before !== undefined && before !== this.selfId && this.members.has(before)
      ? before
      : undefined;
  }

  homeOf(presentity: string): string {
    let home = this.cache.get(presentity);
    if (home === undefined) {
      home = homeOf(presentity, this.candidates) ?? this.selfId;
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(presentity, home);
    }
    return home;
  }

  /** Whether some node other than this one can take presentities. */
  othersCanHost(): boolean {
    return this.candidates.some((c) => c !== this.selfId);
  }

  list(): readonly string[] {
    return this.candidates;
  }
}
