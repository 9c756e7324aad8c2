// bootstrap: the span export worker thread — encodes the spans tracing-export.ts hands over into OTLP request
// bodies and sends them one at a time through the OpenTelemetry OTLP/HTTP transport (OTEL_* variables).

import { parentPort, workerData } from "node:worker_threads";
import { DiagLogLevel, diag } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { OTLPExporterBase } from "@opentelemetry/otlp-exporter-base";
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from "@opentelemetry/otlp-exporter-base/node-http";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { spanEncoder } from "./tracing-encode.js";
import type { FromWorker, ToWorker, WireSpan, WorkerData } from "./tracing-export.js";
import { readSpanRecords } from "./tracing-wire.js";

const port = parentPort;
if (!port) throw new Error("tracing-worker.js runs as a worker thread only");
const setup = workerData as WorkerData;

const tell = (message: FromWorker): void => port.postMessage(message);
const warn = (message: string) => tell({ type: "warn", message: "opentelemetry", detail: message });
diag.setLogger(
  { error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} },
  DiagLogLevel.WARN,
);

const encoder = spanEncoder(setup.protocol, setup.encoding);

/** The SDK's OTLP trace exporter with the serialisation already done: a body is sent as it is. */
const exporter = new OTLPExporterBase<Uint8Array>(
  createOtlpHttpExportDelegate(
    convertLegacyHttpOptions({}, "TRACES", "v1/traces", { "Content-Type": encoder.contentType }),
    {
      serializeRequest: (body: Uint8Array) => body,
      deserializeResponse:
        setup.protocol === "http/json"
          ? JsonTraceSerializer.deserializeResponse
          : ProtobufTraceSerializer.deserializeResponse,
    },
  ),
);

/** Bodies encoded and not yet sent. */
const pending: { body: Uint8Array; count: number }[] = [];
/** Sends the body being written `scheduledDelayMs` after its first span. */
let timer: NodeJS.Timeout | undefined;
/** Whether a span has failed to encode (said once: the drops that follow are counted). */
let unwritable = false;

/** Writes spans into the body being built; a full body is queued for sending. */
function write(spans: WireSpan[]): void {
  let dropped = 0;
  for (const span of spans) {
    try {
      encoder.write(span);
    } catch (error) {
      dropped++;
      if (!unwritable) {
        unwritable = true;
        tell({
          type: "warn",
          message: `span ${span[0]} could not be encoded`,
          detail: String(error),
        });
      }
      continue;
    }
    if (encoder.count >= setup.maxExportBatchSize) seal();
  }
  if (dropped > 0) tell({ type: "done", count: dropped, dropped });
  if (encoder.count > 0 && !timer) timer = setTimeout(seal, setup.scheduledDelayMs);
}

/** Queues the body being built, if it holds spans, and sends it when its turn comes. */
function seal(): void {
  if (timer) clearTimeout(timer);
  timer = undefined;
  const count = encoder.count;
  if (count > 0) pending.push({ body: encoder.finish(), count });
  next();
}

/** Flushes to answer once everything received before them is exported. */
const flushes: number[] = [];
let exporting = false;

/** Sends the next body once the one before is done. */
function next(): void {
  if (exporting) return;
  const batch = pending.shift();
  if (!batch) {
    for (const id of flushes.splice(0)) tell({ type: "flushed", id });
    return;
  }
  exporting = true;
  let settled = false;
  const done = (result: ExportResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(deadline);
    exporting = false;
    if (result.code !== ExportResultCode.SUCCESS) {
      tell({
        type: "warn",
        message: `${batch.count} spans not exported`,
        detail: String(result.error ?? "export failed"),
      });
    }
    tell({ type: "done", count: batch.count, dropped: 0 });
    next();
  };
  const deadline = setTimeout(
    () => done({ code: ExportResultCode.FAILED, error: new Error("export timed out") }),
    setup.exportTimeoutMs,
  );
  exporter.export(batch.body, done);
}

port.on("message", (message: ToWorker) => {
  switch (message.type) {
    case "spans":
      write(readSpanRecords(message.records));
      break;
    case "flush":
      flushes.push(message.id);
      seal();
      break;
    case "shutdown":
      exporter.shutdown().then(
        () => tell({ type: "flushed", id: message.id }),
        () => tell({ type: "flushed", id: message.id }),
      );
      break;
  }
});
