// transport: in-process loopback transport; one hub per cluster (each test makes its own, no global bus).
// Delivers asynchronously and through the wire codec, so mail that works here also survives NATS.

import { decodeEnvelope, type Envelope, encodeEnvelope } from "./envelope.js";
import { MailError } from "./errors.js";
import type { ActorTransport } from "./transport.js";

export class LoopbackHub {
  private readonly inboxes = new Map<string, (envelope: Envelope) => void>();

  connect(nodeId: string): ActorTransport {
    if (this.inboxes.has(nodeId))
      throw new Error(`node id ${nodeId} is already connected to this hub`);
    const hub = this;
    let handler: ((envelope: Envelope) => void) | undefined;
    this.inboxes.set(nodeId, (envelope) => handler?.(envelope));
    return {
      nodeId,
      send(toNode, envelope) {
        const inbox = hub.inboxes.get(toNode);
        if (!inbox) {
          return Promise.reject(
            new MailError("unreachable", `node ${toNode} is not connected`, true),
          );
        }
        const wire = encodeEnvelope(envelope);
        queueMicrotask(() => inbox(decodeEnvelope(wire)));
        return Promise.resolve();
      },
      onReceive(h) {
        handler = h;
      },
      close() {
        hub.inboxes.delete(nodeId);
        return Promise.resolve();
      },
    };
  }
}
