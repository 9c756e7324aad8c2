// actors: the node-local services actor kinds are given at spawn time (never sent in mail).
// SIP I/O goes through SipPort; counters through NodeStats; settings through PresenceSettings.

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

/** Distinct watchers (subscribers' AORs) with a subscription here: the paper's users of a server. */
export class WatcherTally {
  readonly #subscriptions = new Map<string, number>();

  add(watcher: string): void {
    this.#subscriptions.set(watcher, (this.#subscriptions.get(watcher) ?? 0) + 1);
  }

  remove(watcher: string): void {
    const left = (this.#subscriptions.get(watcher) ?? 0) - 1;
    if (left > 0) this.#subscriptions.set(watcher, left);
    else this.#subscriptions.delete(watcher);
  }

  get size(): number {
    return this.#subscriptions.size;
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
