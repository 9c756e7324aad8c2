// bootstrap: the span export worker thread — rebuilds the spans tracing-export.ts posts, gathers them
// into batches and hands them, one at a time, to the OTLP/HTTP exporter (configured by OTEL_* variables).

import { parentPort, workerData } from "node:worker_threads";
import { DiagLogLevel, diag } from "@opentelemetry/api";
import {
  type ExportResult,
  ExportResultCode,
  type InstrumentationScope,
} from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-node";
import { type FromWorker, fromWire, type ToWorker, type WorkerData } from "./tracing-export.js";

const port = parentPort;
if (!port) throw new Error("tracing-worker.js runs as a worker thread only");
const setup = workerData as WorkerData;

const tell = (message: FromWorker): void => port.postMessage(message);
const warn = (message: string) => tell({ type: "warn", message: "opentelemetry", detail: message });
diag.setLogger(
  { error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} },
  DiagLogLevel.WARN,
);

const exporter = setup.protocol === "http/json" ? new OtlpJsonExporter() : new OtlpProtoExporter();
const resource = resourceFromAttributes(setup.resource);
const scopes = new Map<string, InstrumentationScope>();
/** Spans received and not yet handed to the exporter. */
let pending: ReadableSpan[] = [];
/** Flushes to answer once everything received before them is exported. */
const flushes: number[] = [];
let exporting = false;
/** Runs `scheduledDelayMs` after a span arrives with no batch full yet: the batch goes then. */
let timer: NodeJS.Timeout | undefined;
let due = false;

/** Exports the next batch (full, due, or flushed) once the one before is done. */
function next(): void {
  if (exporting) return;
  if (pending.length === 0) {
    for (const id of flushes.splice(0)) tell({ type: "flushed", id });
    return;
  }
  if (pending.length < setup.maxExportBatchSize && !due && flushes.length === 0) {
    timer ??= setTimeout(() => {
      timer = undefined;
      due = true;
      next();
    }, setup.scheduledDelayMs);
    return;
  }
  if (timer) clearTimeout(timer);
  timer = undefined;
  due = false;
  const batch = pending.slice(0, setup.maxExportBatchSize);
  pending = pending.slice(batch.length);
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
        message: `${batch.length} spans not exported`,
        detail: String(result.error ?? "export failed"),
      });
    }
    tell({ type: "done", count: batch.length });
    next();
  };
  const deadline = setTimeout(
    () => done({ code: ExportResultCode.FAILED, error: new Error("export timed out") }),
    setup.exportTimeoutMs,
  );
  exporter.export(batch, done);
}

port.on("message", (message: ToWorker) => {
  switch (message.type) {
    case "spans":
      for (const span of message.spans) pending.push(fromWire(span, setup, resource, scopes));
      next();
      break;
    case "flush":
      flushes.push(message.id);
      next();
      break;
    case "shutdown":
      exporter.shutdown().then(
        () => tell({ type: "flushed", id: message.id }),
        () => tell({ type: "flushed", id: message.id }),
      );
      break;
  }
});
