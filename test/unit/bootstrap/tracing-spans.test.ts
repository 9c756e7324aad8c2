// test/unit: the node's tracer — spans as the SDK makes them (ids, parents, sampling, limits, status,
// events, exceptions) handed over as data once ended and sampled, and nothing for the rest.

import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import { AlwaysOffSampler, ParentBasedSampler, type Sampler } from "@opentelemetry/sdk-trace-node";
import { attributeObjects, mergeAttributes } from "../../../bootstrap/tracing-encode.js";
import type { WireSpan } from "../../../bootstrap/tracing-export.js";
import {
  LeanTracerProvider,
  samplerFromEnv,
  spanLimitsFromEnv,
} from "../../../bootstrap/tracing-spans.js";
import {
  type AttributeTaker,
  type SpanStarter,
  tracingContextManager,
} from "../../../transport/tracing.js";

const NAME = 0;
const KIND = 1;
const TRACE_ID = 2;
const SPAN_ID = 3;
const PARENT = 6;
const PARENT_REMOTE = 7;
const START = 8;
const END = 9;
const STATUS = 10;
const MESSAGE = 11;
const ATTRIBUTES = 12;
const EVENTS = 13;
const SCOPE = 17;

/** The attributes the export worker makes of a span's parts (no limits). */
function attributesOf(wire: WireSpan) {
  return mergeAttributes(attributeObjects(wire[ATTRIBUTES]), 128, Number.POSITIVE_INFINITY)[0];
}

/** A sampler that counts the questions it is asked. */
function counted(sampler: Sampler): { sampler: Sampler; asked: number } {
  const counter = { sampler, asked: 0 };
  const ask = sampler.shouldSample.bind(sampler);
  sampler.shouldSample = (...args) => {
    counter.asked += 1;
    return ask(...args);
  };
  return counter;
}

function tracerWith(options: { sampler?: Sampler } = {}) {
  const ended: WireSpan[] = [];
  const provider = new LeanTracerProvider(
    { push: (span) => ended.push(span) },
    options.sampler ?? samplerFromEnv(),
    spanLimitsFromEnv(),
  );
  return { tracer: provider.getTracer("scope-a", "1.2.3"), ended, provider };
}

describe("tracing spans - the node's tracer", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of ["OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"]) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  it("tracing spans - a child keeps its parent's trace; both arrive as data once ended, child first", () => {
    const { tracer, ended } = tracerWith();
    const root = tracer.startSpan("root", { kind: SpanKind.SERVER }, ROOT_CONTEXT);
    const child = tracer.startSpan(
      "child",
      { kind: SpanKind.CLIENT, attributes: { "sip.method": "NOTIFY" } },
      trace.setSpan(ROOT_CONTEXT, root),
    );
    child.setAttribute("sip.status_code", 200);
    child.setAttributes({ n: 3, ok: true, list: ["a", "b"] });
    assert.equal(ended.length, 0, "nothing before end()");
    child.end();
    root.end();
    assert.deepEqual(
      ended.map((s) => s[NAME]),
      ["child", "root"],
    );
    const [c, r] = ended as [WireSpan, WireSpan];
    assert.equal(c[KIND], SpanKind.CLIENT);
    assert.equal(r[KIND], SpanKind.SERVER);
    assert.equal(c[TRACE_ID], r[TRACE_ID]);
    assert.match(r[TRACE_ID], /^[0-9a-f]{32}$/);
    assert.match(c[SPAN_ID], /^[0-9a-f]{16}$/);
    assert.notEqual(c[SPAN_ID], r[SPAN_ID]);
    assert.equal(c[PARENT], r[SPAN_ID]);
    assert.equal(c[PARENT_REMOTE], false);
    assert.equal(r[PARENT], null);
    assert.deepEqual(attributesOf(c), {
      "sip.method": "NOTIFY",
      "sip.status_code": 200,
      n: 3,
      ok: true,
      list: ["a", "b"],
    });
    assert.deepEqual(c.slice(SCOPE), ["scope-a", "1.2.3", null]);
    assert.ok(Math.abs(r[START] - Date.now()) < 5_000, "epoch milliseconds");
    assert.ok(c[END] >= c[START]);
    assert.equal(c[STATUS], SpanStatusCode.UNSET);
  });

  it("tracing spans - a remote parent (a traceparent) is kept as remote", () => {
    const { tracer, ended } = tracerWith();
    const remote = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    tracer.startSpan("receive", { kind: SpanKind.CONSUMER }, remote).end();
    const [span] = ended as [WireSpan];
    assert.equal(span[TRACE_ID], "0af7651916cd43dd8448eb211c80319c");
    assert.equal(span[PARENT], "b7ad6b7169203331");
    assert.equal(span[PARENT_REMOTE], true);
  });

  it("tracing spans - end() counts once; nothing changes an ended span", () => {
    const { tracer, ended } = tracerWith();
    const span = tracer.startSpan("once", {}, ROOT_CONTEXT);
    assert.equal(span.isRecording(), true);
    span.end();
    assert.equal(span.isRecording(), false);
    span.setAttribute("late", 1);
    span.setStatus({ code: SpanStatusCode.ERROR, message: "late" });
    span.updateName("renamed");
    span.end();
    assert.equal(ended.length, 1);
    const [wire] = ended as [WireSpan];
    assert.equal(wire[NAME], "once");
    assert.deepEqual(wire[ATTRIBUTES], []);
    assert.equal(wire[STATUS], SpanStatusCode.UNSET);
  });

  it("tracing spans - status: an error keeps its message, OK is final, UNSET changes nothing", () => {
    const { tracer, ended } = tracerWith();
    const failed = tracer.startSpan("failed", {}, ROOT_CONTEXT);
    failed.setStatus({ code: SpanStatusCode.ERROR, message: "408" });
    failed.setStatus({ code: SpanStatusCode.UNSET });
    failed.end();
    const ok = tracer.startSpan("ok", {}, ROOT_CONTEXT);
    ok.setStatus({ code: SpanStatusCode.OK, message: "ignored for OK" });
    ok.setStatus({ code: SpanStatusCode.ERROR, message: "too late" });
    ok.end();
    const [f, o] = ended as [WireSpan, WireSpan];
    assert.deepEqual([f[STATUS], f[MESSAGE]], [SpanStatusCode.ERROR, "408"]);
    assert.deepEqual([o[STATUS], o[MESSAGE]], [SpanStatusCode.OK, null]);
  });

  it("tracing spans - events and exceptions carry their attributes and times", () => {
    const { tracer, ended } = tracerWith();
    const span = tracer.startSpan("with events", {}, ROOT_CONTEXT);
    // Epoch milliseconds (numbers below the process's time origin count from the origin, as in the SDK).
    const at = Date.now();
    span.addEvent("sent", { bytes: 120 }, at);
    span.addEvent("bare", new Date(at));
    const error = new Error("no route");
    span.recordException(error);
    span.recordException("a plain message");
    span.end();
    const events = (ended[0] as WireSpan)[EVENTS];
    assert.ok(events);
    assert.deepEqual(events[0], ["sent", at, { bytes: 120 }, 0]);
    assert.deepEqual(events[1], ["bare", at, null, 0]);
    assert.equal(events[2]?.[0], "exception");
    assert.deepEqual(events[2]?.[2], {
      "exception.type": "Error",
      "exception.message": "no route",
      "exception.stacktrace": error.stack,
    });
    assert.deepEqual(events[3]?.[2], { "exception.message": "a plain message" });
  });

  it("tracing spans - attribute objects handed over are kept by reference; setAttribute wins", () => {
    const { tracer, ended } = tracerWith();
    const node = { "presence.node.id": "n1", "presence.node.role": "server" };
    const own = { "sip.method": "NOTIFY", "sip.status_code": 0 };
    const span = tracer.startSpan("taken", {}, ROOT_CONTEXT) as Span & AttributeTaker;
    span.takeAttributes(node);
    span.takeAttributes(own);
    span.setAttribute("sip.status_code", 200);
    span.end();
    span.takeAttributes({ late: true });
    const [wire] = ended as [WireSpan];
    assert.equal(wire[ATTRIBUTES][0], node, "the very object, not a copy");
    assert.equal(wire[ATTRIBUTES][1], own);
    assert.deepEqual(attributesOf(wire), {
      "presence.node.id": "n1",
      "presence.node.role": "server",
      "sip.method": "NOTIFY",
      "sip.status_code": 200,
    });
  });

  it("tracing spans - a sampled-out span records nothing but carries its context", () => {
    const { tracer, ended } = tracerWith({
      sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }),
    });
    const root = tracer.startSpan("root", {}, ROOT_CONTEXT);
    assert.equal(root.isRecording(), false);
    assert.equal(root.spanContext().traceFlags & TraceFlags.SAMPLED, 0);
    assert.match(root.spanContext().traceId, /^[0-9a-f]{32}$/);
    const child = tracer.startSpan("child", {}, trace.setSpan(ROOT_CONTEXT, root));
    assert.equal(child.spanContext().traceId, root.spanContext().traceId, "same trace");
    child.end();
    root.end();
    assert.equal(ended.length, 0);
    // A sampled remote parent decides for its children under a parent-based sampler.
    const remote = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    tracer.startSpan("continued", {}, remote).end();
    assert.equal(ended.length, 1);
  });

  it("tracing spans - OTEL_TRACES_SAMPLER and its argument pick the SDK's samplers", () => {
    const sampled = (name: string | undefined, arg?: string): number => {
      if (name === undefined) delete process.env.OTEL_TRACES_SAMPLER;
      else process.env.OTEL_TRACES_SAMPLER = name;
      if (arg === undefined) delete process.env.OTEL_TRACES_SAMPLER_ARG;
      else process.env.OTEL_TRACES_SAMPLER_ARG = arg;
      const { tracer, ended } = tracerWith();
      for (let i = 0; i < 200; i++) tracer.startSpan(`s${i}`, {}, ROOT_CONTEXT).end();
      return ended.length;
    };
    assert.equal(sampled(undefined), 200, "parentbased_always_on by default");
    assert.equal(sampled("always_off"), 0);
    assert.equal(sampled("parentbased_always_off"), 0);
    assert.equal(sampled("traceidratio", "0"), 0);
    assert.equal(sampled("parentbased_traceidratio", "1"), 200);
    const half = sampled("parentbased_traceidratio", "0.5");
    assert.ok(half > 50 && half < 150, `about half of 200: ${half}`);
    assert.equal(sampled("no_such_sampler"), 200, "an unknown name falls back to the default");
  });

  it("tracing spans - a child of our own span follows its sampled flag without asking the sampler; other parents are asked", () => {
    process.env.OTEL_TRACES_SAMPLER = "parentbased_traceidratio";
    process.env.OTEL_TRACES_SAMPLER_ARG = "1";
    const all = counted(samplerFromEnv());
    const { tracer, ended } = tracerWith({ sampler: all.sampler });
    const asked = () => all.asked;
    const root = tracer.startSpan("root", {}, ROOT_CONTEXT);
    assert.equal(asked(), 1, "a root is asked");
    const child = tracer.startSpan("child", {}, trace.setSpan(ROOT_CONTEXT, root));
    assert.equal(asked(), 1, "the local parent decided");
    const remote = trace.setSpanContext(ROOT_CONTEXT, { ...root.spanContext(), isRemote: true });
    const far = tracer.startSpan("remote child", {}, remote);
    assert.equal(asked(), 2, "a remote parent is asked about");
    for (const span of [child, far, root]) span.end();
    const traceId = root.spanContext().traceId;
    assert.deepEqual(
      ended.map((s) => [s[NAME], s[TRACE_ID] === traceId, s[PARENT]]),
      [
        ["child", true, root.spanContext().spanId],
        ["remote child", true, root.spanContext().spanId],
        ["root", true, null],
      ],
    );
    const starter = tracer as unknown as SpanStarter;
    const directChild = starter.startChild("direct child", SpanKind.CLIENT, root);
    assert.equal(asked(), 2, "nor is it asked about a child started without a context");
    assert.equal(directChild.spanContext().traceId, traceId);
    const farDirect = starter.startChild("remote direct", SpanKind.CONSUMER, {
      ...root.spanContext(),
      isRemote: true,
    });
    assert.equal(asked(), 3, "a remote parent given directly is asked about");
    assert.equal(farDirect.spanContext().traceId, traceId);
    process.env.OTEL_TRACES_SAMPLER_ARG = "0";
    const none = counted(samplerFromEnv());
    const unsampled = tracerWith({ sampler: none.sampler }).tracer as unknown as SpanStarter;
    const quiet = unsampled.startChild("q", SpanKind.SERVER, undefined);
    assert.equal(quiet.isRecording(), false, "a root sampled out");
    const below = unsampled.startChild("below", SpanKind.INTERNAL, quiet);
    assert.equal(none.asked, 1, "a child of our sampled-out span is not asked about either");
    assert.equal(below.isRecording(), false, "it is not sampled, in the same trace");
    assert.equal(below.spanContext().traceId, quiet.spanContext().traceId);
    const direct = tracerWith({
      sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }),
    });
    const dropped = direct.tracer.startSpan("root", {}, ROOT_CONTEXT);
    direct.tracer.startSpan("child", {}, trace.setSpan(ROOT_CONTEXT, dropped)).end();
    assert.equal(direct.ended.length, 0, "children of a span not sampled are not sampled");
  });

  it("tracing spans - suppressed tracing gives a span that is not recorded", () => {
    const { tracer, ended } = tracerWith();
    const span = tracer.startSpan("quiet", {}, suppressTracing(ROOT_CONTEXT));
    assert.equal(span.isRecording(), false);
    span.end();
    assert.equal(ended.length, 0);
  });

  it("tracing spans - startActiveSpan runs its function with the span active", () => {
    const manager = tracingContextManager();
    context.setGlobalContextManager(manager);
    try {
      const { tracer, ended } = tracerWith();
      const seen = tracer.startActiveSpan("active", (span: Span) => {
        const inner = trace.getSpan(context.active());
        span.end();
        return inner === span;
      });
      assert.equal(seen, true);
      assert.equal(ended.length, 1);
    } finally {
      context.disable();
    }
  });
});
