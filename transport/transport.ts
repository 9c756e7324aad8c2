// transport: the small interface between a node's router and the other nodes.
// Implemented by the in-process loopback (tests, embedded cluster) and by NATS.

import type { Envelope } from "./envelope.js";
import type { MemberInfo } from "./membership.js";

export interface ActorTransport {
  readonly nodeId: string;
  /** Delivers to another node's inbox; rejects with MailError("unreachable") when nobody is there. */
  send(toNode: string, envelope: Envelope): Promise<void>;
  /** Installs the handler for this node's inbox (one handler: the router). */
  onReceive(handler: (envelope: Envelope) => void): void;
  /** Makes this node known to the others, again whenever its info changes. */
  announce(info: MemberInfo): void;
  /** The live members, this node included once it has announced itself. */
  members(): readonly MemberInfo[];
  onMembersChanged(handler: (members: readonly MemberInfo[]) => void): void;
  /** Called after the connection to the cluster was lost and regained: mail may have been lost. */
  onReconnected(handler: () => void): void;
  /** Leaves the cluster (others learn it at once) and closes the connection. */
  close(): Promise<void>;
}
