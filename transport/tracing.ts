// transport: the one wrapper around the OpenTelemetry API — spans for mail hops, SIP transactions and
// actor work, trace context carried as a W3C traceparent. Costs one flag test while tracing is off.

import {
  type Context,
  context,
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

/**
 * The active context if its span is still open, or was sampled out (then what it causes stays
 * sampled out with it instead of starting traces of its own). An ended span's context is not
 * live: mail from a timer an old message set is not traced.
 */
function liveContext(): Context | undefined {
  const active = context.active();
  const span = trace.getSpan(active);
  if (!span) return undefined;
  if (span.isRecording()) return active;
  const sampled = (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0;
  return sampled ? undefined : active;
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

/** The trace and span ids of the open span of the current context (for log lines), if any. */
export function activeSpanIds(): { traceId: string; spanId: string } | undefined {
  if (!tracer) return undefined;
  const span = trace.getSpan(context.active());
  if (!span?.isRecording()) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
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
 * Runs the handling of one piece of mail inside a CONSUMER span whose parent is the sender's
 * traceparent; its context is active for everything `work` does, awaits included.
 */
export async function consume<T>(
  traceparent: string | undefined,
  name: string,
  attributes: () => SpanAttributes,
  work: () => T | Promise<T>,
): Promise<T> {
  if (!tracer) return work();
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
