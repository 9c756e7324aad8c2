// test/unit: span export — spans encoded as they end are byte for byte what the SDK's OTLP serialisers write,
// reach an OTLP/HTTP receiver through the worker, and beyond the queue limit are dropped and counted.

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import {
  type Attributes,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { type InstrumentationScope, TraceState } from "@opentelemetry/core";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler } from "@opentelemetry/sdk-trace-node";
import {
  type AttributeLimits,
  mergeAttributes,
  type OtlpEncoding,
  spanEncoder,
} from "../../../bootstrap/tracing-encode.js";
import {
  type BatchSettings,
  type WireSpan,
  WorkerExport,
} from "../../../bootstrap/tracing-export.js";
import {
  LeanTracerProvider,
  type SpanLimits,
  spanLimitsFromEnv,
} from "../../../bootstrap/tracing-spans.js";
import { readSpanRecords, SpanRecordWriter } from "../../../bootstrap/tracing-wire.js";
import { toReadable } from "../../../scripts/bench/sdk-span.js";
import { sipHeadOf } from "../../../transport/sip-span.js";

interface Receiver {
  endpoint: string;
  /** Every request's body and content type, in arrival order. */
  bodies: { type: string | undefined; body: Buffer; headers: IncomingMessage["headers"] }[];
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
    bodies: [],
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
    const type = req.headers["content-type"];
    const raw = Buffer.concat(chunks);
    const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
    state.bodies.push({ type, body, headers: req.headers });
    if (type !== "application/json") {
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      return;
    }
    const document = JSON.parse(body.toString("utf8")) as {
      resourceSpans: {
        resource: { attributes: { key: string; value: { stringValue?: string } }[] };
        scopeSpans: { spans: { name: string; parentSpanId?: string }[] }[];
      }[];
    };
    for (const rs of document.resourceSpans) {
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

const limits: AttributeLimits = {
  attributeCount: 128,
  attributeValueLength: Number.POSITIVE_INFINITY,
};

const settings = (over: Partial<BatchSettings> = {}): BatchSettings => ({
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduledDelayMs: 20,
  exportTimeoutMs: 2000,
  ...over,
});

/** Spans of every shape the encoders meet, ended by our tracer, as the export gets them. */
function variedSpans(spanLimits: SpanLimits): WireSpan[] {
  const ended: WireSpan[] = [];
  const provider = new LeanTracerProvider(
    { push: (span) => ended.push(span) },
    new AlwaysOnSampler(),
    spanLimits,
  );
  const tracer = provider.getTracer("scope-a", "1.2.3");
  const other = provider.getTracer("scope-b", undefined, { schemaUrl: "https://example.com/s" });
  const start = 1_764_000_000_123.457;
  const root = tracer.startSpan("root ünïcode", { startTime: start }, ROOT_CONTEXT);
  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState("vendor=value,other=1"),
  });
  const child = tracer.startSpan(
    "NOTIFY",
    {
      kind: SpanKind.CLIENT,
      startTime: start + 1,
      attributes: {
        text: "x".repeat(300),
        wide: "żółw 🐢",
        int: 5060,
        big: 2 ** 40 + 3,
        negative: -17,
        ratio: 0.25,
        flag: false,
        list: ["a", "b"],
        numbers: [1, 2.5],
        holes: ["a", null, "c"],
      },
      links: [
        {
          context: {
            traceId: "11111111111111111111111111111111",
            spanId: "2222222222222222",
            traceFlags: TraceFlags.NONE,
            isRemote: true,
            traceState: new TraceState("k=v"),
          },
          attributes: { why: "follows" },
        },
      ],
    },
    remote,
  );
  (child as unknown as { takeAttributes(a: Attributes): void }).takeAttributes({
    "presence.node.id": "n1",
    int: 1,
  });
  child.setAttribute("sip.status_code", 200);
  child.addEvent("sent", { bytes: 120 }, start + 2);
  child.addEvent("bare", start + 3);
  child.recordException(new Error("no answer"), start + 4);
  child.setStatus({ code: SpanStatusCode.ERROR, message: "408 Request Timeout" });
  child.end(start + 12.5);
  other.startSpan("server", { kind: SpanKind.SERVER }, trace.setSpan(ROOT_CONTEXT, root)).end();
  for (const kind of [SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL]) {
    tracer.startSpan(`kind ${kind}`, { kind }, ROOT_CONTEXT).end();
  }
  const many: Attributes = {};
  for (let i = 0; i < 140; i++) many[`k${i}`] = i;
  tracer.startSpan("many", { attributes: many }, ROOT_CONTEXT).end();
  root.setStatus({ code: SpanStatusCode.OK });
  root.end(start + 20);
  return ended;
}

/** Our request body and the SDK serialiser's for the same spans. */
function bothBodies(
  protocol: OtlpEncoding,
  spans: WireSpan[],
  attributeLimits: AttributeLimits,
  attributes: Attributes = { "service.name": "encode-test", "service.instance.id": "n1" },
): [Uint8Array, Uint8Array] {
  const schemaUrl = "https://example.com/r";
  const resource = resourceFromAttributes(attributes, { schemaUrl });
  const encoder = spanEncoder(protocol, {
    resource: attributes,
    resourceSchemaUrl: schemaUrl,
    ...attributeLimits,
  });
  for (const span of spans) encoder.write(span);
  assert.equal(encoder.count, spans.length);
  const ours = encoder.finish();
  assert.equal(encoder.count, 0, "finish starts the next request");
  const scopes = new Map<string, InstrumentationScope>();
  const readable = spans.map((span) => toReadable(span, attributeLimits, resource, scopes));
  const serializer = protocol === "http/json" ? JsonTraceSerializer : ProtobufTraceSerializer;
  const theirs = serializer.serializeRequest(readable);
  assert.ok(theirs);
  return [ours, theirs];
}

describe("tracing export - OTLP encodings", () => {
  const cases: [string, AttributeLimits][] = [
    ["no limits reached", limits],
    ["count and length limits", { attributeCount: 4, attributeValueLength: 6 }],
  ];
  for (const [label, attributeLimits] of cases) {
    it(`tracing export - protobuf, byte for byte the SDK's serializer (${label})`, () => {
      const spans = variedSpans(spanLimitsFromEnv());
      const [ours, theirs] = bothBodies("http/protobuf", spans, attributeLimits);
      assert.ok(ours.length > 1000);
      assert.equal(Buffer.from(ours).toString("hex"), Buffer.from(theirs).toString("hex"));
    });

    it(`tracing export - JSON, the same document as the SDK's serializer (${label})`, () => {
      const spans = variedSpans(spanLimitsFromEnv());
      const [ours, theirs] = bothBodies("http/json", spans, attributeLimits);
      const decoded = JSON.parse(Buffer.from(ours).toString("utf8"));
      assert.deepEqual(decoded, JSON.parse(Buffer.from(theirs).toString("utf8")));
      assert.equal(decoded.resourceSpans[0].scopeSpans.length, 2, "one entry per scope");
    });
  }

  it("tracing export - a second request holds only the spans written after the first", () => {
    const [first, second, ...rest] = variedSpans(spanLimitsFromEnv());
    assert.ok(first && second && rest.length > 0);
    const encoder = spanEncoder("http/protobuf", { resource: { "service.name": "x" }, ...limits });
    encoder.write(first);
    const one = encoder.finish();
    encoder.write(second);
    const two = encoder.finish();
    const resource = resourceFromAttributes({ "service.name": "x" });
    const expect = (span: WireSpan) =>
      Buffer.from(
        ProtobufTraceSerializer.serializeRequest([toReadable(span, limits, resource, new Map())]) ??
          [],
      ).toString("hex");
    assert.equal(Buffer.from(one).toString("hex"), expect(first));
    assert.equal(Buffer.from(two).toString("hex"), expect(second));
  });
});

describe("tracing export - a span that cannot be written", () => {
  for (const protocol of ["http/protobuf", "http/json"] as const) {
    it(`tracing export - ${protocol}: it throws and leaves the request as it was`, () => {
      const [first, second] = variedSpans(spanLimitsFromEnv());
      assert.ok(first && second);
      const broken = [...first] as unknown[];
      broken[13] = 5; // events that are no list: found after the ids and attributes are written
      const encoder = spanEncoder(protocol, {
        resource: { "service.name": "x" },
        resourceSchemaUrl: "https://example.com/r",
        ...limits,
      });
      encoder.write(first);
      assert.throws(() => encoder.write(broken as WireSpan), TypeError);
      encoder.write(second);
      assert.equal(encoder.count, 2);
      const [expected] = bothBodies(protocol, [first, second], limits, { "service.name": "x" });
      assert.equal(
        Buffer.from(encoder.finish()).toString("hex"),
        Buffer.from(expected).toString("hex"),
      );
    });
  }
});

describe("tracing export - span records for the worker", () => {
  it("tracing export - every shape of span written as a record reads back as the same span; a SIP head as its bytes", () => {
    const spans = variedSpans(spanLimitsFromEnv());
    const [first] = spans;
    assert.ok(first);
    const data = Buffer.from("NOTIFY sip:w@h SIP/2.0\r\nCall-ID: c1\r\n\r\n<presence/>");
    const head = sipHeadOf(data, { transport: "tcp", address: "127.0.0.2", port: 5070 });
    const withHead = [...first] as WireSpan;
    withHead[12] = [{ "presence.node.id": "n1", odd: { not: "a value" } as never }, head];
    const writer = new SpanRecordWriter(64);
    for (const span of [...spans, withHead]) writer.write(span);
    const { records, count } = writer.take();
    assert.equal(count, spans.length + 1);
    assert.equal(writer.count, 0, "the writer starts again");
    const read = readSpanRecords(records);
    assert.deepEqual(read.slice(0, spans.length), spans);
    const [parts] = read.slice(spans.length).map((span) => span[12]);
    assert.deepEqual(parts?.[0], { "presence.node.id": "n1", odd: {} });
    const part = parts?.[1] as { sipHead: Uint8Array; transport: string; port: number };
    assert.equal(
      Buffer.from(part.sipHead).toString(),
      "NOTIFY sip:w@h SIP/2.0\r\nCall-ID: c1\r\n\r\n",
    );
    assert.deepEqual([part.transport, part.port], ["tcp", 5070]);
  });

  it("tracing export - a span that cannot be written throws and leaves the records as they were", () => {
    const [good] = variedSpans(spanLimitsFromEnv());
    assert.ok(good);
    const broken = [...good] as unknown[];
    broken[13] = 5;
    const writer = new SpanRecordWriter();
    writer.write(good);
    assert.throws(() => writer.write(broken as WireSpan), TypeError);
    writer.write(good);
    const { records, count } = writer.take();
    assert.equal(count, 2);
    assert.deepEqual(readSpanRecords(records), [good, good]);
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
      protocol: "http/json",
      encoding: { resource: { "service.name": "worker-test" }, ...limits },
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

  it("tracing export - over http/protobuf the receiver gets the SDK serializer's bytes, sent by the worker with the OTEL_EXPORTER_OTLP_* headers and compression", async () => {
    const sink = await receiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.endpoint;
    process.env.OTEL_EXPORTER_OTLP_HEADERS = "x-tenant=presence";
    process.env.OTEL_EXPORTER_OTLP_COMPRESSION = "gzip";
    const warnings: string[] = [];
    const attributes = { "service.name": "worker-test" };
    const exporter = new WorkerExport({
      settings: settings(),
      protocol: "http/protobuf",
      encoding: { resource: attributes, ...limits },
      dropped: () => assert.fail("nothing is dropped"),
      warn: (message) => warnings.push(message),
    });
    const ended: WireSpan[] = [];
    const tee = {
      push: (span: WireSpan) => {
        ended.push(span);
        exporter.push(span);
      },
    };
    const provider = new LeanTracerProvider(tee, new AlwaysOnSampler(), spanLimitsFromEnv());
    try {
      const tracer = provider.getTracer("t");
      const root = tracer.startSpan("root", {}, ROOT_CONTEXT);
      tracer.startSpan("child", { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, root)).end();
      root.end();
      await exporter.forceFlush();
      assert.equal(sink.bodies.length, 1, "one request for both spans");
      assert.equal(sink.bodies[0]?.type, "application/x-protobuf");
      assert.equal(sink.bodies[0]?.headers["x-tenant"], "presence");
      assert.equal(sink.bodies[0]?.headers["content-encoding"], "gzip");
      const resource = resourceFromAttributes(attributes);
      const scopes = new Map<string, InstrumentationScope>();
      const expected = ProtobufTraceSerializer.serializeRequest(
        ended.map((span) => toReadable(span, limits, resource, scopes)),
      );
      assert.equal(
        sink.bodies[0]?.body.toString("hex"),
        Buffer.from(expected ?? []).toString("hex"),
      );
      assert.deepEqual(warnings, []);
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
      delete process.env.OTEL_EXPORTER_OTLP_COMPRESSION;
      await exporter.shutdown();
      await sink.close();
    }
  });

  it("tracing export - a span that cannot be encoded is dropped and said once; the others go on", async () => {
    const sink = await receiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.endpoint;
    let dropped = 0;
    const warnings: string[] = [];
    const exporter = new WorkerExport({
      settings: settings(),
      protocol: "http/json",
      encoding: { resource: { "service.name": "worker-test" }, ...limits },
      dropped: (count) => {
        dropped += count;
      },
      warn: (message) => warnings.push(message),
    });
    try {
      const [good] = variedSpans(spanLimitsFromEnv());
      assert.ok(good);
      const broken = [...good] as unknown[];
      broken[13] = 5;
      exporter.push(broken as WireSpan);
      exporter.push(broken as WireSpan);
      exporter.push(good);
      await exporter.forceFlush();
      assert.equal(dropped, 2);
      assert.deepEqual(warnings, ["span NOTIFY could not be encoded"]);
      assert.deepEqual(
        sink.spans.map((span) => span.name),
        ["NOTIFY"],
      );
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
      protocol: "http/json",
      encoding: { resource: { "service.name": "worker-test" }, ...limits },
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
