// bootstrap: tracing of a node process (our tracer, the export worker), set only by the OTEL_* variables.
// No OTLP endpoint set: no provider, no exporter, no spans — the tracing wrapper stays a flag test.

import { context, DiagLogLevel, diag, propagation, trace } from "@opentelemetry/api";
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import { disableTracing, enableTracing, tracingContextManager } from "../transport/tracing.js";
import type { Logger } from "./log.js";
import type { OtlpEncoding } from "./tracing-encode.js";
import { batchSettings, WorkerExport } from "./tracing-export.js";
import { LeanTracerProvider, samplerFromEnv, spanLimitsFromEnv } from "./tracing-spans.js";

export interface Tracing {
  /** Exports the spans still buffered and turns tracing off; never rejects. */
  shutdown(): Promise<void>;
}

const off: Tracing = { shutdown: async () => {} };

type Env = Readonly<Record<string, string | undefined>>;

function set(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** Whether the OTEL_* variables ask for OTLP trace export (an endpoint, and not switched off). */
export function otlpConfigured(env: Env = process.env): boolean {
  if (set(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true") return false;
  const exporters = (set(env, "OTEL_TRACES_EXPORTER") ?? "otlp").split(",").map((e) => e.trim());
  if (!exporters.includes("otlp")) return false;
  return (
    set(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") !== undefined ||
    set(env, "OTEL_EXPORTER_OTLP_ENDPOINT") !== undefined
  );
}

/** The OTLP/HTTP encoding asked for: http/protobuf (the spec's default) or http/json. */
export function otlpProtocol(env: Env = process.env): OtlpEncoding | "grpc" {
  const value =
    set(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? set(env, "OTEL_EXPORTER_OTLP_PROTOCOL");
  if (value === "http/json" || value === "grpc") return value;
  return "http/protobuf";
}

/**
 * Starts tracing when an OTLP endpoint is configured. `instance` names the process in the
 * resource (the node id, or "embedded" for several nodes in one process).
 */
export function startTracing(instance: string, log: Logger): Tracing {
  if (!otlpConfigured()) return off;
  diag.setLogger(
    {
      error: (message) => log.warn("opentelemetry", { detail: message }),
      warn: (message) => log.warn("opentelemetry", { detail: message }),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    DiagLogLevel.WARN,
  );
  const protocol = otlpProtocol();
  if (protocol === "grpc") {
    log.warn("OTLP over gRPC is not supported: exporting over OTLP/HTTP with protobuf instead");
  }
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        "service.name": "presence-cluster",
        "service.instance.id": instance,
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const settings = batchSettings();
  const limits = spanLimitsFromEnv();
  let dropped = 0;
  const exporter = new WorkerExport({
    settings,
    protocol: protocol === "http/json" ? "http/json" : "http/protobuf",
    encoding: {
      resource: resource.attributes,
      ...(resource.schemaUrl ? { resourceSchemaUrl: resource.schemaUrl } : {}),
      attributeCount: limits.attributeCount,
      attributeValueLength: limits.attributeValueLength,
    },
    dropped: (count) => {
      if (dropped === 0) {
        setTimeout(() => {
          log.warn(`Dropped ${dropped} spans: the export queue (OTEL_BSP_MAX_QUEUE_SIZE) was full`);
          dropped = 0;
        }, 1000).unref();
      }
      dropped += count;
    },
    warn: (message, detail) => log.warn(message, detail === undefined ? {} : { detail }),
  });
  const provider = new LeanTracerProvider(exporter, samplerFromEnv(), limits);
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(tracingContextManager());
  propagation.setGlobalPropagator(
    new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  );
  enableTracing(provider.getTracer("presence-cluster"));
  log.info("tracing on: spans exported over OTLP", { protocol });
  return {
    shutdown: async () => {
      disableTracing();
      trace.disable();
      context.disable();
      propagation.disable();
      // Spans the collector did not take are reported by the worker ("N spans not exported").
      await exporter.shutdown();
    },
  };
}
