// actors: the one way an actor kind is brought to life — a nact actor bound to a router address.
// Wraps mailbox guarding, replies, crash supervision and stopping, so kinds never call nact directly.

import { dispatch, type Ref, spawn, stop } from "nact";
import type { Logger } from "../bootstrap/log.js";
import { type Address, type Envelope, formatAddress, type ReplyTo } from "../transport/envelope.js";
import { MailError, toWireError } from "../transport/errors.js";
import type { LocalTarget, Router } from "../transport/router.js";
import {
  type Annotate,
  consume,
  currentTrace,
  inSpan,
  type LocalTrace,
  resumeTrace,
  type SpanAttributes,
  tracingEnabled,
} from "../transport/tracing.js";

export type { Annotate, SpanAttributes };

export interface ActorContext {
  readonly self: Address;
  readonly router: Router;
  readonly log: Logger;
  /** The reply target of the mail being handled, when it was an ask. */
  readonly replyTo: ReplyTo | undefined;
  /** Answers the current ask (no-op otherwise). */
  reply(value: unknown): void;
  /** Answers the current ask with an error. */
  fail(error: unknown): void;
  /** Mail to this actor itself, e.g. from a timer or a completed I/O. */
  tell(body: unknown): void;
  /** Hands the current mail, reply target included, to the same actor on another node. */
  forward(node: string): void;
  /** Hands the current mail, reply target included, to another actor. */
  redirect(to: Address): void;
  /**
   * Stops this actor after the current message if no other mail is queued (otherwise the request
   * lapses); later mail to its address re-creates the actor (on-demand kinds) or is dropped.
   */
  stop(): void;
  /**
   * Runs `work` inside a span of its own (a supervisor decision, a CCMP message) within the trace
   * of the mail being handled; `annotate` adds attributes found on the way (given as a function,
   * they are built only if the span records). Free when tracing is off.
   */
  span<T>(name: string, attributes: SpanAttributes, work: (annotate: Annotate) => T): T;
  /**
   * Runs `work` in the trace of the mail being handled. Trace context follows synchronous calls
   * only: handling that goes on after an `await` re-enters it this way. (A timer's or an I/O
   * callback's `tell` is not resumed: what it starts is not the old mail's work.)
   */
  resume<T>(work: () => T): T;
}

export interface Behaviour<S, M> {
  /** Handles one message; mail of one actor is handled strictly one at a time, in order. */
  receive(state: S, message: M, ctx: ActorContext): S | Promise<S>;
  /** Called once when the actor stops (timers off, watchers released). */
  stopped?(state: S, ctx: ActorContext): void;
}

export interface SpawnOptions {
  /** Mail beyond this many queued messages is refused (nact mailboxes are unbounded). */
  maxMailbox: number;
  log: Logger;
  /** Counted on every crash; the actor resumes with its state as before the failing message. */
  onCrash?: (address: Address, error: unknown) => void;
  /** Added to every span of this actor (e.g. the presentity of a presence resource). */
  traceAttributes?: SpanAttributes;
}

export interface ActorHandle extends LocalTarget {
  readonly address: Address;
  stop(): void;
}

/** nact names allow a restricted alphabet: base64url keeps any address valid and unique. */
function actorName(address: Address): string {
  return Buffer.from(formatAddress(address), "utf8").toString("base64url");
}

export function spawnActor<S, M>(
  parent: Ref<unknown>,
  router: Router,
  address: Address,
  behaviour: Behaviour<S, M>,
  initialState: S,
  options: SpawnOptions,
): ActorHandle {
  const formatted = formatAddress(address);
  const log = options.log.child({ actor: formatted });
  const spanAttributes: SpanAttributes = {
    "presence.actor": formatted,
    ...options.traceAttributes,
  };
  const receiveName = `receive ${address.kind}`;
  let queued = 0;
  let stopped = false;
  let current: Envelope | undefined;

  const stopSelf = (state: S): void => {
    if (stopped) return;
    stopped = true;
    router.unbind(address);
    stop(ref);
    behaviour.stopped?.(state, makeContext(undefined));
  };

  /** `mail.trace`: the trace context the mail's handling runs in, once it has begun. */
  function makeContext(
    envelope: Envelope | undefined,
    mail: { trace?: LocalTrace | undefined } = {},
  ): ActorContext {
    const resume = <T>(work: () => T): T => resumeTrace(mail.trace, work);
    return {
      self: address,
      router,
      log,
      replyTo: envelope?.replyTo,
      reply: (value) => router.reply(envelope?.replyTo, { ok: true, value }),
      fail: (error) => router.reply(envelope?.replyTo, { ok: false, error: toWireError(error) }),
      tell: (body) => router.send(address, body),
      forward: (node) => {
        if (envelope) router.forward(envelope, node);
      },
      redirect: (to) => {
        if (envelope) router.redirect(envelope, to);
      },
      stop: () => {
        stopRequested = true;
      },
      span: (name, attributes, work) =>
        inSpan(name, () => [router.spanAttributes(), spanAttributes, attributes], work),
      resume,
    };
  }

  let stopRequested = false;
  const ref = spawn(
    parent as never,
    async (state: S, envelope: Envelope) => {
      queued -= 1;
      current = envelope;
      const mail: { trace?: LocalTrace | undefined } = {};
      const ctx = makeContext(envelope, mail);
      // Trace context does not survive the mailbox: the mail's own is re-activated.
      const next = tracingEnabled()
        ? await consume(
            envelope.traceparent,
            envelope.trace,
            receiveName,
            () => [
              router.spanAttributes(),
              spanAttributes,
              { "messaging.message.id": envelope.id, "presence.mail.from": envelope.from },
            ],
            () => {
              mail.trace = currentTrace();
              return behaviour.receive(state, envelope.body as M, ctx);
            },
          )
        : await behaviour.receive(state, envelope.body as M, ctx);
      current = undefined;
      // Mail already queued must not be lost with the mailbox: stop only when it is empty.
      if (stopRequested && queued === 0) stopSelf(next);
      stopRequested = false;
      return next;
    },
    actorName(address),
    {
      initialState,
      onCrash: (_msg: unknown, error: Error, ctx: { resume: symbol }) => {
        log.error("actor crashed on a message; resuming with its previous state", { error });
        options.onCrash?.(address, error);
        if (current?.replyTo) {
          router.reply(current.replyTo, { ok: false, error: toWireError(error) });
        }
        current = undefined;
        return ctx.resume;
      },
    } as never,
  ) as Ref<Envelope>;

  const handle: ActorHandle = {
    address,
    deliver(envelope) {
      if (stopped) throw new MailError("no-actor", `actor ${formatAddress(address)} stopped`, true);
      if (queued >= options.maxMailbox) {
        throw new MailError("overloaded", `mailbox of ${formatAddress(address)} is full`, true);
      }
      queued += 1;
      dispatch(ref, envelope);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      router.unbind(address);
      stop(ref);
    },
  };
  router.bind(address, handle);
  return handle;
}
