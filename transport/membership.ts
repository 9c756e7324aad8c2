// transport: cluster membership as data — which nodes are alive, with which role and addresses.
// The table is pure (the clock is passed in); transports feed it heartbeats, joins and leaves.

/** What a node tells the others about itself. */
export interface MemberInfo {
  id: string;
  role: string;
  /** SIP host:port (UDP and TCP). */
  sip: string;
  /** Admin HTTP host:port. */
  http: string;
  state: "ready" | "draining";
  /** ms epoch of the node's start: a restarted node is a new incarnation. */
  startedAt: number;
}

function sameInfo(a: MemberInfo, b: MemberInfo): boolean {
  return (
    a.role === b.role &&
    a.sip === b.sip &&
    a.http === b.http &&
    a.state === b.state &&
    a.startedAt === b.startedAt
  );
}

/**
 * Live members by id. A member not heard from within `deadAfterMs` is dropped by `expire`;
 * every mutating call says whether the membership as others see it changed.
 */
export class MemberTable {
  private readonly entries = new Map<string, { info: MemberInfo; lastSeen: number }>();

  constructor(private readonly deadAfterMs: number) {}

  upsert(info: MemberInfo, now: number): boolean {
    const known = this.entries.get(info.id);
    this.entries.set(info.id, { info, lastSeen: now });
    return !known || !sameInfo(known.info, info);
  }

  remove(id: string): boolean {
    return this.entries.delete(id);
  }

  /** Drops members silent for too long, except `keep` (this node itself). */
  expire(now: number, keep: string): boolean {
    let changed = false;
    for (const [id, entry] of this.entries) {
      if (id !== keep && now - entry.lastSeen > this.deadAfterMs) {
        this.entries.delete(id);
        changed = true;
      }
    }
    return changed;
  }

  /** Treats every member as just heard from (after our own connection was down). */
  refreshAll(now: number): void {
    for (const entry of this.entries.values()) entry.lastSeen = now;
  }

  list(): MemberInfo[] {
    return [...this.entries.values()].map((e) => e.info).sort((a, b) => a.id.localeCompare(b.id));
  }
}
