// transport: actor mail and membership over NATS (@nats-io/transport-node v3), namespaced by cluster.
// Asks are delivered as NATS requests acknowledged on arrival, so a gone node fails fast (no responders).

import {
  connect,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  headers as natsHeaders,
} from "@nats-io/transport-node";
import type { Logger } from "../bootstrap/log.js";
import { decodeEnvelope, type Envelope, encodeEnvelope } from "./envelope.js";
import { MailError } from "./errors.js";
import { type MemberInfo, MemberTable } from "./membership.js";
import type { ActorTransport } from "./transport.js";

export interface NatsTransportOptions {
  /** One or more nats:// URLs (a cluster's seeds; the client learns the rest). */
  servers: string[];
  /** Subjects are `pc.<cluster>.…`: two clusters can share one NATS. */
  cluster: string;
  nodeId: string;
  heartbeatMs: number;
  /** A member silent this long is gone. */
  deadAfterMs: number;
  /** How long a send waits for the receiving node to take the mail. */
  deliveryTimeoutMs: number;
  log: Logger;
}

type MemberMessage = { type: "alive"; info: MemberInfo } | { type: "leave"; id: string };

function parseMember(data: Uint8Array): MemberMessage | undefined {
  try {
    const message = JSON.parse(decoder.decode(data)) as MemberMessage;
    return message.type === "alive" || message.type === "leave" ? message : undefined;
  } catch {
    return undefined;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class NatsTransport implements ActorTransport {
  readonly nodeId: string;
  private readonly table: MemberTable;
  private self: MemberInfo | undefined;
  private receive: ((envelope: Envelope) => void) | undefined;
  private membersChanged: ((members: readonly MemberInfo[]) => void) | undefined;
  private reconnected: (() => void) | undefined;
  private connected = true;
  private readonly timer: NodeJS.Timeout;
  private closing = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly options: NatsTransportOptions,
  ) {
    this.nodeId = options.nodeId;
    this.table = new MemberTable(options.deadAfterMs);
    this.nc.subscribe(this.inboxSubject(options.nodeId), {
      callback: (error, msg) => {
        if (!error) this.onInbox(msg);
      },
    });
    this.nc.subscribe(this.membersSubject(), {
      callback: (error, msg) => {
        if (!error) this.onMembers(msg);
      },
    });
    this.nc.subscribe(this.helloSubject(), {
      callback: (error, msg) => {
        // A node is joining: it learns who we are before it announces itself.
        if (!error && this.self && !this.closing) {
          msg.respond(encoder.encode(JSON.stringify({ type: "alive", info: this.self })));
        }
      },
    });
    this.timer = setInterval(() => this.tick(), options.heartbeatMs);
    this.timer.unref();
    void this.watchStatus();
  }

  static async connect(options: NatsTransportOptions): Promise<NatsTransport> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: options.servers,
        name: `presence-cluster ${options.cluster}/${options.nodeId}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 2_000,
        maxPingOut: 2,
      });
    } catch (error) {
      throw new Error(
        `cannot connect to NATS at ${options.servers.join(", ")} (--nats): is nats-server running there?`,
        { cause: error },
      );
    }
    const transport = new NatsTransport(nc, options);
    await nc.flush();
    await transport.discover();
    return transport;
  }

  /**
   * Learns the current members before this node takes part: a node that acted on a partial
   * view would place presentities where the others do not expect them.
   */
  private async discover(): Promise<void> {
    const answers = await this.nc.requestMany(this.helloSubject(), encoder.encode(this.nodeId), {
      strategy: "stall",
      stall: 150,
      maxWait: Math.max(500, this.options.heartbeatMs * 2),
    });
    const now = Date.now();
    try {
      for await (const msg of answers) {
        const message = parseMember(msg.data);
        if (message?.type === "alive" && message.info.id !== this.nodeId) {
          this.table.upsert(message.info, now);
        }
      }
    } catch (error) {
      // No responders: this node is the first of its cluster.
      if (!hasNoResponders(error)) throw error;
    }
  }

  send(toNode: string, envelope: Envelope): Promise<void> {
    const data = encodeEnvelope(envelope);
    const hdrs = natsHeaders();
    hdrs.set("pc-id", envelope.id);
    hdrs.set("pc-from", envelope.from);
    if (envelope.traceparent) hdrs.set("traceparent", envelope.traceparent);
    const subject = this.inboxSubject(toNode);
    if (!envelope.replyTo) {
      // Fire-and-forget mail: at most once, like any core NATS message. The client throws at
      // once for a payload over the server's max_payload: that must not escape the router.
      try {
        this.nc.publish(subject, data, { headers: hdrs });
      } catch (error) {
        return Promise.reject(refused(toNode, data.length, error));
      }
      return Promise.resolve();
    }
    let request: Promise<unknown>;
    try {
      request = this.nc.request(subject, data, {
        timeout: this.options.deliveryTimeoutMs,
        headers: hdrs,
      });
    } catch (error) {
      return Promise.reject(refused(toNode, data.length, error));
    }
    return request.then(
      () => undefined,
      (error: unknown) => {
        const gone = error instanceof NoRespondersError || hasNoResponders(error);
        throw new MailError(
          "unreachable",
          gone
            ? `node ${toNode} is not connected to the cluster`
            : `node ${toNode} did not take the mail within ${this.options.deliveryTimeoutMs} ms`,
          true,
          { cause: error },
        );
      },
    );
  }

  onReceive(handler: (envelope: Envelope) => void): void {
    this.receive = handler;
  }

  announce(info: MemberInfo): void {
    this.self = info;
    this.publishMembers({ type: "alive", info });
    if (this.table.upsert(info, Date.now())) this.emitMembers();
  }

  members(): readonly MemberInfo[] {
    return this.table.list();
  }

  onMembersChanged(handler: (members: readonly MemberInfo[]) => void): void {
    this.membersChanged = handler;
  }

  onReconnected(handler: () => void): void {
    this.reconnected = handler;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.timer);
    this.publishMembers({ type: "leave", id: this.nodeId });
    try {
      await this.nc.drain();
    } catch (error) {
      this.options.log.debug("NATS drain failed; closing", { error });
      await this.nc.close();
    }
  }

  private inboxSubject(node: string): string {
    return `pc.${this.options.cluster}.node.${node}`;
  }

  private membersSubject(): string {
    return `pc.${this.options.cluster}.members`;
  }

  private helloSubject(): string {
    return `pc.${this.options.cluster}.hello`;
  }

  private onInbox(msg: Msg): void {
    // Acknowledge arrival first: the sender's ask waits for it (never for the actor's answer).
    if (msg.reply) msg.respond();
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(msg.data);
    } catch (error) {
      this.options.log.warn("dropped NATS message that is not an envelope", {
        subject: msg.subject,
        error,
      });
      return;
    }
    this.receive?.(envelope);
  }

  private onMembers(msg: Msg): void {
    const message = parseMember(msg.data);
    if (!message) return;
    const now = Date.now();
    switch (message.type) {
      case "alive":
        if (message.info.id === this.nodeId) return;
        if (this.table.upsert(message.info, now)) this.emitMembers();
        return;
      case "leave":
        if (message.id !== this.nodeId && this.table.remove(message.id)) this.emitMembers();
        return;
    }
  }

  private tick(): void {
    if (!this.self || this.closing) return;
    this.publishMembers({ type: "alive", info: this.self });
    this.table.upsert(this.self, Date.now());
    // While our own connection is down we hear nobody: that says nothing about the others.
    if (this.connected && this.table.expire(Date.now(), this.nodeId)) this.emitMembers();
  }

  private publishMembers(message: MemberMessage): void {
    if (this.nc.isClosed()) return;
    this.nc.publish(this.membersSubject(), encoder.encode(JSON.stringify(message)));
  }

  private emitMembers(): void {
    const members = this.table.list();
    queueMicrotask(() => this.membersChanged?.(members));
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      switch (status.type) {
        case "disconnect":
          this.connected = false;
          this.options.log.warn("NATS connection lost; reconnecting", { server: status.server });
          break;
        case "reconnect":
          this.connected = true;
          this.table.refreshAll(Date.now());
          this.options.log.info("NATS connection back", { server: status.server });
          if (this.self) this.publishMembers({ type: "alive", info: this.self });
          this.reconnected?.();
          break;
        default:
          break;
      }
    }
  }
}

/** A send the client refused before it left (too large for the server's max_payload, closed). */
function refused(toNode: string, bytes: number, error: unknown): MailError {
  return new MailError(
    "refused",
    `mail of ${bytes} bytes to node ${toNode} not sent: ${error instanceof Error ? error.message : String(error)}`,
    false,
    { cause: error },
  );
}

function hasNoResponders(error: unknown): boolean {
  let current: unknown = error;
  while (current instanceof Error) {
    if (current instanceof NoRespondersError || current.name === "NoRespondersError") return true;
    current = current.cause;
  }
  return false;
}
