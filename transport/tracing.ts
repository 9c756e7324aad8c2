// transport: the one wrapper around the OpenTelemetry API — spans for mail between nodes, SIP transactions
// and actor work; trace context carried as a W3C traceparent, or as is by local mail. One flag test while off.

import {
  type Context,
  context,
  createContextKey,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/** Span attributes as actors and the SIP edge give them (no OpenTelemetry types outside this module). */
export type SpanAttributes = Record<string, string | number | boolean>;

let tracer: Tracer | undefined;

/** Turns tracing on for this process (bootstrap, once an exporter is configured). */
export function enableTracing(source: Tracer): void {
  tracer = source;
}

/** Back to no spans at all (the provider shut down). */
export function disableTracing(): void {
  tracer = undefined;
}

export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/** Marks a context that continues a sender's trace in a local mailbox: open while the mail is handled. */
const CONTINUATION = createContextKey("presence-cluster continuation");

interface Continuation {
  open: boolean;
}

/**
 * The active context if its span is still open, or was sampled out (then what it causes stays
 * sampled out with it instead of starting traces of its own), or is the sender's span of local
 * mail still being handled. An ended span's context is otherwise not live: mail from a timer an
 * old message set is not traced.
 */
function liveContext(): Context | undefined {
  const active = context.active();
  const span = trace.getSpan(active);
  if (!span) return undefined;
  if (span.isRecording()) return active;
  const sampled = (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0;
  if (!sampled) return active;
  return (active.getValue(CONTINUATION) as Continuation | undefined)?.open ? active : undefined;
}

/** The trace context a piece of local mail continues in its mailbox (opaque outside this module). */
declare const localTraceBrand: unique symbol;
export interface LocalTrace {
  readonly [localTraceBrand]: true;
}

/** The live trace context of the caller, for mail that stays in this process. */
export function currentTrace(): LocalTrace | undefined {
  if (!tracer) return undefined;
  return liveContext() as LocalTrace | undefined;
}

/** The traceparent of a local trace context, for local mail that is sent on to another node. */
export function traceparentOf(local: LocalTrace): string | undefined {
  const span = trace.getSpan(local as unknown as Context);
  return span ? formatTraceparent(span) : undefined;
}

function start(
  source: Tracer,
  name: string,
  kind: SpanKind,
  attributes: SpanAttributes,
  parent: Context,
): Span {
  return source.startSpan(name, { kind, attributes }, parent);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function formatTraceparent(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, "0")}`;
}

/** The remote parent a traceparent names, or undefined when it is malformed. */
function parentOf(traceparent: string): Context | undefined {
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return undefined;
  const [, traceId = "", spanId = "", flags = "00"] = match;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16),
    isRemote: true,
  });
}

/** The trace and span ids of the live, sampled span of the current context (for log lines), if any. */
export function activeSpanIds(): { traceId: string; spanId: string } | undefined {
  if (!tracer) return undefined;
  const live = liveContext();
  const span = live && trace.getSpan(live);
  if (!span) return undefined;
  const { traceId, spanId, traceFlags } = span.spanContext();
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
  attributes: () => SpanAttributes,
  root: boolean,
): ProducerSpan | undefined {
  if (!tracer) return undefined;
  const parent = liveContext() ?? (root ? ROOT_CONTEXT : undefined);
  if (!parent) return undefined;
  const span = start(tracer, name(), SpanKind.PRODUCER, attributes(), parent);
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
  attributes: () => SpanAttributes,
  work: () => T | Promise<T>,
): Promise<T> {
  if (!tracer) return work();
  if (local) {
    const continuation: Continuation = { open: true };
    try {
      return await context.with(
        (local as unknown as Context).setValue(CONTINUATION, continuation),
        work,
      );
    } finally {
      continuation.open = false;
    }
  }
  const parent = traceparent !== undefined ? parentOf(traceparent) : undefined;
  // Whatever context nact's mailbox happens to run in is not this mail's.
  if (!parent) return context.with(ROOT_CONTEXT, work);
  const span = start(tracer, name, SpanKind.CONSUMER, attributes(), parent);
  try {
    const result = await context.with(trace.setSpan(parent, span), work);
    finish(span);
    return result;
  } catch (error) {
    finish(span, error);
    throw error;
  }
}

/**
 * Runs `work` inside an INTERNAL span of its own (a decision), a child of the open span of the
 * current context or a trace of its own; `annotate` adds attributes found on the way.
 */
export function inSpan<T>(
  name: string,
  attributes: () => SpanAttributes,
  work: (annotate: (more: SpanAttributes) => void) => T,
): T {
  if (!tracer) return work(() => {});
  const parent = liveContext() ?? ROOT_CONTEXT;
  const span = start(tracer, name, SpanKind.INTERNAL, attributes(), parent);
  try {
    const result = context.with(trace.setSpan(parent, span), () =>
      work((more) => span.setAttributes(more)),
    );
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
  /** Ends the span with the final status code (≥ 400 marks an error). */
  end(status: number): void;
}

/**
 * A SERVER (request received) or CLIENT (request sent) span per SIP transaction. A client span is
 * a child of the open span of the current context, or a trace of its own (a timer's NOTIFY).
 */
export function sipTransaction(
  kind: "server" | "client",
  method: string,
  attributes: () => SpanAttributes,
): TransactionSpan | undefined {
  if (!tracer) return undefined;
  const parent = kind === "client" ? (liveContext() ?? ROOT_CONTEXT) : ROOT_CONTEXT;
  const span = start(
    tracer,
    `SIP ${method}`,
    kind === "server" ? SpanKind.SERVER : SpanKind.CLIENT,
    { "sip.method": method, ...attributes() },
    parent,
  );
  const active = trace.setSpan(parent, span);
  let ended = false;
  return {
    run: (work) => context.with(active, work),
    end: (status) => {
      if (ended) return;
      ended = true;
      span.setAttribute("sip.status_code", status);
      if (status >= 400) span.setStatus({ code: SpanStatusCode.ERROR, message: String(status) });
      span.end();
    },
  };
}
