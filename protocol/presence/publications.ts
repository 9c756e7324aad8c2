// protocol/presence: one presentity's RFC 3903 publications — ETags, expiry, composition order.
// Pure state, clock passed in; the presentity's actor applies requests, arms timers, persists.

import { type PidfDocument, parsePidf, serialisePidf } from "../pidf/pidf.js";

export interface Publication {
  readonly etag: string;
  /** Absolute expiry, ms since the epoch. */
  readonly expiresAt: number;
  readonly document: PidfDocument;
  /** "sip" for PUBLISH, otherwise the name of the presence source. */
  readonly source: string;
}

/**
 * RFC 3903 Table 1 operations. Header checks (Expires bounds → 423, missing body → 400, content
 * type → 415, Event → 489) are the caller's; `expires` is in seconds, already clamped.
 */
export type PublishRequest =
  | { kind: "initial"; document: PidfDocument; expires: number; source?: string }
  | { kind: "refresh"; etag: string; expires: number }
  | { kind: "modify"; etag: string; document: PidfDocument; expires: number }
  | { kind: "remove"; etag: string };

export type PublishResult =
  | {
      ok: true;
      /** The SIP-ETag to return; null when nothing is stored any more (removal, Expires 0). */
      etag: string | null;
      /** Seconds granted (the Expires of the 200). */
      expires: number;
      /** Whether the composed presence state changed (watchers need a NOTIFY). */
      changed: boolean;
    }
  | { ok: false; status: 412; reason: "Conditional Request Failed" };

/** Plain JSON data: documents travel as their PIDF text so any node can rebuild them. */
export interface PublicationSnapshot {
  readonly version: 1;
  readonly publications: readonly {
    readonly etag: string;
    readonly expiresAt: number;
    readonly source: string;
    readonly body: string;
  }[];
}

const PRECONDITION_FAILED: PublishResult = Object.freeze({
  ok: false,
  status: 412,
  reason: "Conditional Request Failed",
});

const ETAG_ATTEMPTS = 8;

export class PublicationStore {
  readonly #newEtag: () => string;
  // Keyed by a slot fixed at the initial publication, so refresh and modify keep the
  // publication's place in the composition order while its ETag changes.
  readonly #slots = new Map<number, Publication>();
  readonly #slotByEtag = new Map<string, number>();
  #nextSlot = 0;
  #list: readonly Publication[] | undefined;

  /** `newEtag` must be unpredictable (crypto-random): an ETag is the publisher's only credential. */
  constructor(newEtag: () => string) {
    this.#newEtag = newEtag;
  }

  get size(): number {
    return this.#slots.size;
  }

  /**
   * Applies one PUBLISH (RFC 3903 §6). Every success but a removal issues a new ETag and retires
   * the old one. A publication whose expiry has passed no longer matches (412) even before
   * `expire` drops it.
   */
  apply(req: PublishRequest, now: number): PublishResult {
    if (req.kind === "initial") {
      // §6 step 5: an expiration of zero stores no event state.
      if (req.expires <= 0) return { ok: true, etag: null, expires: 0, changed: false };
      const etag = this.#issueEtag();
      const slot = this.#nextSlot++;
      this.#set(slot, {
        etag,
        expiresAt: now + req.expires * 1000,
        document: req.document,
        source: req.source ?? "sip",
      });
      return { ok: true, etag, expires: req.expires, changed: true };
    }
    const slot = this.#slotByEtag.get(req.etag);
    const current = slot === undefined ? undefined : this.#slots.get(slot);
    if (slot === undefined || current === undefined || current.expiresAt <= now) {
      return PRECONDITION_FAILED;
    }
    if (req.kind === "remove" || req.expires <= 0) {
      this.#delete(slot, current);
      return { ok: true, etag: null, expires: 0, changed: true };
    }
    const etag = this.#issueEtag();
    this.#slotByEtag.delete(current.etag);
    this.#set(slot, {
      etag,
      expiresAt: now + req.expires * 1000,
      document: req.kind === "modify" ? req.document : current.document,
      source: current.source,
    });
    return { ok: true, etag, expires: req.expires, changed: req.kind === "modify" };
  }

  /** Drops the publications expired at `now` and returns them (composition order). */
  expire(now: number): Publication[] {
    const expired: Publication[] = [];
    for (const [slot, publication] of this.#slots) {
      if (publication.expiresAt > now) continue;
      expired.push(publication);
      this.#delete(slot, publication);
    }
    return expired;
  }

  /** The earliest expiry (ms epoch), for the owner's single timer. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const publication of this.#slots.values()) {
      if (next === undefined || publication.expiresAt < next) next = publication.expiresAt;
    }
    return next;
  }

  /** Publications in first-publication order: the order their documents are composed in. */
  list(): readonly Publication[] {
    this.#list ??= Object.freeze([...this.#slots.values()]);
    return this.#list;
  }

  snapshot(): PublicationSnapshot {
    return {
      version: 1,
      publications: this.list().map((publication) => ({
        etag: publication.etag,
        expiresAt: publication.expiresAt,
        source: publication.source,
        body: serialisePidf(publication.document).toString("utf8"),
      })),
    };
  }

  /** Replaces the whole state with a snapshot's. Throws (PidfError, TypeError) on bad data, leaving the state untouched. */
  restore(snapshot: PublicationSnapshot): void {
    const restored = decodeSnapshot(snapshot);
    this.#slots.clear();
    this.#slotByEtag.clear();
    this.#nextSlot = 0;
    this.#list = undefined;
    for (const publication of restored) this.#set(this.#nextSlot++, publication);
  }

  /**
   * Adds the snapshot's publications whose ETag this store does not hold (a presentity moving
   * home, or two halves of one meeting after a race); returns how many were added. Idempotent.
   */
  merge(snapshot: PublicationSnapshot): number {
    let added = 0;
    for (const publication of decodeSnapshot(snapshot)) {
      if (this.#slotByEtag.has(publication.etag)) continue;
      this.#set(this.#nextSlot++, publication);
      added += 1;
    }
    return added;
  }

  #set(slot: number, publication: Publication): void {
    this.#slots.set(slot, publication);
    this.#slotByEtag.set(publication.etag, slot);
    this.#list = undefined;
  }

  #delete(slot: number, publication: Publication): void {
    this.#slots.delete(slot);
    this.#slotByEtag.delete(publication.etag);
    this.#list = undefined;
  }

  // §6 step 6: a new ETag must differ from every ETag in use for this resource. Differing from
  // every ETag ever issued is left to the generator's randomness (history would grow forever).
  #issueEtag(): string {
    for (let attempt = 0; attempt < ETAG_ATTEMPTS; attempt++) {
      const etag = this.#newEtag();
      if (!this.#slotByEtag.has(etag)) return etag;
    }
    throw new Error("ETag generator keeps returning ETags already in use");
  }
}

function decodeSnapshot(snapshot: PublicationSnapshot): Publication[] {
  if (snapshot.version !== 1 || !Array.isArray(snapshot.publications)) {
    throw new TypeError("unsupported publication snapshot");
  }
  const restored = snapshot.publications.map((entry): Publication => {
    if (typeof entry.etag !== "string" || !Number.isFinite(entry.expiresAt)) {
      throw new TypeError("malformed publication in snapshot");
    }
    return {
      etag: entry.etag,
      expiresAt: entry.expiresAt,
      source: String(entry.source),
      document: parsePidf(Buffer.from(entry.body, "utf8")),
    };
  });
  if (new Set(restored.map((publication) => publication.etag)).size !== restored.length) {
    throw new TypeError("duplicate ETag in publication snapshot");
  }
  return restored;
}
