// scripts: the span export benchmark (npm run bench:export) — CPU per span of each way to get a node's ended
// spans into an OTLP request, on spans shaped like a watcher call's, in one process (no network).

import { cpus, loadavg } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Attributes, ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import type { InstrumentationScope } from "@opentelemetry/core";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler } from "@opentelemetry/sdk-trace-node";
import { type OtlpEncoding, spanEncoder } from "../bootstrap/tracing-encode.js";
import type { WireSpan } from "../bootstrap/tracing-export.js";
import { LeanTracerProvider, spanLimitsFromEnv } from "../bootstrap/tracing-spans.js";
import { readSpanRecords, SpanRecordWriter } from "../bootstrap/tracing-wire.js";
import { sipHeadOf } from "../transport/sip-span.js";
import { codeState } from "./bench/machine.js";
import { toReadable } from "./bench/sdk-span.js";
import { percentile } from "./bench/stats.js";

const HELP = `npm run bench:export -- [options]

Time per span, in µs, of each way to turn ended spans into OTLP request bodies, measured in turns
(each way one round of --chunk spans, then the next way) so that the machine's noise falls on all;
a sample is the time of the rounds that fill one request body over their spans (p50 and p10 of
the samples).
The spans are a watcher call's five (SIP SUBSCRIBE, supervisor place, SIP NOTIFY, SIP SUBSCRIBE,
SIP NOTIFY) as the node ends them: the SIP spans with their message's head, the placement with
its attribute objects.

  records           this node, the event loop's share: each span written as a record
                    (tracing-wire.ts), a chunk's records copied as postMessage copies them
  read + encode     this node, the export worker's share: a chunk's records read back, the SIP
                    heads made attributes, each span encoded as protobuf (tracing-encode.ts)
  encode protobuf   the encoder alone (the event loop's share in the sixth round)
  encode JSON       the same for OTEL_EXPORTER_OTLP_PROTOCOL=http/json
  clone             the third round: a structured clone of each chunk of spans as data
  SDK protobuf      the third round's worker: the SDK's span objects made again and its
                    protobuf serializer, a request every --batch spans
  SDK JSON          the same with the SDK's JSON serializer

  --rounds <n>      rounds per way (default: 4000)
  --chunk <n>       spans per round (default: 32)
  --batch <n>       spans per request body (default: 512, OTEL_BSP_MAX_EXPORT_BATCH_SIZE's default)
  -h, --help
`;

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "4000" },
    chunk: { type: "string", default: "32" },
    batch: { type: "string", default: "512" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

function count(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${flag} must be a whole number of at least 1, not "${text}"`);
    process.exit(2);
  }
  return value;
}
const rounds = count("rounds", values.rounds);
const chunk = count("chunk", values.chunk);
const batch = count("batch", values.batch);

const node = { "presence.node.id": "bench", "presence.node.role": "server" };

/** Spans of `calls` watcher calls as the node's tracer hands them to the export. */
function watcherCalls(calls: number): WireSpan[] {
  const ended: WireSpan[] = [];
  const provider = new LeanTracerProvider(
    { push: (span) => ended.push(span) },
    new AlwaysOnSampler(),
    spanLimitsFromEnv(),
  );
  const tracer = provider.getTracer("presence-cluster", "0.1.0");
  const take = (span: object, attributes: Attributes): void =>
    (span as { takeAttributes(a: Attributes): void }).takeAttributes(attributes);
  const peer = { transport: "udp", address: "127.0.0.1", port: 5060 };
  for (let i = 0; i < calls; i++) {
    const callId = `${i}-4886@127.0.0.1`;
    const sip = (method: string, kind: SpanKind, parent = ROOT_CONTEXT) => {
      const span = tracer.startSpan(`SIP ${method}`, { kind }, parent);
      take(span, node);
      const message = Buffer.from(
        [
          `${method} sip:p${i}@127.0.0.1:5070 SIP/2.0`,
          "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-bench;rport",
          "Max-Forwards: 70",
          `From: <sip:watcher@127.0.0.1:5060>;tag=w${i}`,
          `To: <sip:p${i}@127.0.0.1>`,
          `Call-ID: ${callId}`,
          `CSeq: 1 ${method}`,
          "Contact: <sip:watcher@127.0.0.1:5060;transport=udp>",
          "Event: presence",
          "Accept: application/pidf+xml",
          "Expires: 600",
          "Content-Length: 0",
          "",
          "",
        ].join("\r\n"),
        "latin1",
      );
      (span as unknown as { takeSipHead(h: object): void }).takeSipHead(sipHeadOf(message, peer));
      return span;
    };
    const subscribe = sip("SUBSCRIBE", SpanKind.SERVER);
    const context = trace.setSpan(ROOT_CONTEXT, subscribe);
    const place = tracer.startSpan("supervisor place", {}, context);
    take(place, node);
    place.setAttributes({
      "presence.actor": "bench:supervisor/supervisor",
      "presence.load.bench": 12,
      "presence.ready.bench": true,
      "presence.placement.server": "bench",
      "presence.placement.reason": "least loaded",
    });
    place.end();
    subscribe.setAttribute("sip.status_code", 200);
    subscribe.end();
    const notify = sip("NOTIFY", SpanKind.CLIENT, context);
    notify.setAttribute("sip.status_code", 200);
    notify.end();
    const unsubscribe = sip("SUBSCRIBE", SpanKind.SERVER);
    unsubscribe.setAttribute("sip.status_code", 200);
    unsubscribe.end();
    const last = sip("NOTIFY", SpanKind.CLIENT, trace.setSpan(ROOT_CONTEXT, unsubscribe));
    last.setAttribute("sip.status_code", 200);
    last.end();
  }
  return ended;
}

const resourceAttributes = { "service.name": "presence-cluster", "service.instance.id": "bench" };
const resource = resourceFromAttributes(resourceAttributes);
const limits = spanLimitsFromEnv();
const encoding = { resource: resourceAttributes, ...limits };
const pool = watcherCalls(Math.ceil((4 * chunk) / 5) + 1);
const chunks = [0, 1, 2, 3].map((k) => pool.slice(k * chunk, (k + 1) * chunk));

/** One way: a round takes a chunk of spans; what it returns is kept so nothing is optimised away. */
interface Way {
  name: string;
  round(spans: WireSpan[]): unknown;
}

function encoderWay(name: string, protocol: OtlpEncoding): Way {
  const encoder = spanEncoder(protocol, encoding);
  return {
    name,
    round(spans) {
      for (const span of spans) {
        encoder.write(span);
        if (encoder.count >= batch) return encoder.finish();
      }
      return encoder.count;
    },
  };
}

function sdkWay(name: string, serializer: typeof ProtobufTraceSerializer): Way {
  const scopes = new Map<string, InstrumentationScope>();
  let pending: ReturnType<typeof toReadable>[] = [];
  return {
    name,
    round(spans) {
      for (const span of spans) {
        pending.push(toReadable(span, limits, resource, scopes));
        if (pending.length >= batch) {
          const body = serializer.serializeRequest(pending);
          pending = [];
          return body;
        }
      }
      return pending.length;
    },
  };
}

/** The event loop's share: records written, a chunk copied as postMessage copies it. */
function recordsWay(): Way {
  const writer = new SpanRecordWriter(256 * 1024);
  return {
    name: "records",
    round(spans) {
      for (const span of spans) writer.write(span);
      const records = writer.take().records.slice();
      return structuredClone(records, { transfer: [records.buffer] });
    },
  };
}

/** The worker's share: a chunk's records read back and encoded. */
function workerWay(): Way {
  const writer = new SpanRecordWriter(256 * 1024);
  const written = new Map<WireSpan[], Uint8Array>();
  for (const spans of chunks) {
    for (const span of spans) writer.write(span);
    written.set(spans, structuredClone(writer.take().records));
  }
  const encode = encoderWay("", "http/protobuf");
  return {
    name: "read + encode",
    round: (spans) => encode.round(readSpanRecords(written.get(spans) ?? new Uint8Array(0))),
  };
}

const ways: Way[] = [
  recordsWay(),
  workerWay(),
  encoderWay("encode protobuf", "http/protobuf"),
  encoderWay("encode JSON", "http/json"),
  { name: "clone", round: (spans) => structuredClone(spans) },
  sdkWay("SDK protobuf", ProtobufTraceSerializer),
  sdkWay("SDK JSON", JsonTraceSerializer),
];

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
console.log(`bench:export ${new Date().toISOString()}`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}`);
console.log(
  `code: ${codeState(root)}; load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
console.log(`${rounds} rounds of ${chunk} spans per way, a request body every ${batch} spans\n`);

/**
 * Figures per cycle: the rounds that fill one request body (a body is finished in one round of
 * the cycle); each sample is a cycle's time over its spans, so a body's cost is spread over them.
 */
const cycle = Math.max(1, Math.round(batch / chunk));
const times = new Map<string, number[]>(ways.map((w) => [w.name, []]));
const sums = new Map<string, number>(ways.map((w) => [w.name, 0]));
let kept = 0;
for (let i = 0; i < rounds; i++) {
  const spans = chunks[i % chunks.length] ?? [];
  for (const way of ways) {
    const start = performance.now();
    const out = way.round(spans);
    sums.set(way.name, (sums.get(way.name) ?? 0) + performance.now() - start);
    kept += out ? 1 : 0;
  }
  if ((i + 1) % cycle === 0) {
    for (const way of ways) {
      times.get(way.name)?.push(((sums.get(way.name) ?? 0) * 1000) / (cycle * chunk));
      sums.set(way.name, 0);
    }
  }
}

const rows = ways.map((way) => {
  const samples = times.get(way.name) ?? [];
  return { name: way.name, p10: percentile(samples, 10) ?? 0, p50: percentile(samples, 50) ?? 0 };
});
const base = rows.find((r) => r.name === "clone")?.p50 ?? 1;
console.log(
  `${"way".padEnd(16)} ${"µs/span p50".padStart(12)} ${"p10".padStart(6)} ${"÷clone".padStart(7)}`,
);
for (const row of rows) {
  console.log(
    `${row.name.padEnd(16)} ${row.p50.toFixed(2).padStart(12)} ${row.p10.toFixed(2).padStart(6)} ${(row.p50 / base).toFixed(2).padStart(7)}`,
  );
}
const records = rows.find((r) => r.name === "records")?.p50 ?? 0;
const worker = rows.find((r) => r.name === "read + encode")?.p50 ?? 0;
const encode = rows.find((r) => r.name === "encode protobuf")?.p50 ?? 0;
console.log(
  `\nprotobuf, the event loop per span: records ${records.toFixed(2)} µs against encoding ${encode.toFixed(2)} µs (${(records / encode).toFixed(2)}×); the worker ${worker.toFixed(2)} µs`,
);
if (kept === 0) console.log("(nothing was produced: a broken run)");
