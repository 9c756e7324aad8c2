// bootstrap: the span export worker thread — rebuilds the spans tracing-export.ts posts and hands them,
// one batch at a time, to the OTLP/HTTP exporter (configured by the OTEL_* variables it inherits).

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
import {
  type FromWorker,
  fromWire,
  type ToWorker,
  type WireSpan,
  type WorkerSetup,
} from "./tracing-export.js";

const port = parentPort;
if (!port) throw new Error("tracing-worker.js runs as a worker thread only");
const setup = workerData as WorkerSetup;

const tell = (message: FromWorker): void => port.postMessage(message);
const warn = (message: string) => tell({ type: "warn", message: "opentelemetry", detail: message });
diag.setLogger(
  { error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} },
  DiagLogLevel.WARN,
);

const exporter = setup.protocol === "http/json" ? new OtlpJsonExporter() : new OtlpProtoExporter();
const resource = resourceFromAttributes(setup.resource);
const scopes = new Map<string, InstrumentationScope>();
const batches: WireSpan[][] = [];
const flushes: number[] = [];
let exporting = false;

/** Exports the next batch once the one before is done; answers flushes when nothing is left. */
function next(): void {
  if (exporting) return;
  const batch = batches.shift();
  if (!batch) {
    for (const id of flushes.splice(0)) tell({ type: "flushed", id });
    return;
  }
  exporting = true;
  let settled = false;
  const done = (result: ExportResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
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
  const timer = setTimeout(
    () => done({ code: ExportResultCode.FAILED, error: new Error("export timed out") }),
    setup.exportTimeoutMs,
  );
  exporter.export(
    batch.map((span) => fromWire(span, resource, scopes)),
    done,
  );
}

port.on("message", (message: ToWorker) => {
  switch (message.type) {
    case "spans":
      batches.push(message.spans);
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
