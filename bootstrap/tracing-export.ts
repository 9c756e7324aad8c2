// bootstrap: exports a node's spans from a worker thread — batches ended spans as plain arrays and posts
// them to tracing-worker.ts, which makes them ReadableSpans again for the OTLP exporter to send.

import { Worker } from "node:worker_threads";
import type { Attributes, AttributeValue, SpanContext, SpanStatus } from "@opentelemetry/api";
import {
  getNumberFromEnv,
  hrTimeDuration,
  type InstrumentationScope,
  isAttributeValue,
  millisToHrTime,
} from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-node";
import type { SpanSink } from "./tracing-spans.js";

/**
 * An ended span as data (tracing-spans.ts builds it): one flat array of what the OTLP serialiser
 * reads of a span, resource aside, times in epoch milliseconds. Batches of them are posted
 * (structured-cloned) to the worker: ~1.6 µs per span, against ~3 µs for `JSON.stringify` and
 * ~11 µs for cloning the SDK's span objects (which drag the resource and more along).
 */
export type WireSpan = [
  name: string,
  kind: number,
  traceId: string,
  spanId: string,
  traceFlags: number,
  traceState: string | null,
  parentSpanId: string | null,
  parentIsRemote: boolean,
  startMs: number,
  endMs: number,
  statusCode: number,
  statusMessage: string | null,
  /** In the order given, the last value of a key counting (see mergeAttributes). */
  attributes: Attributes[],
  events: WireEvent[] | null,
  links: WireLink[] | null,
  droppedEventsCount: number,
  droppedLinksCount: number,
  scopeName: string,
  scopeVersion: string | null,
  scopeSchemaUrl: string | null,
];

export type WireEvent = [
  name: string,
  timeMs: number,
  attributes: Attributes | null,
  droppedAttributesCount: number,
];

export type WireLink = [
  traceId: string,
  spanId: string,
  traceFlags: number,
  traceState: string | null,
  isRemote: boolean,
  attributes: Attributes | null,
  droppedAttributesCount: number,
];

/** Main thread → worker. */
export type ToWorker =
  | { type: "spans"; spans: WireSpan[] }
  | { type: "flush"; id: number }
  | { type: "shutdown"; id: number };

/** Worker → main thread: spans done with (exported or not), flushes answered, trouble to log. */
export type FromWorker =
  | { type: "done"; count: number }
  | { type: "flushed"; id: number }
  | { type: "warn"; message: string; detail?: string };

/** What the worker is started with besides the batch settings. */
export interface WorkerSetup {
  protocol: "http/protobuf" | "http/json";
  resource: Attributes;
  /** The span attribute limits (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, _VALUE_LENGTH_LIMIT). */
  attributeCount: number;
  attributeValueLength: number;
}

/** The worker's data: its setup and the batch settings it exports by. */
export type WorkerData = WorkerSetup & BatchSettings;

/**
 * Spans are posted to the worker in small chunks, at the latest this many ms after the first of
 * one; the worker gathers them into export batches. Small chunks leave the event loop's garbage
 * young: a chunk of 32 instead of a batch of 512 cost ~5% less event-loop time per traced
 * watcher call (three interleaved pairs, BENCHMARKS.md).
 */
const POST_CHUNK = 32;
const POST_DELAY_MS = 200;

/** A string (or the strings of an array) cut to `limit` characters. */
function truncate(value: AttributeValue, limit: number): AttributeValue {
  if (limit === Number.POSITIVE_INFINITY) return value;
  if (typeof value === "string") return value.length > limit ? value.slice(0, limit) : value;
  if (Array.isArray(value)) {
    return value.map((v: unknown) =>
      typeof v === "string" && v.length > limit ? v.slice(0, limit) : v,
    ) as AttributeValue;
  }
  return value;
}

/**
 * A span's attribute objects as one, in order (a later value of a key replaces an earlier one),
 * with at most `count` keys (the rest counted as dropped), values cut to `valueLength`, and
 * values that are no attribute value left out.
 */
export function mergeAttributes(
  parts: readonly Attributes[],
  count: number,
  valueLength: number,
): [Attributes, number] {
  if (parts.length === 1 && valueLength === Number.POSITIVE_INFINITY) {
    const [only = {}] = parts;
    if (Object.keys(only).length <= count && Object.values(only).every(isAttributeValue)) {
      return [only, 0];
    }
  }
  const merged: Attributes = {};
  let kept = 0;
  let dropped = 0;
  for (const part of parts) {
    for (const key in part) {
      const value = part[key];
      if (!Object.hasOwn(part, key) || value == null || !isAttributeValue(value)) continue;
      if (!Object.hasOwn(merged, key)) {
        if (kept >= count) {
          dropped++;
          continue;
        }
        kept++;
      }
      merged[key] = truncate(value, valueLength);
    }
  }
  return [merged, dropped];
}

function spanContextOf(
  traceId: string,
  spanId: string,
  traceFlags: number,
  traceState: string | null,
  isRemote: boolean,
): SpanContext {
  const context: SpanContext = { traceId, spanId, traceFlags, isRemote };
  if (traceState === null) return context;
  return {
    ...context,
    traceState: {
      serialize: () => traceState,
      get: () => undefined,
      set() {
        return this;
      },
      unset() {
        return this;
      },
    },
  };
}

/**
 * A ReadableSpan again, in the worker. Spans of one scope share one scope object and all share
 * `resource`: the serialiser groups them by identity.
 */
export function fromWire(
  wire: WireSpan,
  setup: Pick<WorkerSetup, "attributeCount" | "attributeValueLength">,
  resource: Resource,
  scopes: Map<string, InstrumentationScope>,
): ReadableSpan {
  const [
    name,
    kind,
    traceId,
    spanId,
    traceFlags,
    traceState,
    parentSpanId,
    parentIsRemote,
    startMs,
    endMs,
    statusCode,
    statusMessage,
    parts,
    events,
    links,
    droppedEventsCount,
    droppedLinksCount,
    scopeName,
    scopeVersion,
    scopeSchemaUrl,
  ] = wire;
  const key = `${scopeName}\u0000${scopeVersion ?? ""}\u0000${scopeSchemaUrl ?? ""}`;
  let scope = scopes.get(key);
  if (!scope) {
    scope = {
      name: scopeName,
      ...(scopeVersion !== null ? { version: scopeVersion } : {}),
      ...(scopeSchemaUrl !== null ? { schemaUrl: scopeSchemaUrl } : {}),
    };
    scopes.set(key, scope);
  }
  const context = spanContextOf(traceId, spanId, traceFlags, traceState, false);
  const startTime = millisToHrTime(startMs);
  const endTime = millisToHrTime(endMs);
  const [attributes, droppedAttributesCount] = mergeAttributes(
    parts,
    setup.attributeCount,
    setup.attributeValueLength,
  );
  const status: SpanStatus =
    statusMessage !== null ? { code: statusCode, message: statusMessage } : { code: statusCode };
  return {
    name,
    kind,
    spanContext: () => context,
    ...(parentSpanId !== null
      ? {
          parentSpanContext: spanContextOf(traceId, parentSpanId, traceFlags, null, parentIsRemote),
        }
      : {}),
    startTime,
    endTime,
    duration: hrTimeDuration(startTime, endTime),
    ended: true,
    status,
    attributes,
    links: (links ?? []).map(([id, span, flags, state, remote, linkAttributes, dropped]) => ({
      context: spanContextOf(id, span, flags, state, remote),
      ...(linkAttributes !== null ? { attributes: linkAttributes } : {}),
      droppedAttributesCount: dropped,
    })),
    events: (events ?? []).map(([eventName, timeMs, eventAttributes, dropped]) => ({
      name: eventName,
      time: millisToHrTime(timeMs),
      ...(eventAttributes !== null ? { attributes: eventAttributes } : {}),
      droppedAttributesCount: dropped,
    })),
    droppedAttributesCount,
    droppedEventsCount,
    droppedLinksCount,
    resource,
    instrumentationScope: scope,
  };
}

/** The batching settings, from the same OTEL_BSP_* variables (and defaults) as the SDK's own. */
export interface BatchSettings {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMs: number;
  exportTimeoutMs: number;
}

export function batchSettings(): BatchSettings {
  const maxQueueSize = getNumberFromEnv("OTEL_BSP_MAX_QUEUE_SIZE") ?? 2048;
  const batch = getNumberFromEnv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") ?? 512;
  return {
    maxQueueSize,
    maxExportBatchSize: Math.min(batch, maxQueueSize),
    scheduledDelayMs: getNumberFromEnv("OTEL_BSP_SCHEDULE_DELAY") ?? 5000,
    exportTimeoutMs: getNumberFromEnv("OTEL_BSP_EXPORT_TIMEOUT") ?? 30000,
  };
}

export interface WorkerExportOptions {
  settings: BatchSettings;
  setup: WorkerSetup;
  /** Spans dropped because the worker had `maxQueueSize` spans not yet exported. */
  dropped: (count: number) => void;
  warn: (message: string, detail?: string) => void;
}

/**
 * The BatchSpanProcessor's job with the serialisation and the HTTP requests off the event loop:
 * ended, sampled spans are posted as plain data, in small chunks, to a worker thread, which
 * exports them in batches. Spans beyond `maxQueueSize` not yet exported are dropped (and
 * counted), as the SDK's processor does.
 */
export class WorkerExport implements SpanSink {
  readonly #settings: BatchSettings;
  readonly #options: WorkerExportOptions;
  readonly #worker: Worker;
  /** The chunk so far. */
  #batch: WireSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Spans posted to the worker and not yet done with. */
  #outstanding = 0;
  #nextId = 0;
  readonly #waiting = new Map<number, () => void>();
  #shutdown: Promise<void> | undefined;
  #failed = false;

  constructor(options: WorkerExportOptions) {
    this.#settings = options.settings;
    this.#options = options;
    this.#worker = new Worker(new URL("./tracing-worker.js", import.meta.url), {
      workerData: { ...options.setup, ...options.settings } satisfies WorkerData,
    });
    this.#worker.unref();
    this.#worker.on("message", (message: FromWorker) => this.#received(message));
    this.#worker.on("error", (error) => {
      this.#failed = true;
      options.warn("span export worker failed: spans are no longer exported", String(error));
      for (const resolve of this.#waiting.values()) resolve();
      this.#waiting.clear();
    });
  }

  push(span: WireSpan): void {
    if (this.#shutdown || this.#failed) return;
    if (this.#outstanding + this.#batch.length >= this.#settings.maxQueueSize) {
      this.#options.dropped(1);
      return;
    }
    this.#batch.push(span);
    if (this.#batch.length >= POST_CHUNK) this.#post();
    else if (!this.#timer) {
      this.#timer = setTimeout(
        () => this.#post(),
        Math.min(POST_DELAY_MS, this.#settings.scheduledDelayMs),
      );
      this.#timer.unref();
    }
  }

  forceFlush(): Promise<void> {
    if (this.#shutdown) return this.#shutdown;
    if (this.#failed) return Promise.resolve();
    return this.#ask("flush");
  }

  shutdown(): Promise<void> {
    if (this.#failed) this.#shutdown ??= Promise.resolve();
    this.#shutdown ??= this.#ask("flush")
      .then(() => this.#ask("shutdown"))
      .then(() => this.#worker.terminate())
      .then(() => {});
    return this.#shutdown;
  }

  #post(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#batch.length === 0) return;
    const spans = this.#batch;
    this.#batch = [];
    this.#outstanding += spans.length;
    this.#send({ type: "spans", spans });
  }

  #ask(type: "flush" | "shutdown"): Promise<void> {
    this.#post();
    const id = this.#nextId++;
    return new Promise<void>((resolve) => {
      this.#waiting.set(id, resolve);
      this.#send({ type, id });
    });
  }

  #send(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  #received(message: FromWorker): void {
    switch (message.type) {
      case "done":
        this.#outstanding -= message.count;
        break;
      case "flushed": {
        const resolve = this.#waiting.get(message.id);
        this.#waiting.delete(message.id);
        resolve?.();
        break;
      }
      case "warn":
        this.#options.warn(message.message, message.detail);
        break;
    }
  }
}
