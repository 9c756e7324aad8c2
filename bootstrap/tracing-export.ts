// bootstrap: exports a node's spans — writes ended spans as records for tracing-worker.ts, which makes the
// SIP spans' attributes, encodes OTLP request bodies (batched as the SDK's processor does) and sends them.

import { Worker } from "node:worker_threads";
import type { Attributes } from "@opentelemetry/api";
import { getNumberFromEnv } from "@opentelemetry/core";
import type { SipHead } from "../transport/sip-span.js";
import type { EncoderSetup, OtlpEncoding } from "./tracing-encode.js";
import type { SpanSink } from "./tracing-spans.js";
import { SpanRecordWriter } from "./tracing-wire.js";

/** A part of a span's attributes: an attribute object, or a SIP head the worker makes one of. */
export type SpanPart = Attributes | SipHead;

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
  attributes: SpanPart[],
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

/** Main thread → worker: `count` ended spans as records (tracing-wire.ts, transferred), flushes. */
export type ToWorker =
  | { type: "spans"; records: Uint8Array; count: number }
  | { type: "flush"; id: number }
  | { type: "shutdown"; id: number };

/**
 * Worker → main thread: spans done with (exported, failed, or dropped as unwritable: `dropped`),
 * flushes answered, trouble to log.
 */
export type FromWorker =
  | { type: "done"; count: number; dropped: number }
  | { type: "flushed"; id: number }
  | { type: "warn"; message: string; detail?: string };

/** What the worker is started with: how to batch, encode and send. */
export interface WorkerData {
  protocol: OtlpEncoding;
  encoding: EncoderSetup;
  maxExportBatchSize: number;
  scheduledDelayMs: number;
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

/** Spans handed to the worker at a time, in one buffer of records. */
const CHUNK = 256;

/** A chunk's buffer: room for CHUNK watcher-call spans (~0.6 KB each) without growing it. */
const CHUNK_BYTES = 256 * 1024;

/** The longest an ended span waits on the event loop before its chunk goes to the worker. */
const CHUNK_DELAY_MS = 100;

/**
 * The BatchSpanProcessor's job with everything but the queue off the event loop: ended, sampled
 * spans are written as records (their SIP heads as bytes) into one buffer; a copy of CHUNK
 * spans' records goes to the worker thread when there are as many or CHUNK_DELAY_MS after the
 * first. The worker builds the SIP spans' attributes from their heads, writes each span into the
 * next OTLP request body, and sends a body when it holds `maxExportBatchSize` spans or
 * `scheduledDelayMs` after its first. Spans beyond `maxQueueSize` not yet exported are dropped
 * (and counted), as the SDK's processor does; so are spans the worker cannot encode.
 */
export class WorkerExport implements SpanSink {
  readonly #settings: BatchSettings;
  readonly #options: WorkerExportOptions;
  readonly #worker: Worker;
  readonly #records = new SpanRecordWriter(CHUNK_BYTES);
  #timer: NodeJS.Timeout | undefined;
  /** Spans handed to the worker and not yet done with. */
  #outstanding = 0;
  #nextId = 0;
  readonly #waiting = new Map<number, () => void>();
  #shutdown: Promise<void> | undefined;
  #failed = false;
  /** Whether a span has failed to be written (said once: the drops that follow are counted). */
  #unwritable = false;

  constructor(options: WorkerExportOptions) {
    this.#settings = options.settings;
    this.#options = options;
    this.#worker = new Worker(new URL("./tracing-worker.js", import.meta.url), {
      workerData: {
        protocol: options.protocol,
        encoding: options.encoding,
        maxExportBatchSize: options.settings.maxExportBatchSize,
        scheduledDelayMs: options.settings.scheduledDelayMs,
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
    const records = this.#records;
    if (this.#outstanding + records.count >= this.#settings.maxQueueSize) {
      this.#options.dropped(1);
      return;
    }
    try {
      records.write(span);
    } catch (error) {
      this.#options.dropped(1);
      if (!this.#unwritable) {
        this.#unwritable = true;
        this.#options.warn(`span ${span[0]} could not be encoded`, String(error));
      }
      return;
    }
    if (records.count >= CHUNK) this.#post();
    else if (!this.#timer) {
      this.#timer = setTimeout(
        () => this.#post(),
        Math.min(CHUNK_DELAY_MS, this.#settings.scheduledDelayMs),
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
    if (this.#records.count === 0) return;
    const taken = this.#records.take();
    // A copy of what was written, transferred: a clone would copy the writer's whole buffer.
    const records = taken.records.slice();
    this.#outstanding += taken.count;
    this.#worker.postMessage({ type: "spans", records, count: taken.count } satisfies ToWorker, [
      records.buffer,
    ]);
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
        if (message.dropped > 0) this.#options.dropped(message.dropped);
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
