// transport: in-process loopback transport; one hub per cluster (each test makes its own, no global bus).
// Delivers asynchronously and through the wire codec, so mail that works here also survives NATS.

import { decodeEnvelope, type Envelope, encodeEnvelope } from "./envelope.js";
import { MailError } from "./errors.js";
import type { MemberInfo } from "./membership.js";
import type { ActorTransport } from "./transport.js";

interface Connected {
  inbox: (envelope: Envelope) => void;
  membersChanged: (members: readonly MemberInfo[]) => void;
}

export class LoopbackHub {
  private readonly nodes = new Map<string, Connected>();
  private readonly infos = new Map<string, MemberInfo>();

  connect(nodeId: string): ActorTransport {
    if (this.nodes.has(nodeId))
      throw new Error(`node id ${nodeId} is already connected to this hub`);
    const hub = this;
    let handler: ((envelope: Envelope) => void) | undefined;
    let onMembers: ((members: readonly MemberInfo[]) => void) | undefined;
    this.nodes.set(nodeId, {
      inbox: (envelope) => handler?.(envelope),
      membersChanged: (members) => onMembers?.(members),
    });
    return {
      nodeId,
      send(toNode, envelope) {
        const target = hub.nodes.get(toNode);
        if (!target) {
          return Promise.reject(
            new MailError("unreachable", `node ${toNode} is not connected`, true),
          );
        }
        const wire = encodeEnvelope(envelope);
        queueMicrotask(() => target.inbox(decodeEnvelope(wire)));
        return Promise.resolve();
      },
      onReceive(h) {
        handler = h;
      },
      announce(info) {
        hub.infos.set(nodeId, info);
        hub.broadcast();
      },
      members: () => hub.list(),
      onMembersChanged(h) {
        onMembers = h;
      },
      onReconnected() {},
      close() {
        hub.nodes.delete(nodeId);
        if (hub.infos.delete(nodeId)) hub.broadcast();
        return Promise.resolve();
      },
    };
  }

  private list(): MemberInfo[] {
    return [...this.infos.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  private broadcast(): void {
    const members = this.list();
    for (const node of this.nodes.values()) queueMicrotask(() => node.membersChanged(members));
  }
}
