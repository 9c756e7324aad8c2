// test/unit: span export from a worker thread — spans survive the trip as plain data, reach an OTLP/HTTP
// receiver through the worker, and beyond the queue limit are dropped and counted, never piled up.

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { type Attributes, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { hrTimeToMilliseconds, type InstrumentationScope } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler } from "@opentelemetry/sdk-trace-node";
import {
  type BatchSettings,
  fromWire,
  mergeAttributes,
  type WireSpan,
  WorkerExport,
} from "../../../bootstrap/tracing-export.js";
import { LeanTracerProvider, spanLimitsFromEnv } from "../../../bootstrap/tracing-spans.js";

interface Receiver {
  endpoint: string;
  /** Span names and parent span ids of every JSON request, in arrival order. */
  spans: { name: string; parentSpanId: string | undefined; service: unknown }[];
  requests: number;
  close(): Promise<void>;
}

/** An OTLP/HTTP JSON receiver on loopback; `hang` leaves every request unanswered. */
async function receiver(hang = false): Promise<Receiver> {
  const held: ServerResponse[] = [];
  const state: Receiver = {
    endpoint: "",
    spans: [],
    requests: 0,
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    state.requests += 1;
    if (hang) {
      held.push(res);
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
      resourceSpans: {
        resource: { attributes: { key: string; value: { stringValue?: string } }[] };
        scopeSpans: { spans: { name: string; parentSpanId?: string }[] }[];
      }[];
    };
    for (const rs of body.resourceSpans) {
      const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value
        .stringValue;
      for (const ss of rs.scopeSpans) {
        for (const span of ss.spans) {
          state.spans.push({
            name: span.name,
            parentSpanId: span.parentSpanId || undefined,
            service,
          });
        }
      }
    }
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

const limits = { attributeCount: 128, attributeValueLength: Number.POSITIVE_INFINITY };

const settings = (over: Partial<BatchSettings> = {}): BatchSettings => ({
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduledDelayMs: 20,
  exportTimeoutMs: 2000,
  ...over,
});

describe("tracing export - spans as data", () => {
  it("tracing export - a span posted as data is the same span to the serialiser, resource and scope shared", () => {
    const ended: WireSpan[] = [];
    const provider = new LeanTracerProvider(
      { push: (span) => ended.push(span) },
      new AlwaysOnSampler(),
      spanLimitsFromEnv(),
    );
    const tracer = provider.getTracer("scope-a", "1.2.3");
    const parent = tracer.startSpan("parent", {}, ROOT_CONTEXT);
    const start = Date.now();
    const child = tracer.startSpan(
      "child",
      {
        kind: SpanKind.CLIENT,
        attributes: { "sip.method": "NOTIFY", n: 3, ok: true },
        startTime: start,
      },
      trace.setSpan(ROOT_CONTEXT, parent),
    );
    child.addEvent("sent", { bytes: 120 }, start + 5);
    child.setStatus({ code: SpanStatusCode.ERROR, message: "408" });
    child.end(start + 12.5);
    parent.end();

    const resource = resourceFromAttributes({ "service.name": "x" });
    const scopes = new Map<string, InstrumentationScope>();
    // What postMessage does to a batch on its way to the worker.
    const [wire, otherWire] = structuredClone(ended);
    assert.ok(wire && otherWire);
    const back = fromWire(wire, limits, resource, scopes);
    assert.equal(back.name, "child");
    assert.equal(back.kind, SpanKind.CLIENT);
    const { traceId, spanId, traceFlags } = child.spanContext();
    assert.deepEqual(back.spanContext(), { traceId, spanId, traceFlags, isRemote: false });
    assert.equal(back.parentSpanContext?.spanId, parent.spanContext().spanId);
    assert.deepEqual(back.attributes, { "sip.method": "NOTIFY", n: 3, ok: true });
    assert.equal(hrTimeToMilliseconds(back.startTime), start);
    assert.equal(hrTimeToMilliseconds(back.endTime), start + 12.5);
    assert.deepEqual(back.duration, [0, 12_500_000]);
    assert.equal(back.ended, true);
    assert.deepEqual(back.status, { code: SpanStatusCode.ERROR, message: "408" });
    assert.equal(back.events.length, 1);
    assert.equal(back.events[0]?.name, "sent");
    assert.deepEqual(back.events[0]?.attributes, { bytes: 120 });
    assert.equal(hrTimeToMilliseconds(back.events[0]?.time ?? [0, 0]), start + 5);
    assert.deepEqual(back.links, []);
    assert.deepEqual(back.instrumentationScope, { name: "scope-a", version: "1.2.3" });
    const second = fromWire(otherWire, limits, resource, scopes);
    assert.equal(second.name, "parent");
    assert.equal(second.parentSpanContext, undefined);
    assert.equal(second.resource, back.resource, "one resource object for the serialiser");
    assert.equal(second.instrumentationScope, back.instrumentationScope, "one scope object");
  });
});

describe("tracing export - attribute parts", () => {
  it("tracing export - parts merge in order under the count and length limits, drops counted", () => {
    const [merged, dropped] = mergeAttributes(
      [
        { a: "abcdefgh", b: 1 },
        { c: 2, d: 3 },
        { a: "xy", e: ["abcdef", "g"] },
      ],
      2,
      4,
    );
    assert.deepEqual(merged, { a: "xy", b: 1 });
    assert.equal(dropped, 3, "c, d and e found no room");
    const [cut] = mergeAttributes([{ a: "abcdefgh", list: ["abcdef", "g"] }], 128, 4);
    assert.deepEqual(cut, { a: "abcd", list: ["abcd", "g"] });
    const odd = { ok: 1, bad: { nested: true } } as unknown as Attributes;
    assert.deepEqual(mergeAttributes([odd], 128, Number.POSITIVE_INFINITY), [{ ok: 1 }, 0]);
    const single = { x: 1 };
    assert.equal(
      mergeAttributes([single], 128, Number.POSITIVE_INFINITY)[0],
      single,
      "one valid part within the limits is used as it is",
    );
  });
});

describe("tracing export - the worker thread", () => {
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  after(() => {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  });

  it("tracing export - ended spans reach the OTLP receiver through the worker, parents kept; a flush waits for them", async () => {
    const sink = await receiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.endpoint;
    const warnings: string[] = [];
    const exporter = new WorkerExport({
      settings: settings({ maxExportBatchSize: 3 }),
      setup: {
        protocol: "http/json",
        resource: { "service.name": "worker-test" },
        ...limits,
      },
      dropped: () => assert.fail("nothing is dropped"),
      warn: (message) => warnings.push(message),
    });
    const provider = new LeanTracerProvider(exporter, new AlwaysOnSampler(), spanLimitsFromEnv());
    try {
      const tracer = provider.getTracer("t");
      const root = tracer.startSpan("root", {}, ROOT_CONTEXT);
      const parentContext = trace.setSpan(ROOT_CONTEXT, root);
      for (let i = 0; i < 7; i++) tracer.startSpan(`child ${i}`, {}, parentContext).end();
      root.end();
      await exporter.forceFlush();
      assert.equal(sink.spans.length, 8, "every span, in batches of at most three");
      assert.ok(sink.requests >= 3);
      const rootId = root.spanContext().spanId;
      for (const span of sink.spans.filter((s) => s.name.startsWith("child"))) {
        assert.equal(span.parentSpanId, rootId);
      }
      assert.ok(sink.spans.every((s) => s.service === "worker-test"));
      assert.deepEqual(warnings, []);
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });

  it("tracing export - spans beyond the queue limit are dropped and counted while the receiver hangs", async () => {
    const sink = await receiver(true);
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.endpoint;
    let dropped = 0;
    const warnings: string[] = [];
    const exporter = new WorkerExport({
      settings: settings({ maxQueueSize: 4, maxExportBatchSize: 2, exportTimeoutMs: 300 }),
      setup: {
        protocol: "http/json",
        resource: { "service.name": "worker-test" },
        ...limits,
      },
      dropped: (count) => {
        dropped += count;
      },
      warn: (message) => warnings.push(message),
    });
    const provider = new LeanTracerProvider(exporter, new AlwaysOnSampler(), spanLimitsFromEnv());
    try {
      const tracer = provider.getTracer("t");
      for (let i = 0; i < 10; i++) tracer.startSpan(`span ${i}`).end();
      assert.equal(dropped, 6, "four spans wait for the worker, the other six are dropped");
      await exporter.forceFlush();
      assert.ok(
        warnings.some((w) => /spans not exported/.test(w)),
        `a failed export is reported: ${warnings.join("; ")}`,
      );
      tracer.startSpan("after").end();
      assert.equal(dropped, 6, "once the worker is done with them the queue has room again");
    } finally {
      await exporter.shutdown();
      await sink.close();
    }
  });
});
