// bootstrap: this node's view of where presentities live, derived from the cluster membership.
// Candidates are the ready primary/server nodes; pool and draining nodes host no resources.

import type { MemberInfo } from "../transport/membership.js";
import { homeOf } from "../transport/placement.js";

export class Homes {
  private candidates: string[];
  private readonly cache = new Map<string, string>();

  constructor(private readonly selfId: string) {
    this.candidates = [selfId];
  }

  /** Adopts a new membership; says whether the candidate set (and so any home) changed. */
  update(members: readonly MemberInfo[]): boolean {
    const next = members
      .filter((m) => m.state === "ready" && (m.role === "primary" || m.role === "server"))
      .map((m) => m.id)
      .sort();
    // With no candidate at all (alone and draining, or only pool nodes) the state stays here.
    const candidates = next.length > 0 ? next : [this.selfId];
    if (candidates.join(",") === this.candidates.join(",")) return false;
    this.candidates = candidates;
    this.cache.clear();
    return true;
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
