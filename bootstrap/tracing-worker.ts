// bootstrap: the span export worker thread — sends the OTLP request bodies tracing-export.ts encodes, one at
// a time, through the OpenTelemetry OTLP/HTTP transport (endpoint, headers, retries from OTEL_* variables).

import { parentPort, workerData } from "node:worker_threads";
import { DiagLogLevel, diag } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { OTLPExporterBase } from "@opentelemetry/otlp-exporter-base";
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from "@opentelemetry/otlp-exporter-base/node-http";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { FromWorker, ToWorker, WorkerData } from "./tracing-export.js";

const port = parentPort;
if (!port) throw new Error("tracing-worker.js runs as a worker thread only");
const setup = workerData as WorkerData;

const tell = (message: FromWorker): void => port.postMessage(message);
const warn = (message: string) => tell({ type: "warn", message: "opentelemetry", detail: message });
diag.setLogger(
  { error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} },
  DiagLogLevel.WARN,
);

/** The SDK's OTLP trace exporter with the serialisation already done: a body is sent as it is. */
const exporter = new OTLPExporterBase<Uint8Array>(
  createOtlpHttpExportDelegate(
    convertLegacyHttpOptions({}, "TRACES", "v1/traces", { "Content-Type": setup.contentType }),
    {
      serializeRequest: (body: Uint8Array) => body,
      deserializeResponse:
        setup.protocol === "http/json"
          ? JsonTraceSerializer.deserializeResponse
          : ProtobufTraceSerializer.deserializeResponse,
    },
  ),
);

/** Bodies received and not yet sent. */
const pending: { body: Uint8Array; count: number }[] = [];
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
    tell({ type: "done", count: batch.count });
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
    case "batch":
      pending.push({ body: message.body, count: message.count });
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
