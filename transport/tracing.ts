// transport: the one wrapper around the OpenTelemetry API — spans for mail between nodes, SIP transactions
// and actor work; the active span follows calls, rides in local mail or a traceparent. A flag test while off.

import {
  type Context,
  type ContextManager,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { SipRequest } from "../protocol/sip/message.js";
import { type SipHead, type SipPeer, sipHeadOf, sipRequestAttributes } from "./sip-span.js";

/** Span attributes as actors and the SIP edge give them (no OpenTelemetry types outside this module). */
export type SpanAttributes = Record<string, string | number | boolean>;

/**
 * A span's attributes in parts (the node's own, the actor's, the message's), never merged into one
 * object first: on Node 20 an object spread followed by more properties costs ~3.5 µs (V8 leaves
 * its fast path), more than the span itself. A part is handed over to the span and must not
 * change afterwards: the node's tracer keeps it as it is (AttributeTaker).
 */
export type AttributeParts = readonly (SpanAttributes | undefined)[];

/**
 * A span that keeps attribute objects by reference instead of copying them key by key, and
 * takes a SIP message's head whose attributes the export builds off the event loop (the node's
 * own tracer, bootstrap/tracing-spans.ts); other spans get `setAttributes`.
 */
export interface AttributeTaker {
  takeAttributes(attributes: SpanAttributes): void;
  takeSipHead(head: SipHead): void;
}

/**
 * What starts the node's spans without OpenTelemetry contexts: a child of one of its spans, of a
 * remote parent (a traceparent), or a root. The node's tracer is one (bootstrap/tracing-spans.ts);
 * any other tracer is asked through the API.
 */
export interface SpanStarter {
  startChild(name: string, kind: SpanKind, parent: Span | SpanContext | undefined): Span;
}

let tracer: SpanStarter | undefined;

/** Turns tracing on for this process (bootstrap, once an exporter is configured). */
export function enableTracing(source: Tracer): void {
  tracer = "startChild" in source ? (source as Tracer & SpanStarter) : throughApi(source);
}

/** Another tracer (the SDK's, in tests): parents handed over in API contexts. */
function throughApi(source: Tracer): SpanStarter {
  return {
    startChild: (name, kind, parent) =>
      source.startSpan(
        name,
        { kind },
        parent === undefined
          ? ROOT_CONTEXT
          : "spanContext" in parent
            ? trace.setSpan(ROOT_CONTEXT, parent)
            : trace.setSpanContext(ROOT_CONTEXT, parent),
      ),
  };
}

/** Back to no spans at all (the provider shut down). */
export function disableTracing(): void {
  tracer = undefined;
  active = undefined;
}

export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/**
 * The span of the work running now, while tracing: open, ended (work it caused goes on, e.g.
 * local mail handled after the sender answered) or sampled out (what it causes stays sampled out
 * with it instead of starting traces of its own). It follows synchronous calls only — following
 * awaits too (AsyncLocalStorage) costs a traced watcher call ~7% of the event loop's time on Node
 * 20 (BENCHMARKS.md, "Cost of tracing"). Work that goes on later re-enters its span explicitly:
 * the mailbox (`consume`), callbacks (`keepTrace`) and actors after an await (`resumeTrace`).
 * Timers and I/O callbacks start with none, so they never join the trace of whatever set them.
 */
let active: Span | undefined;

/** Runs `work` with `span` active. */
function within<T>(span: Span | undefined, work: () => T): T {
  const previous = active;
  active = span;
  try {
    return work();
  } finally {
    active = previous;
  }
}

/**
 * The OpenTelemetry context manager of a tracing process, for code that uses the API itself: its
 * active context holds the active span above, and `with` sets both.
 */
class SynchronousContextManager implements ContextManager {
  #context: Context = ROOT_CONTEXT;

  active(): Context {
    if (trace.getSpan(this.#context) === active) return this.#context;
    return active ? trace.setSpan(this.#context, active) : trace.deleteSpan(this.#context);
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    next: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.#context;
    this.#context = next;
    try {
      return within(trace.getSpan(next), () => fn.call(thisArg, ...args));
    } finally {
      this.#context = previous;
    }
  }

  bind<T>(bound: Context, target: T): T {
    if (typeof target !== "function") return target;
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(bound, target as (...a: unknown[]) => unknown, this, ...args);
    } as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.#context = ROOT_CONTEXT;
    return this;
  }
}

/** The context manager to register with the tracer provider (see SynchronousContextManager). */
export function tracingContextManager(): ContextManager {
  return new SynchronousContextManager();
}

declare const localTraceBrand: unique symbol;
/** The trace context a piece of local mail continues in its mailbox (opaque outside this module). */
export interface LocalTrace {
  readonly [localTraceBrand]: true;
}

/** The span a LocalTrace stands for. */
function spanOf(local: LocalTrace): Span {
  return local as unknown as Span;
}

/** The live trace context of the caller, for mail that stays in this process. */
export function currentTrace(): LocalTrace | undefined {
  if (!tracer) return undefined;
  return active as LocalTrace | undefined;
}

/** Runs `work` in a trace context taken earlier (`currentTrace`), or as it is without one. */
export function resumeTrace<T>(local: LocalTrace | undefined, work: () => T): T {
  if (!tracer || !local) return work();
  return within(spanOf(local), work);
}

/**
 * `fn` bound to the caller's trace context, for a callback that goes on with the caller's work
 * later (a `.then` that sends mail or a SIP request in the same trace).
 */
export function keepTrace<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  if (!tracer) return fn;
  const live = active;
  return live ? (...args: A) => within(live, () => fn(...args)) : fn;
}

/** The traceparent of a local trace context, for local mail that is sent on to another node. */
export function traceparentOf(local: LocalTrace): string {
  return formatTraceparent(spanOf(local));
}

/** A span whose attributes are built only if it records (the sampler does not look at them). */
function start(
  source: SpanStarter,
  name: string,
  kind: SpanKind,
  attributes: () => AttributeParts,
  parent: Span | SpanContext | undefined,
): Span {
  const span = source.startChild(name, kind, parent);
  if (span.isRecording()) {
    const take = (span as Partial<AttributeTaker>).takeAttributes;
    for (const part of attributes()) {
      if (!part) continue;
      if (take) take.call(span, part);
      else span.setAttributes(part);
    }
  }
  return span;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function formatTraceparent(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, "0")}`;
}

/** The remote parent a traceparent names, or undefined when it is malformed. */
function parentOf(traceparent: string): SpanContext | undefined {
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return undefined;
  const [, traceId = "", spanId = "", flags = "00"] = match;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
}

/** The trace and span ids of the live, sampled span of the current context (for log lines), if any. */
export function activeSpanIds(): { traceId: string; spanId: string } | undefined {
  if (!tracer || !active) return undefined;
  const { traceId, spanId, traceFlags } = active.spanContext();
  return (traceFlags & TraceFlags.SAMPLED) !== 0 ? { traceId, spanId } : undefined;
}

export interface ProducerSpan {
  readonly traceparent: string;
  end(error?: unknown): void;
}

/**
 * A PRODUCER span for mail being sent, a child of the open span of the current context. Without
 * one, only mail that asks for it (`root`, e.g. CCMP) starts a trace of its own. Name and
 * attributes are functions so that untraced mail never builds them.
 */
export function produce(
  name: () => string,
  attributes: () => AttributeParts,
  root: boolean,
): ProducerSpan | undefined {
  if (!tracer || (!active && !root)) return undefined;
  const span = start(tracer, name(), SpanKind.PRODUCER, attributes, active);
  return {
    traceparent: formatTraceparent(span),
    end: (error) => finish(span, error),
  };
}

function finish(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
  }
  span.end();
}

/**
 * Runs the handling of one piece of mail in its sender's trace. Mail from another node (or local
 * mail with a span of its own) gets a CONSUMER span whose parent is the sender's traceparent;
 * other local mail continues the sender's context without a span. Either context is active for
 * everything `work` does, awaits included.
 */
export async function consume<T>(
  traceparent: string | undefined,
  local: LocalTrace | undefined,
  name: string,
  attributes: () => AttributeParts,
  work: () => T | Promise<T>,
): Promise<T> {
  if (!tracer) return work();
  if (local) return within(spanOf(local), work);
  const parent = traceparent !== undefined ? parentOf(traceparent) : undefined;
  // Whatever span was active when nact's mailbox ran this is not this mail's.
  if (!parent) return within(undefined, work);
  const span = start(tracer, name, SpanKind.CONSUMER, attributes, parent);
  try {
    const result = await within(span, work);
    finish(span);
    return result;
  } catch (error) {
    finish(span, error);
    throw error;
  }
}

/** Attributes found while a span is open, or a function that builds them (called only if it records). */
export type Annotate = (more: SpanAttributes | (() => SpanAttributes)) => void;

const ignore: Annotate = () => {};

/**
 * Runs `work` inside an INTERNAL span of its own (a decision), a child of the open span of the
 * current context or a trace of its own; `annotate` adds attributes found on the way.
 */
export function inSpan<T>(
  name: string,
  attributes: () => AttributeParts,
  work: (annotate: Annotate) => T,
): T {
  if (!tracer) return work(ignore);
  const span = start(tracer, name, SpanKind.INTERNAL, attributes, active);
  const annotate: Annotate = (more) => {
    if (span.isRecording()) span.setAttributes(typeof more === "function" ? more() : more);
  };
  try {
    const result = within(span, () => work(annotate));
    finish(span);
    return result;
  } catch (error) {
    finish(span, error);
    throw error;
  }
}

export interface TransactionSpan {
  /** Runs `work` with the span's context active (and every async continuation it starts). */
  run<T>(work: () => T): T;
  /**
   * The span's SIP attributes (method, Call-ID, presentity, peer): from the request's bytes as
   * received or sent where given (the node's tracer hands their head to the export, which builds
   * the attributes off the event loop), else from the request. The first call counts.
   */
  describe(request: SipRequest, peer: SipPeer, data?: Buffer): void;
  /** Ends the span with the final status code (≥ 400 marks an error). */
  end(status: number): void;
}

/**
 * A SERVER (request received) or CLIENT (request sent) span per SIP transaction, named after its
 * method; `attributes` give the node's, `describe` the message's. A client span is a child of the
 * span of the current context, or a trace of its own (a timer's NOTIFY).
 */
export function sipTransaction(
  kind: "server" | "client",
  method: string,
  attributes: () => AttributeParts,
): TransactionSpan | undefined {
  if (!tracer) return undefined;
  const span = start(
    tracer,
    `SIP ${method}`,
    kind === "server" ? SpanKind.SERVER : SpanKind.CLIENT,
    attributes,
    kind === "client" ? active : undefined,
  );
  // Let go of it at the end: a completed transaction (and what holds this object) stays up to
  // 32 s, and spans kept that long would all reach the old generation (~1.7 KB a watcher call).
  let open: Span | undefined = span;
  let described = false;
  return {
    run: (work) => (open ? within(open, work) : work()),
    describe: (request, peer, data) => {
      if (described || !open?.isRecording()) return;
      described = true;
      const taker = open as Partial<AttributeTaker>;
      if (data && taker.takeSipHead) taker.takeSipHead.call(open, sipHeadOf(data, peer));
      else if (taker.takeAttributes)
        taker.takeAttributes.call(open, sipRequestAttributes(request, peer));
      else open.setAttributes(sipRequestAttributes(request, peer));
    },
    end: (status) => {
      const ended = open;
      if (!ended) return;
      open = undefined;
      ended.setAttribute("sip.status_code", status);
      if (status >= 400) ended.setStatus({ code: SpanStatusCode.ERROR, message: String(status) });
      ended.end();
    },
  };
}
