// transport: the router, the only place that decides whether mail is delivered locally or sent to
// another node. Owns local bindings, spawn-on-demand per actor kind, asks with our own correlation ids.

import { randomBytes } from "node:crypto";
import type { Logger } from "../bootstrap/log.js";
import {
  type Address,
  addressKey,
  type Envelope,
  formatAddress,
  REPLY_KIND,
  type ReplyBody,
  type ReplyTo,
} from "./envelope.js";
import { errorFromWire, MailError, toWireError } from "./errors.js";
import {
  currentTrace,
  produce,
  type SpanAttributes,
  traceparentOf,
  tracingEnabled,
} from "./tracing.js";
import type { ActorTransport } from "./transport.js";

/** Something mail can be handed to on this node (an actor's mailbox). */
export interface LocalTarget {
  /** Enqueues the mail; throws MailError("overloaded") when the mailbox is full. */
  deliver(envelope: Envelope): void;
}

/** Creates the actor for an address of its kind on first mail (e.g. a presentity's resource). */
export type ActorFactory = (address: Address) => LocalTarget | undefined;

/** Where the actor of an id of a placed kind lives now (its home node). */
export type Placement = (id: string) => string;

/** Mail forwarded more often than this is delivered where it is (two nodes disagreeing on a home). */
const MAX_HOPS = 3;

export interface RouterStats {
  localDelivered: number;
  forwarded: number;
  remoteSent: number;
  remoteReceived: number;
  dropped: number;
  askTimeouts: number;
}

interface PendingAsk {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  to: Address;
}

export interface RouterOptions {
  nodeId: string;
  transport: ActorTransport;
  log: Logger;
  askTimeoutMs: number;
  /** Told the age (ms since `sentAt`) of every piece of mail that arrives from another node. */
  mailLatency?: (ms: number) => void;
  /** Attributes of every span of this node (its id and current role). */
  spanAttributes?: () => SpanAttributes;
  /** A PRODUCER/CONSUMER span pair for mail within the node too (default: only between nodes). */
  traceLocalMail?: boolean;
}

export interface SendOptions {
  replyTo?: ReplyTo;
  /** Deliver at `to.node` even if that node places the actor elsewhere. */
  pinned?: boolean;
  /** Names the mail's PRODUCER span and starts a trace for it even outside one (CCMP messages). */
  span?: MailSpan;
}

export interface MailSpan {
  name: string;
  attributes: SpanAttributes;
}

let sequence = 0;
const idPrefix = randomBytes(6).toString("base64url");

function nextId(): string {
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${idPrefix}.${sequence.toString(36)}`;
}

export class Router {
  readonly nodeId: string;
  private readonly transport: ActorTransport;
  private readonly log: Logger;
  private readonly askTimeoutMs: number;
  /** Attributes of every span of this node: mail hops here, actors' spans through their context. */
  readonly spanAttributes: () => SpanAttributes;
  private readonly traceLocalMail: boolean;
  private readonly bound = new Map<string, LocalTarget>();
  private readonly factories = new Map<string, ActorFactory>();
  private readonly placements = new Map<string, Placement>();
  private readonly pending = new Map<string, PendingAsk>();
  private readonly counters: RouterStats = {
    localDelivered: 0,
    forwarded: 0,
    remoteSent: 0,
    remoteReceived: 0,
    dropped: 0,
    askTimeouts: 0,
  };

  constructor(options: RouterOptions) {
    this.nodeId = options.nodeId;
    this.transport = options.transport;
    this.log = options.log;
    this.askTimeoutMs = options.askTimeoutMs;
    const own = { "presence.node.id": options.nodeId };
    this.spanAttributes = options.spanAttributes ?? (() => own);
    this.traceLocalMail = options.traceLocalMail ?? false;
    const latency = options.mailLatency;
    this.transport.onReceive((envelope) => {
      this.counters.remoteReceived += 1;
      latency?.(Date.now() - envelope.sentAt);
      this.deliverLocal(envelope);
    });
  }

  address(kind: string, id: string, node: string = this.nodeId): Address {
    return { node, kind, id };
  }

  bind(address: Address, target: LocalTarget): void {
    this.bound.set(addressKey(address), target);
  }

  unbind(address: Address): void {
    this.bound.delete(addressKey(address));
  }

  isBound(address: Address): boolean {
    return this.bound.has(addressKey(address));
  }

  /** Registers the spawn-on-demand factory of a kind: mail to an unbound address of it creates the actor. */
  onDemand(kind: string, factory: ActorFactory): void {
    this.factories.set(kind, factory);
  }

  /**
   * Declares a kind as placed: mail for an id of it that has no actor here goes to the id's home
   * when that is another node (the sender's view of the home may be older than ours).
   */
  placed(kind: string, placement: Placement): void {
    this.placements.set(kind, placement);
  }

  /** The home node of an id of a placed kind (this node for kinds that are not placed). */
  homeOf(kind: string, id: string): string {
    return this.placements.get(kind)?.(id) ?? this.nodeId;
  }

  /** Re-sends mail, unchanged but for its node and hop count, to the same actor on `node`. */
  forward(envelope: Envelope, node: string): void {
    this.redirect(envelope, { ...envelope.to, node });
  }

  /** Re-sends mail, reply target and trace context included, to another address. */
  redirect(envelope: Envelope, to: Address): void {
    const hops = (envelope.hops ?? 0) + 1;
    this.counters.forwarded += 1;
    const { trace: local, ...rest } = envelope;
    const onward: Envelope = { ...rest, to, hops };
    if (local && to.node === this.nodeId) onward.trace = local;
    else if (local) {
      // Local mail sent on to another node takes its sender's context along as a traceparent.
      const traceparent = traceparentOf(local);
      if (traceparent) onward.traceparent = traceparent;
    }
    this.transmit(onward);
  }

  /**
   * Fire-and-forget mail. Never throws: undeliverable mail is logged, counted and dropped. Inside
   * a trace, mail to another node (and mail with a span of its own, or all mail with
   * `traceLocalMail`) gets a PRODUCER span whose context rides in the envelope's traceparent;
   * other local mail carries the sender's context itself and its mailbox continues it.
   */
  send(to: Address, body: unknown, options: SendOptions = {}): void {
    const id = nextId();
    const traced = tracingEnabled() && to.kind !== REPLY_KIND;
    const spanned =
      traced && (to.node !== this.nodeId || options.span !== undefined || this.traceLocalMail);
    const producer = spanned
      ? produce(
          () => options.span?.name ?? `send ${to.kind}`,
          () => [
            this.spanAttributes(),
            { "presence.mail.to": formatAddress(to), "messaging.message.id": id },
            options.span?.attributes,
          ],
          options.span !== undefined,
        )
      : undefined;
    const local = traced && !spanned ? currentTrace() : undefined;
    const envelope: Envelope = {
      id,
      from: this.nodeId,
      to,
      body,
      sentAt: Date.now(),
      ...(options.replyTo ? { replyTo: options.replyTo } : {}),
      ...(producer ? { traceparent: producer.traceparent } : {}),
      ...(local ? { trace: local } : {}),
      ...(options.pinned ? { pinned: true } : {}),
    };
    this.transmit(envelope);
    producer?.end();
  }

  private transmit(envelope: Envelope): void {
    if (envelope.to.node === this.nodeId) {
      this.deliverLocal(envelope);
      return;
    }
    this.counters.remoteSent += 1;
    this.transport.send(envelope.to.node, envelope).catch((error: unknown) => {
      this.counters.dropped += 1;
      this.log.warn("mail not delivered", { to: formatAddress(envelope.to), error });
      if (envelope.replyTo?.node === this.nodeId) this.failAsk(envelope, error);
      else this.reply(envelope.replyTo, { ok: false, error: toWireError(error) });
    });
  }

  /**
   * Request/reply with our own correlation ids (nact's 32-bit query ids collide under load).
   * Rejects with MailError: "no-actor", "unreachable" (fast, never a hang), "timeout", or the
   * replying actor's own error rebuilt from data.
   */
  ask<R>(
    to: Address,
    body: unknown,
    timeoutMs: number = this.askTimeoutMs,
    options: { pinned?: boolean; span?: MailSpan } = {},
  ): Promise<R> {
    const correlationId = nextId();
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(correlationId)) return;
        this.counters.askTimeouts += 1;
        reject(
          new MailError(
            "timeout",
            `no answer from ${formatAddress(to)} within ${timeoutMs} ms`,
            true,
          ),
        );
      }, timeoutMs);
      this.pending.set(correlationId, {
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
        to,
      });
      this.send(to, body, { ...options, replyTo: { node: this.nodeId, correlationId } });
    });
  }

  /** Answers an ask; a no-op for mail that was not an ask. */
  reply(replyTo: ReplyTo | undefined, result: ReplyBody): void {
    if (!replyTo) return;
    this.send({ node: replyTo.node, kind: REPLY_KIND, id: replyTo.correlationId }, result);
  }

  stats(): RouterStats {
    return { ...this.counters };
  }

  /** Rejects every pending ask (node shutting down). */
  close(): void {
    for (const [id, ask] of this.pending) {
      clearTimeout(ask.timer);
      ask.reject(new MailError("unreachable", "router closed", true));
      this.pending.delete(id);
    }
  }

  private deliverLocal(envelope: Envelope): void {
    if (envelope.to.kind === REPLY_KIND) {
      this.completeAsk(envelope.to.id, envelope.body as ReplyBody);
      return;
    }
    const key = addressKey(envelope.to);
    let target = this.bound.get(key);
    if (!target) {
      const home = this.placements.get(envelope.to.kind)?.(envelope.to.id);
      const movable = !envelope.pinned && (envelope.hops ?? 0) < MAX_HOPS;
      if (home !== undefined && home !== this.nodeId && movable) {
        this.forward(envelope, home);
        return;
      }
      target = this.factories.get(envelope.to.kind)?.(envelope.to);
      if (target) this.bound.set(key, target);
    }
    if (!target) {
      this.drop(
        envelope,
        new MailError("no-actor", `no actor at ${formatAddress(envelope.to)}`, false),
      );
      return;
    }
    try {
      target.deliver(envelope);
      this.counters.localDelivered += 1;
    } catch (error) {
      this.drop(envelope, error);
    }
  }

  private drop(envelope: Envelope, error: unknown): void {
    this.counters.dropped += 1;
    this.log.warn("mail dropped", { to: formatAddress(envelope.to), error });
    this.reply(envelope.replyTo, { ok: false, error: toWireError(error) });
  }

  private completeAsk(correlationId: string, body: ReplyBody): void {
    const ask = this.pending.get(correlationId);
    if (!ask) return;
    this.pending.delete(correlationId);
    clearTimeout(ask.timer);
    if (body.ok) ask.resolve(body.value);
    else ask.reject(errorFromWire(body.error));
  }

  private failAsk(envelope: Envelope, error: unknown): void {
    const replyTo = envelope.replyTo;
    if (!replyTo) return;
    const ask = this.pending.get(replyTo.correlationId);
    if (!ask) return;
    this.pending.delete(replyTo.correlationId);
    clearTimeout(ask.timer);
    ask.reject(
      error instanceof MailError
        ? error
        : new MailError("unreachable", `cannot reach ${formatAddress(ask.to)}`, true, {
            cause: error,
          }),
    );
  }
}
