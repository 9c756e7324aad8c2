// bootstrap: exports a node's spans — hands ended spans as data, in chunks, to tracing-worker.ts, which
// builds the SIP spans' attributes, encodes OTLP request bodies (batched as the SDK's processor does) and sends them.

import { Worker } from "node:worker_threads";
import type { Attributes } from "@opentelemetry/api";
import { getNumberFromEnv } from "@opentelemetry/core";
import { isSipHead, type SipHead } from "../transport/sip-span.js";
import type { EncoderSetup, OtlpEncoding } from "./tracing-encode.js";
import type { SpanSink } from "./tracing-spans.js";

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

/**
 * Main thread → worker: ended spans (structured-cloned; their SIP heads are views of `bytes`,
 * transferred), flushes.
 */
export type ToWorker =
  | { type: "spans"; spans: WireSpan[]; bytes: ArrayBuffer }
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

/** Spans handed to the worker at a time: one structured clone per chunk, not per span. */
const CHUNK = 256;

/** The longest an ended span waits on the event loop before its chunk goes to the worker. */
const CHUNK_DELAY_MS = 100;

/** Room for a chunk's SIP heads (a larger head gets a buffer of its own size). */
const CHUNK_BYTES = 256 * 1024;

/**
 * The BatchSpanProcessor's job with everything but the queue off the event loop: ended, sampled
 * spans go to the worker thread as data in chunks of CHUNK (or CHUNK_DELAY_MS after a chunk's
 * first span), their SIP heads copied into one buffer per chunk that is transferred; the worker builds the SIP spans' attributes from their heads, writes each span
 * into the next OTLP request body, and sends a body when it holds `maxExportBatchSize` spans or
 * `scheduledDelayMs` after its first. Spans beyond `maxQueueSize` not yet exported are dropped
 * (and counted), as the SDK's processor does; so are spans the worker cannot encode.
 */
export class WorkerExport implements SpanSink {
  readonly #settings: BatchSettings;
  readonly #options: WorkerExportOptions;
  readonly #worker: Worker;
  #chunk: WireSpan[] = [];
  /** The chunk's SIP heads, `#used` bytes of it so far. */
  #bytes = new Uint8Array(CHUNK_BYTES);
  #used = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Spans handed to the worker and not yet done with. */
  #outstanding = 0;
  #nextId = 0;
  readonly #waiting = new Map<number, () => void>();
  #shutdown: Promise<void> | undefined;
  #failed = false;

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
    const chunk = this.#chunk;
    if (this.#outstanding + chunk.length >= this.#settings.maxQueueSize) {
      this.#options.dropped(1);
      return;
    }
    // A span holds one SIP head at most (TransactionSpan.describe).
    for (const part of span[12]) if (isSipHead(part)) this.#keep(part);
    this.#chunk.push(span);
    if (this.#chunk.length >= CHUNK) this.#post();
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

  /** The head copied into the chunk's buffer; the span's part is now a view of the copy. */
  #keep(head: SipHead): void {
    const length = head.sipHead.length;
    if (this.#used + length > this.#bytes.length) {
      this.#post();
      if (length > this.#bytes.length) this.#bytes = new Uint8Array(length);
    }
    this.#bytes.set(head.sipHead, this.#used);
    head.sipHead = new Uint8Array(this.#bytes.buffer, this.#used, length);
    this.#used += length;
  }

  #post(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const spans = this.#chunk;
    if (spans.length === 0) return;
    const bytes = this.#bytes.buffer;
    this.#chunk = [];
    this.#bytes = new Uint8Array(CHUNK_BYTES);
    this.#used = 0;
    this.#outstanding += spans.length;
    this.#worker.postMessage({ type: "spans", spans, bytes } satisfies ToWorker, [bytes]);
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
