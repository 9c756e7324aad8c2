// actors: the node-local services actor kinds are given at spawn time (never sent in mail).
// SIP I/O goes through SipPort; counters through NodeStats; settings through PresenceSettings.

import { presentityOf } from "../protocol/presence/presentity.js";
import type {
  NameAddr,
  Peer,
  SipRequest,
  SipResponse,
  TransportName,
} from "../protocol/sip/message.js";

/** A response an actor asks the SIP edge to send for a pending server transaction. */
export interface ResponseSpec {
  status: number;
  reason: string;
  headers?: Record<string, string | NameAddr[]>;
  /** Sets the To tag of the response (dialog-creating responses). */
  toTag?: string;
  body?: Buffer;
  contentType?: string;
}

/** The node's SIP endpoint as actors see it. */
export interface SipPort {
  /** Answers the server transaction `tx` (a key the ingress put in the mail); a no-op if it is gone. */
  respond(tx: string, response: ResponseSpec): void;
  /** Sends a request in a client transaction; resolves with the final response (408/503 synthesised). */
  request(request: SipRequest, hop: Peer): Promise<SipResponse>;
  /** Our Contact URI for dialogs created over `transport`. */
  contact(transport: TransportName): string;
}

/**
 * Distinct watchers (subscribers' AORs) with a subscription here: the paper's users of a server.
 * Keyed by AOR (`sip:user@host`), so that a user's subscriptions from several ports are one user.
 */
export class WatcherTally {
  readonly #subscriptions = new Map<string, number>();

  add(watcher: string): void {
    const key = aorOf(watcher);
    this.#subscriptions.set(key, (this.#subscriptions.get(key) ?? 0) + 1);
  }

  remove(watcher: string): void {
    const key = aorOf(watcher);
    const left = (this.#subscriptions.get(key) ?? 0) - 1;
    if (left > 0) this.#subscriptions.set(key, left);
    else this.#subscriptions.delete(key);
  }

  has(watcher: string): boolean {
    return this.#subscriptions.has(aorOf(watcher));
  }

  get size(): number {
    return this.#subscriptions.size;
  }
}

function aorOf(uri: string): string {
  return presentityOf(uri) ?? uri;
}

/** 64 × T1 (Timer B): a placed user that has not subscribed by then has given up. */
export const ARRIVAL_MS = 32_000;

/**
 * Users a server was told to expect (the primary placed them there) and that have not arrived:
 * counted in its load until they subscribe or `ttlMs` passes (a client that has not followed its
 * 302 by then has given up), so that no load figure taken in between forgets the placement.
 */
export class ExpectedUsers {
  /** User → when to stop expecting them, in the order they were expected. */
  readonly #until = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly ttlMs = ARRIVAL_MS,
  ) {}

  expect(user: string, now: number): void {
    this.#until.delete(user);
    this.#until.set(user, now + this.ttlMs);
    if (this.#until.size > this.max) {
      const oldest = this.#until.keys().next().value;
      if (oldest !== undefined) this.#until.delete(oldest);
    }
  }

  /** How many are still on their way; those that `arrived` or whose time is up are forgotten. */
  pending(arrived: (user: string) => boolean, now: number): number {
    for (const [user, until] of this.#until) {
      if (until <= now || arrived(user)) this.#until.delete(user);
    }
    return this.#until.size;
  }

  clear(): void {
    this.#until.clear();
  }
}

export interface NodeStats {
  subscriptions: number;
  presentities: number;
  publications: number;
  notifiesSent: number;
  notifiesFailed: number;
  publishesApplied: number;
  actorCrashes: number;
  /** Cross-node presence-changed messages sent by home resources (one per watching node). */
  fanoutMessages: number;
  /** Presentities whose state this node handed to a new home. */
  resourcesMoved: number;
}

export function newNodeStats(): NodeStats {
  return {
    subscriptions: 0,
    presentities: 0,
    publications: 0,
    notifiesSent: 0,
    notifiesFailed: 0,
    publishesApplied: 0,
    actorCrashes: 0,
    fanoutMessages: 0,
    resourcesMoved: 0,
  };
}

export interface PresenceSettings {
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
  /** NOTIFYs queued for one subscription before intermediate states are coalesced. */
  maxQueuedNotifies: number;
  maxMailbox: number;
}
