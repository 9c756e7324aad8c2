// transport: the small interface between a node's router and the other nodes.
// Implemented by the in-process loopback (tests, embedded cluster) and by NATS.

import type { Envelope } from "./envelope.js";

export interface ActorTransport {
  readonly nodeId: string;
  /** Delivers to another node's inbox; rejects with MailError("unreachable") when nobody is there. */
  send(toNode: string, envelope: Envelope): Promise<void>;
  /** Installs the handler for this node's inbox (one handler: the router). */
  onReceive(handler: (envelope: Envelope) => void): void;
  close(): Promise<void>;
}
