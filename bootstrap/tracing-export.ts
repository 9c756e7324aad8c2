// bootstrap: exports a node's spans — encodes each ended span into the next OTLP request's body (batched as
// the SDK's BatchSpanProcessor does) and hands full bodies to tracing-worker.ts, which sends them.

import { Worker } from "node:worker_threads";
import type { Attributes } from "@opentelemetry/api";
import { getNumberFromEnv } from "@opentelemetry/core";
import {
  type EncoderSetup,
  type OtlpEncoding,
  type SpanEncoder,
  spanEncoder,
} from "./tracing-encode.js";
import type { SpanSink } from "./tracing-spans.js";

/**
 * An ended span as data (tracing-spans.ts builds it): one flat array of what OTLP carries of a
 * span, resource aside, times in epoch milliseconds; tracing-encode.ts writes it out.
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

/** Main thread → worker: a request body of `count` spans (its buffer transferred), flushes. */
export type ToWorker =
  | { type: "batch"; body: Uint8Array; count: number }
  | { type: "flush"; id: number }
  | { type: "shutdown"; id: number };

/** Worker → main thread: spans done with (exported or not), flushes answered, trouble to log. */
export type FromWorker =
  | { type: "done"; count: number }
  | { type: "flushed"; id: number }
  | { type: "warn"; message: string; detail?: string };

/** What the worker is started with: how to send a body. */
export interface WorkerData {
  protocol: OtlpEncoding;
  contentType: string;
  exportTimeoutMs: number;
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
  protocol: OtlpEncoding;
  /** The resource and attribute limits the encoder writes by. */
  encoding: EncoderSetup;
  /** Spans dropped: the queue (`maxQueueSize` spans not yet exported) was full, or unwritable. */
  dropped: (count: number) => void;
  warn: (message: string, detail?: string) => void;
}

/**
 * The BatchSpanProcessor's job with the OTLP encoding done as spans end and the HTTP requests
 * off the event loop: an ended, sampled span is written straight into the body of the next
 * request (no span objects kept, nothing to clone); a body goes to the worker thread when it
 * holds `maxExportBatchSize` spans or `scheduledDelayMs` after its first. Spans beyond
 * `maxQueueSize` not yet exported are dropped (and counted), as the SDK's processor does.
 */
export class WorkerExport implements SpanSink {
  readonly #settings: BatchSettings;
  readonly #options: WorkerExportOptions;
  readonly #encoder: SpanEncoder;
  readonly #worker: Worker;
  #timer: NodeJS.Timeout | undefined;
  /** Spans handed to the worker and not yet done with. */
  #outstanding = 0;
  #nextId = 0;
  readonly #waiting = new Map<number, () => void>();
  #shutdown: Promise<void> | undefined;
  #failed = false;
  /** Whether a span has failed to encode (said once). */
  #unwritable = false;

  constructor(options: WorkerExportOptions) {
    this.#settings = options.settings;
    this.#options = options;
    this.#encoder = spanEncoder(options.protocol, options.encoding);
    this.#worker = new Worker(new URL("./tracing-worker.js", import.meta.url), {
      workerData: {
        protocol: options.protocol,
        contentType: this.#encoder.contentType,
        exportTimeoutMs: options.settings.exportTimeoutMs,
      } satisfies WorkerData,
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
    const encoder = this.#encoder;
    if (this.#outstanding + encoder.count >= this.#settings.maxQueueSize) {
      this.#options.dropped(1);
      return;
    }
    try {
      encoder.write(span);
    } catch (error) {
      this.#options.dropped(1);
      // Once: the drops that follow are counted in the "Dropped N spans" warning.
      if (!this.#unwritable) {
        this.#unwritable = true;
        this.#options.warn(`span ${span[0]} could not be encoded`, String(error));
      }
      return;
    }
    if (encoder.count >= this.#settings.maxExportBatchSize) this.#post();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#post(), this.#settings.scheduledDelayMs);
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
    const count = this.#encoder.count;
    if (count === 0) return;
    const body = this.#encoder.finish();
    this.#outstanding += count;
    const message: ToWorker = { type: "batch", body, count };
    this.#worker.postMessage(message, [body.buffer as ArrayBuffer]);
  }

  #ask(type: "flush" | "shutdown"): Promise<void> {
    this.#post();
    const id = this.#nextId++;
    return new Promise<void>((resolve) => {
      this.#waiting.set(id, resolve);
      this.#worker.postMessage({ type, id } satisfies ToWorker);
    });
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
