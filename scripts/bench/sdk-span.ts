// scripts/bench: the OpenTelemetry SDK's span for one of our ended spans (a WireSpan) — what the SDK's batch
// processor would hand its OTLP exporter; the reference our encoders are tested and benchmarked against.

import type { SpanContext } from "@opentelemetry/api";
import {
  hrTimeDuration,
  type InstrumentationScope,
  millisToHrTime,
  TraceState,
} from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-node";
import {
  type AttributeLimits,
  attributeObjects,
  mergeAttributes,
} from "../../bootstrap/tracing-encode.js";
import type { WireSpan } from "../../bootstrap/tracing-export.js";

function spanContextOf(
  traceId: string,
  spanId: string,
  traceFlags: number,
  traceState: string | null,
  isRemote: boolean,
): SpanContext {
  const context: SpanContext = { traceId, spanId, traceFlags, isRemote };
  return traceState === null ? context : { ...context, traceState: new TraceState(traceState) };
}

/**
 * The SDK's span for a WireSpan (the oracle's input): what the SDK's BatchSpanProcessor would
 * hand its OTLP exporter, attributes merged and limited as the SDK's span does.
 */
export function toReadable(
  wire: WireSpan,
  attributeLimits: AttributeLimits,
  resource: Resource,
  scopes: Map<string, InstrumentationScope>,
): ReadableSpan {
  const [name, kind, traceId, spanId, traceFlags, traceState, parentSpanId, parentIsRemote] = wire;
  const [startMs, endMs, statusCode, statusMessage, parts, events, links] = wire.slice(8, 15) as [
    number,
    number,
    number,
    string | null,
    WireSpan[12],
    WireSpan[13],
    WireSpan[14],
  ];
  const [droppedEventsCount, droppedLinksCount, scopeName, scopeVersion, scopeSchemaUrl] =
    wire.slice(15) as [number, number, string, string | null, string | null];
  const key = `${scopeName}@${scopeVersion}@${scopeSchemaUrl}`;
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
  const [attributes, droppedAttributesCount] = mergeAttributes(
    attributeObjects(parts),
    attributeLimits.attributeCount,
    attributeLimits.attributeValueLength,
  );
  return {
    name,
    kind,
    spanContext: () => context,
    ...(parentSpanId !== null
      ? {
          parentSpanContext: spanContextOf(traceId, parentSpanId, traceFlags, null, parentIsRemote),
        }
      : {}),
    startTime: millisToHrTime(startMs),
    endTime: millisToHrTime(endMs),
    duration: hrTimeDuration(millisToHrTime(startMs), millisToHrTime(endMs)),
    ended: true,
    status:
      statusMessage !== null ? { code: statusCode, message: statusMessage } : { code: statusCode },
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
