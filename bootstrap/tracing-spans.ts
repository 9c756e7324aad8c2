// bootstrap: the tracer of a node process — OpenTelemetry API spans kept as plain fields on the event loop
// and, once ended and sampled, handed straight to the export batch as data (WireSpan, tracing-export.ts).

import {
  type Attributes,
  type AttributeValue,
  type Context,
  context as contextApi,
  diag,
  type Exception,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  TraceFlags,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import {
  getNumberFromEnv,
  getStringFromEnv,
  hrTimeToMilliseconds,
  isAttributeValue,
  isTimeInputHrTime,
  isTracingSuppressed,
  sanitizeAttributes,
} from "@opentelemetry/core";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-node";
import type { SipHead } from "../transport/sip-span.js";
import type { AttributeTaker, SpanStarter } from "../transport/tracing.js";
import { mergeAttributes } from "./tracing-encode.js";
import type { SpanPart, WireEvent, WireLink, WireSpan } from "./tracing-export.js";

/** The SDK's span limits, from the same OTEL_* variables and defaults. */
export interface SpanLimits {
  attributeCount: number;
  attributeValueLength: number;
  eventCount: number;
  linkCount: number;
  attributePerEventCount: number;
  attributePerLinkCount: number;
}

export function spanLimitsFromEnv(): SpanLimits {
  const count = getNumberFromEnv("OTEL_ATTRIBUTE_COUNT_LIMIT") ?? 128;
  const length = getNumberFromEnv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT") ?? Number.POSITIVE_INFINITY;
  return {
    attributeCount: getNumberFromEnv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT") ?? count,
    attributeValueLength: getNumberFromEnv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT") ?? length,
    eventCount: getNumberFromEnv("OTEL_SPAN_EVENT_COUNT_LIMIT") ?? 128,
    linkCount: getNumberFromEnv("OTEL_SPAN_LINK_COUNT_LIMIT") ?? 128,
    attributePerEventCount: getNumberFromEnv("OTEL_SPAN_ATTRIBUTE_PER_EVENT_COUNT_LIMIT") ?? 128,
    attributePerLinkCount: getNumberFromEnv("OTEL_SPAN_ATTRIBUTE_PER_LINK_COUNT_LIMIT") ?? 128,
  };
}

/**
 * The parent-based samplers `samplerFromEnv` made, with the SDK's default delegates: for them a
 * local parent's sampled flag decides, and the tracer does not ask (ParentBasedSampler would
 * hand the question to AlwaysOnSampler).
 */
const followParent = new WeakSet<Sampler>();

function parentBased(root: Sampler): Sampler {
  const sampler = new ParentBasedSampler({ root });
  followParent.add(sampler);
  return sampler;
}

/** The sampler OTEL_TRACES_SAMPLER(_ARG) name, as the SDK builds it (default parentbased_always_on). */
export function samplerFromEnv(): Sampler {
  const name = getStringFromEnv("OTEL_TRACES_SAMPLER") ?? "parentbased_always_on";
  const ratio = (): number => {
    const value = getNumberFromEnv("OTEL_TRACES_SAMPLER_ARG");
    if (value === undefined || value < 0 || value > 1) {
      diag.error(`OTEL_TRACES_SAMPLER_ARG ${value ?? "is blank"}: not in [0..1], defaulting to 1.`);
      return 1;
    }
    return value;
  };
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio());
    case "parentbased_always_off":
      return parentBased(new AlwaysOffSampler());
    case "parentbased_traceidratio":
      return parentBased(new TraceIdRatioBasedSampler(ratio()));
    case "parentbased_always_on":
      return parentBased(new AlwaysOnSampler());
    default:
      diag.error(
        `OTEL_TRACES_SAMPLER value "${name}" invalid, defaulting to parentbased_always_on.`,
      );
      return parentBased(new AlwaysOnSampler());
  }
}

/** Where ended, sampled spans go (the worker export's batch). */
export interface SpanSink {
  push(span: WireSpan): void;
}

interface TracerSetup {
  sampler: Sampler;
  /** A local parent's sampled flag decides for its children (see followParent). */
  followsParent: boolean;
  limits: SpanLimits;
  sink: SpanSink;
  ids: IdGenerator;
}

const origin = performance.timeOrigin;
const NO_ATTRIBUTES: Attributes = Object.freeze({});
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_PARTS: SpanPart[] = Object.freeze([]) as unknown as SpanPart[];
const SAMPLED: SamplingResult = Object.freeze({ decision: SamplingDecision.RECORD_AND_SAMPLED });
const NOT_SAMPLED: SamplingResult = Object.freeze({ decision: SamplingDecision.NOT_RECORD });

/** Milliseconds since the epoch, to the microsecond. */
function now(): number {
  return origin + performance.now();
}

/** A TimeInput as milliseconds since the epoch (numbers below the time origin count from it). */
function millis(time: TimeInput | undefined): number {
  if (time === undefined) return now();
  if (typeof time === "number") return time < origin ? origin + time : time;
  if (time instanceof Date) return time.getTime();
  return isTimeInputHrTime(time) ? hrTimeToMilliseconds(time) : now();
}

/** At most `limit` attributes of a link or event (copied), the rest counted as dropped. */
function limited(
  attributes: Attributes | undefined,
  limit: number,
  valueLength: number,
): [Attributes | null, number] {
  const [kept, dropped] = mergeAttributes([sanitizeAttributes(attributes)], limit, valueLength);
  return Object.keys(kept).length > 0 ? [kept, dropped] : [null, 0];
}

/**
 * A recording span. Its attributes are the objects it was handed (`takeAttributes`, by
 * reference), SIP heads (`takeSipHead`, made attributes by the export worker) and one object of
 * its own for `setAttribute`, which wins; the encoder merges them and applies the attribute
 * limits as it writes the span. Times are epoch milliseconds.
 */
class LeanSpan implements Span, AttributeTaker {
  readonly #tracer: LeanTracer;
  readonly #context: SpanContext;
  readonly #kind: SpanKind;
  readonly #parent: SpanContext | undefined;
  readonly #start: number;
  #name: string;
  #taken: SpanPart[] | null = null;
  #attributes: Attributes | null = null;
  #status: SpanStatus = { code: SpanStatusCode.UNSET };
  #events: WireEvent[] | null = null;
  #droppedEvents = 0;
  #links: WireLink[] | null = null;
  #droppedLinks = 0;
  #ended = false;

  constructor(
    tracer: LeanTracer,
    spanContext: SpanContext,
    name: string,
    kind: SpanKind,
    parent: SpanContext | undefined,
    start: number,
  ) {
    this.#tracer = tracer;
    this.#context = spanContext;
    this.#name = name;
    this.#kind = kind;
    this.#parent = parent;
    this.#start = start;
  }

  spanContext(): SpanContext {
    return this.#context;
  }

  setAttribute(key: string, value?: AttributeValue): this {
    if (value == null || this.#ended) return this;
    if (key.length === 0 || !isAttributeValue(value)) {
      diag.warn(`Invalid attribute ${key.length === 0 ? "key" : "value"} for key: ${key}`);
      return this;
    }
    this.#attributes ??= {};
    this.#attributes[key] = value;
    return this;
  }

  takeAttributes(attributes: Attributes): void {
    if (this.#ended) return;
    this.#taken ??= [];
    this.#taken.push(attributes);
  }

  takeSipHead(head: SipHead): void {
    if (this.#ended) return;
    this.#taken ??= [];
    this.#taken.push(head);
  }

  setAttributes(attributes: Attributes): this {
    for (const key in attributes) {
      if (Object.hasOwn(attributes, key)) this.setAttribute(key, attributes[key]);
    }
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.#ended) return this;
    const limits = this.#tracer.setup.limits;
    if (limits.eventCount === 0) {
      this.#droppedEvents++;
      return this;
    }
    const attributesGiven =
      typeof attributesOrTime === "object" &&
      !(attributesOrTime instanceof Date) &&
      !isTimeInputHrTime(attributesOrTime);
    const at = attributesGiven ? time : ((attributesOrTime as TimeInput | undefined) ?? time);
    const [attributes, dropped] = limited(
      attributesGiven ? attributesOrTime : undefined,
      limits.attributePerEventCount,
      limits.attributeValueLength,
    );
    this.#events ??= [];
    if (this.#events.length >= limits.eventCount) {
      this.#events.shift();
      this.#droppedEvents++;
    }
    this.#events.push([name, millis(at), attributes, dropped]);
    return this;
  }

  addLink(link: Link): this {
    if (this.#ended) return this;
    const limits = this.#tracer.setup.limits;
    if ((this.#links?.length ?? 0) >= limits.linkCount) {
      this.#droppedLinks++;
      return this;
    }
    const [attributes, dropped] = limited(
      link.attributes,
      limits.attributePerLinkCount,
      limits.attributeValueLength,
    );
    const { traceId, spanId, traceFlags, traceState, isRemote } = link.context;
    this.#links ??= [];
    this.#links.push([
      traceId,
      spanId,
      traceFlags,
      traceState?.serialize() ?? null,
      isRemote === true,
      attributes,
      (link.droppedAttributesCount ?? 0) + dropped,
    ]);
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.#ended || status.code === SpanStatusCode.UNSET) return this;
    if (this.#status.code === SpanStatusCode.OK) return this;
    this.#status =
      status.code === SpanStatusCode.ERROR && typeof status.message === "string"
        ? { code: status.code, message: status.message }
        : { code: status.code };
    return this;
  }

  updateName(name: string): this {
    if (!this.#ended) this.#name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    const { traceId, spanId, traceFlags, traceState } = this.#context;
    if (this.#ended) {
      diag.error(`${this.#name} ${traceId}-${spanId}: end() called on an ended span`);
      return;
    }
    this.#ended = true;
    if ((traceFlags & TraceFlags.SAMPLED) === 0) return;
    const scope = this.#tracer.scope;
    this.#tracer.setup.sink.push([
      this.#name,
      this.#kind,
      traceId,
      spanId,
      traceFlags,
      traceState?.serialize() ?? null,
      this.#parent?.spanId ?? null,
      this.#parent?.isRemote === true,
      this.#start,
      Math.max(this.#start, millis(endTime)),
      this.#status.code,
      this.#status.message ?? null,
      this.#attributesToWrite(),
      this.#events,
      this.#links,
      this.#droppedEvents,
      this.#droppedLinks,
      scope.name,
      scope.version,
      scope.schemaUrl,
    ]);
    // Written out already: contexts and transactions that still hold the span (a completed UDP
    // transaction for 32 s) must not keep its data alive into the old generation.
    this.#taken = null;
    this.#attributes = null;
    this.#events = null;
    this.#links = null;
  }

  /** The taken parts, then what was set one by one (the later wins), in one list. */
  #attributesToWrite(): SpanPart[] {
    if (!this.#attributes) return this.#taken ?? NO_PARTS;
    if (!this.#taken) return [this.#attributes];
    this.#taken.push(this.#attributes);
    return this.#taken;
  }

  isRecording(): boolean {
    return !this.#ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === "string") {
      attributes["exception.message"] = exception;
    } else if (exception) {
      const type = exception.code ?? exception.name;
      if (type !== undefined) attributes["exception.type"] = String(type);
      if (exception.message) attributes["exception.message"] = exception.message;
      if (exception.stack) attributes["exception.stacktrace"] = exception.stack;
    }
    if (attributes["exception.type"] || attributes["exception.message"]) {
      this.addEvent("exception", attributes, time);
    } else {
      diag.warn(`Failed to record an exception ${String(exception)}`);
    }
  }
}

/**
 * A span that is not recorded: sampled out, its context carried on (what the API's
 * `wrapSpanContext` gives, but ours, so that its children know their parent is local).
 */
class QuietSpan implements Span {
  constructor(readonly context: SpanContext) {}

  spanContext(): SpanContext {
    return this.context;
  }

  setAttribute(): this {
    return this;
  }

  setAttributes(): this {
    return this;
  }

  addEvent(): this {
    return this;
  }

  addLink(): this {
    return this;
  }

  addLinks(): this {
    return this;
  }

  setStatus(): this {
    return this;
  }

  updateName(): this {
    return this;
  }

  end(): void {}

  isRecording(): boolean {
    return false;
  }

  recordException(): void {}
}

/** A span's start as the sampler and the span see it. */
interface Start {
  name: string;
  kind: SpanKind;
  /** The parent's context, if valid. */
  parent: SpanContext | undefined;
  /** Whether the parent is one of our spans (its sampled flag is final for its children). */
  local: boolean;
  /** The context the sampler is asked with (made only when it is asked). */
  samplerContext: () => Context;
  startTime?: TimeInput | undefined;
  attributes?: Attributes | undefined;
  links?: Link[] | undefined;
}

/** A tracer of one instrumentation scope; sampling, ids and limits as the SDK's own. */
class LeanTracer implements Tracer, SpanStarter {
  constructor(
    readonly setup: TracerSetup,
    readonly scope: { name: string; version: string | null; schemaUrl: string | null },
  ) {}

  startSpan(name: string, options: SpanOptions = {}, context: Context = contextApi.active()): Span {
    const parentContext = options.root ? trace.deleteSpan(context) : context;
    if (isTracingSuppressed(parentContext)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const parentSpan = trace.getSpan(parentContext);
    const local = parentSpan instanceof LeanSpan || parentSpan instanceof QuietSpan;
    const found = parentSpan?.spanContext();
    return this.#begin({
      name,
      kind: options.kind ?? SpanKind.INTERNAL,
      parent: found && (local || isSpanContextValid(found)) ? found : undefined,
      local,
      samplerContext: () => parentContext,
      startTime: options.startTime,
      attributes: options.attributes,
      links: options.links,
    });
  }

  /** The wrappers' way in (transport/tracing.ts): a parent span of ours, a remote parent, or none. */
  startChild(name: string, kind: SpanKind, parent: Span | SpanContext | undefined): Span {
    const local = parent instanceof LeanSpan || parent instanceof QuietSpan;
    const found = parent && "spanContext" in parent ? parent.spanContext() : parent;
    const valid = found && (local || isSpanContextValid(found)) ? found : undefined;
    return this.#begin({
      name,
      kind,
      parent: valid,
      local,
      samplerContext: () => (valid ? trace.setSpanContext(ROOT_CONTEXT, valid) : ROOT_CONTEXT),
    });
  }

  #begin(start: Start): Span {
    const { sampler, ids, followsParent } = this.setup;
    const { name, kind, parent, local } = start;
    const traceId = parent?.traceId ?? ids.generateTraceId();
    const spanId = ids.generateSpanId();
    // Nothing allocated for what a span start does not give (ours take their attributes later).
    const attributes = start.attributes ? sanitizeAttributes(start.attributes) : NO_ATTRIBUTES;
    const links = start.links ?? NO_LINKS;
    const result =
      local && followsParent
        ? ((parent as SpanContext).traceFlags & TraceFlags.SAMPLED) !== 0
          ? SAMPLED
          : NOT_SAMPLED
        : sampler.shouldSample(start.samplerContext(), traceId, name, kind, attributes, links);
    const traceState = result.traceState ?? parent?.traceState;
    const traceFlags =
      result.decision === SamplingDecision.RECORD_AND_SAMPLED
        ? TraceFlags.SAMPLED
        : TraceFlags.NONE;
    const spanContext: SpanContext = traceState
      ? { traceId, spanId, traceFlags, traceState }
      : { traceId, spanId, traceFlags };
    if (result.decision === SamplingDecision.NOT_RECORD) return new QuietSpan(spanContext);
    const span = new LeanSpan(this, spanContext, name, kind, parent, millis(start.startTime));
    if (links.length > 0) span.addLinks(links);
    if (attributes !== NO_ATTRIBUTES) span.setAttributes(attributes);
    if (result.attributes) span.setAttributes(result.attributes);
    return span;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    options: SpanOptions,
    fn: F,
  ): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    options: SpanOptions,
    context: Context,
    fn: F,
  ): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    ...rest: [F] | [SpanOptions, F] | [SpanOptions, Context, F]
  ): ReturnType<F> {
    const fn = rest[rest.length - 1] as F;
    const options = rest.length > 1 ? (rest[0] as SpanOptions) : {};
    const parent = rest.length > 2 ? (rest[1] as Context) : contextApi.active();
    const span = this.startSpan(name, options, parent);
    return contextApi.with(trace.setSpan(parent, span), () => fn(span) as ReturnType<F>);
  }
}

/**
 * The node's TracerProvider: what the SDK's tracer does up to the span processor (sampler from
 * OTEL_TRACES_SAMPLER, random ids, span limits), without its span objects — on Node 20 those
 * and their conversion to data cost the event loop ~1.5× what these do per span (BENCHMARKS.md,
 * "Cost of tracing, third round"); export goes on in the worker.
 */
export class LeanTracerProvider implements TracerProvider {
  readonly #setup: TracerSetup;
  readonly #tracers = new Map<string, LeanTracer>();

  constructor(sink: SpanSink, sampler: Sampler, limits: SpanLimits) {
    this.#setup = {
      sampler,
      followsParent: followParent.has(sampler),
      limits,
      sink,
      ids: new RandomIdGenerator(),
    };
  }

  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): Tracer {
    const key = `${name}\u0000${version ?? ""}\u0000${options?.schemaUrl ?? ""}`;
    let tracer = this.#tracers.get(key);
    if (!tracer) {
      tracer = new LeanTracer(this.#setup, {
        name,
        version: version ?? null,
        schemaUrl: options?.schemaUrl ?? null,
      });
      this.#tracers.set(key, tracer);
    }
    return tracer;
  }
}
