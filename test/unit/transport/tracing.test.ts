// test/unit: the tracing wrapper — mail between nodes as PRODUCER/CONSUMER spans linked by the envelope's
// traceparent, local mail continuing its sender's span, nothing at all while tracing is off.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  AlwaysOffSampler,
  InMemorySpanExporter,
  NodeTracerProvider,
  ParentBasedSampler,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-node";
import { start, stop } from "nact";
import { spawnActor } from "../../../actors/actor.js";
import { createLogger, silentLogger } from "../../../bootstrap/log.js";
import { otlpConfigured, otlpProtocol } from "../../../bootstrap/tracing.js";
import type { Envelope } from "../../../transport/envelope.js";
import { LoopbackHub } from "../../../transport/loopback.js";
import { Router } from "../../../transport/router.js";
import {
  activeSpanIds,
  currentTrace,
  disableTracing,
  enableTracing,
  inSpan,
  keepTrace,
  resumeTrace,
  tracingContextManager,
  tracingEnabled,
} from "../../../transport/tracing.js";

function routers(traceLocalMail = false) {
  const hub = new LoopbackHub();
  const make = (nodeId: string) =>
    new Router({
      nodeId,
      transport: hub.connect(nodeId),
      log: silentLogger,
      askTimeoutMs: 500,
      traceLocalMail,
    });
  return { a: make("a"), b: make("b") };
}

/** A mailbox on `router` that keeps what it gets. */
function sink(router: Router): { got: Envelope[]; next: () => Promise<Envelope> } {
  const got: Envelope[] = [];
  let waiting: ((envelope: Envelope) => void) | undefined;
  router.bind(router.address("sink", "one"), {
    deliver(envelope) {
      got.push(envelope);
      waiting?.(envelope);
    },
  });
  return {
    got,
    next: () => new Promise<Envelope>((resolve) => (waiting = resolve)),
  };
}

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
after(() => provider.shutdown());

const byName = (spans: readonly ReadableSpan[], name: string): ReadableSpan => {
  const span = spans.find((s) => s.name === name);
  assert.ok(span, `span ${name} among ${spans.map((s) => s.name).join(", ")}`);
  return span;
};

describe("tracing - configuration by OTEL_* variables", () => {
  it("tracing - no endpoint, a disabled SDK or another exporter means no export", () => {
    assert.equal(otlpConfigured({}), false);
    assert.equal(otlpConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }), true);
    assert.equal(
      otlpConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://x/v1/traces" }),
      true,
    );
    assert.equal(
      otlpConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://x", OTEL_SDK_DISABLED: "true" }),
      false,
    );
    assert.equal(
      otlpConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://x", OTEL_TRACES_EXPORTER: "none" }),
      false,
    );
    assert.equal(otlpProtocol({}), "http/protobuf");
    assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }), "http/json");
    assert.equal(
      otlpProtocol({
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
      }),
      "http/protobuf",
    );
  });
});

describe("tracing - mail hops", () => {
  it("tracing - while off, mail carries no traceparent and no span is made", async () => {
    assert.equal(tracingEnabled(), false);
    const { a } = routers();
    const box = sink(a);
    inSpan(
      "ignored",
      () => [],
      () => a.send(a.address("sink", "one"), "x"),
    );
    assert.equal(box.got[0]?.traceparent, undefined);
    assert.equal(activeSpanIds(), undefined);
    assert.equal(exporter.getFinishedSpans().length, 0);
  });

  it("tracing - a hop across nodes is PRODUCER then CONSUMER, and the actor's own mail after an await stays in the trace through ctx.resume", async () => {
    provider.register({ contextManager: tracingContextManager() });
    enableTracing(provider.getTracer("test"));
    try {
      const { a, b } = routers();
      const box = sink(a);
      const system = start();
      spawnActor<number, string>(
        system,
        b,
        b.address("relay", "r1"),
        {
          async receive(state, message, ctx) {
            // nact runs the mailbox on its own promise chain: the context must come from the mail,
            // and after an await the actor re-enters it.
            await new Promise<void>((resolve) => setImmediate(resolve));
            ctx.resume(() =>
              ctx.span("relay decision", { "test.message": message }, () => {
                b.send(b.address("sink", "one", "a"), `${message} relayed`);
              }),
            );
            return state + 1;
          },
        },
        0,
        { maxMailbox: 10, log: silentLogger, traceAttributes: { "presence.presentity": "p" } },
      );
      const arrived = box.next();
      let traceId = "";
      inSpan(
        "root",
        () => [],
        () => {
          traceId = activeSpanIds()?.traceId ?? "";
          a.send(b.address("relay", "r1"), "hello");
        },
      );
      const envelope = await arrived;
      stop(system);
      const spans = exporter.getFinishedSpans();
      const root = byName(spans, "root");
      const send = byName(spans, "send relay");
      const receive = byName(spans, "receive relay");
      const decision = byName(spans, "relay decision");
      const onward = byName(spans, "send sink");
      assert.equal(root.spanContext().traceId, traceId);
      for (const span of [send, receive, decision, onward]) {
        assert.equal(span.spanContext().traceId, traceId, `${span.name} in the trace`);
      }
      assert.equal(send.parentSpanContext?.spanId, root.spanContext().spanId);
      assert.equal(receive.parentSpanContext?.spanId, send.spanContext().spanId);
      assert.equal(decision.parentSpanContext?.spanId, receive.spanContext().spanId);
      assert.equal(onward.parentSpanContext?.spanId, decision.spanContext().spanId);
      assert.equal(receive.attributes["presence.actor"], "b:relay/r1");
      assert.equal(receive.attributes["presence.presentity"], "p");
      assert.equal(receive.attributes["presence.node.id"], "b");
      assert.equal(decision.attributes["test.message"], "hello");
      assert.equal(envelope.traceparent?.split("-")[2], onward.spanContext().spanId);
    } finally {
      disableTracing();
    }
  });

  it("tracing - local mail has no span pair: the actor continues the sender's span, even one already ended; callbacks it schedules do not", async () => {
    provider.register({ contextManager: tracingContextManager() });
    enableTracing(provider.getTracer("test"));
    exporter.reset();
    try {
      const { a, b } = routers();
      const box = sink(b);
      const system = start();
      let later: Promise<ReturnType<typeof activeSpanIds>> | undefined;
      let inside: ReturnType<typeof activeSpanIds>;
      spawnActor<number, string>(
        system,
        a,
        a.address("relay", "r1"),
        {
          async receive(state, message, ctx) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            ctx.resume(() => {
              inside = activeSpanIds();
              ctx.span("relay decision", {}, () => {
                a.send(b.address("sink", "one"), `${message} relayed`);
              });
              later = new Promise((resolve) => setImmediate(() => resolve(activeSpanIds())));
            });
            return state + 1;
          },
        },
        0,
        { maxMailbox: 10, log: silentLogger },
      );
      const arrived = box.next();
      inSpan(
        "root",
        () => [],
        () => a.send(a.address("relay", "r1"), "hello"),
      );
      const envelope = await arrived;
      stop(system);
      const spans = exporter.getFinishedSpans();
      assert.deepEqual(spans.map((span) => span.name).sort(), [
        "relay decision",
        "root",
        "send sink",
      ]);
      const root = byName(spans, "root");
      const decision = byName(spans, "relay decision");
      const onward = byName(spans, "send sink");
      assert.ok(root.ended, "the sender's span ended before its mail was handled");
      assert.deepEqual(inside, {
        traceId: root.spanContext().traceId,
        spanId: root.spanContext().spanId,
      });
      assert.equal(decision.parentSpanContext?.spanId, root.spanContext().spanId);
      assert.equal(onward.parentSpanContext?.spanId, decision.spanContext().spanId);
      assert.equal(envelope.traceparent?.split("-")[2], onward.spanContext().spanId);
      assert.equal(envelope.trace, undefined, "a local context never crosses nodes");
      assert.equal(await later, undefined, "a callback run after the mail was handled");
    } finally {
      disableTracing();
    }
  });

  it("tracing - with traceLocalMail, local mail gets its PRODUCER/CONSUMER pair too", async () => {
    provider.register({ contextManager: tracingContextManager() });
    enableTracing(provider.getTracer("test"));
    exporter.reset();
    try {
      const { a } = routers(true);
      const system = start();
      const handled = new Promise<void>((resolve) => {
        spawnActor<number, string>(
          system,
          a,
          a.address("relay", "r1"),
          {
            receive(state) {
              resolve();
              return state + 1;
            },
          },
          0,
          { maxMailbox: 10, log: silentLogger },
        );
      });
      inSpan(
        "root",
        () => [],
        () => a.send(a.address("relay", "r1"), "hello"),
      );
      await handled;
      await new Promise<void>((resolve) => setImmediate(resolve));
      stop(system);
      const spans = exporter.getFinishedSpans();
      const send = byName(spans, "send relay");
      const receive = byName(spans, "receive relay");
      assert.equal(send.parentSpanContext?.spanId, byName(spans, "root").spanContext().spanId);
      assert.equal(receive.parentSpanContext?.spanId, send.spanContext().spanId);
    } finally {
      disableTracing();
    }
  });

  it("tracing - local mail sent on to another node takes its sender's span along as traceparent", async () => {
    enableTracing(provider.getTracer("test"));
    exporter.reset();
    try {
      const { a, b } = routers();
      const box = sink(b);
      a.bind(a.address("moved", "m1"), {
        deliver: (envelope) => a.redirect(envelope, b.address("sink", "one")),
      });
      const arrived = box.next();
      let sender = "";
      inSpan(
        "root",
        () => [],
        () => {
          sender = activeSpanIds()?.spanId ?? "";
          a.send(a.address("moved", "m1"), "hello");
        },
      );
      const envelope = await arrived;
      assert.equal(envelope.traceparent?.split("-")[2], sender);
      assert.equal(envelope.trace, undefined);
    } finally {
      disableTracing();
    }
  });

  it("tracing - context follows calls, not awaits: keepTrace and resumeTrace carry it over", async () => {
    provider.register({ contextManager: tracingContextManager() });
    enableTracing(provider.getTracer("test"));
    try {
      let span: ReturnType<typeof activeSpanIds>;
      let kept: (() => ReturnType<typeof activeSpanIds>) | undefined;
      let loose: (() => ReturnType<typeof activeSpanIds>) | undefined;
      let taken: ReturnType<typeof currentTrace>;
      const later = inSpan(
        "request",
        () => [],
        async () => {
          span = activeSpanIds();
          kept = keepTrace(() => activeSpanIds());
          loose = () => activeSpanIds();
          taken = currentTrace();
          await new Promise<void>((resolve) => setImmediate(resolve));
          return activeSpanIds();
        },
      );
      assert.ok(span);
      assert.equal(await later, undefined, "after an await the context is gone");
      assert.deepEqual(kept?.(), span, "a kept callback runs in the span it was made in");
      assert.equal(loose?.(), undefined, "a plain callback does not");
      assert.deepEqual(
        resumeTrace(taken, () => activeSpanIds()),
        span,
      );
      assert.equal(
        resumeTrace(undefined, () => activeSpanIds()),
        undefined,
      );
    } finally {
      disableTracing();
    }
  });

  it("tracing - mail outside a trace starts none, unless it asks for a span of its own", () => {
    enableTracing(provider.getTracer("test"));
    try {
      exporter.reset();
      const { a } = routers();
      const box = sink(a);
      a.send(a.address("sink", "one"), "plain");
      a.send(a.address("sink", "one"), "ccmp", {
        span: { name: "ccmp INFO", attributes: { "sip.method": "INFO" } },
      });
      assert.equal(box.got[0]?.traceparent, undefined);
      assert.match(box.got[1]?.traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const spans = exporter.getFinishedSpans();
      assert.deepEqual(
        spans.map((s) => s.name),
        ["ccmp INFO"],
      );
      assert.equal(spans[0]?.attributes["sip.method"], "INFO");
    } finally {
      disableTracing();
    }
  });
});

describe("tracing - log lines", () => {
  it("tracing - a line written inside a span carries its trace and span id, one outside none", () => {
    enableTracing(provider.getTracer("test"));
    try {
      const lines: Record<string, unknown>[] = [];
      const log = createLogger("info", { node: "a" }, (line) => lines.push(JSON.parse(line)));
      let ids: ReturnType<typeof activeSpanIds>;
      inSpan(
        "logged",
        () => [],
        () => {
          ids = activeSpanIds();
          log.child({ actor: "x" }).info("inside");
        },
      );
      log.info("outside");
      assert.ok(ids);
      assert.equal(lines[0]?.trace_id, ids.traceId);
      assert.equal(lines[0]?.span_id, ids.spanId);
      assert.equal(lines[0]?.actor, "x");
      assert.equal("trace_id" in (lines[1] ?? {}), false);
    } finally {
      disableTracing();
    }
  });

  it("tracing - mail sent inside a sampled-out span carries its unsampled traceparent: no trace of its own", async () => {
    const unsampled = new InMemorySpanExporter();
    const sampler = new ParentBasedSampler({ root: new AlwaysOffSampler() });
    const quiet = new NodeTracerProvider({
      sampler,
      spanProcessors: [new SimpleSpanProcessor(unsampled)],
    });
    provider.register({ contextManager: tracingContextManager() });
    enableTracing(quiet.getTracer("test"));
    try {
      const { a, b } = routers();
      const box = sink(b);
      const arrived = box.next();
      inSpan(
        "sampled out",
        () => [],
        () => a.send(b.address("sink", "one"), "x"),
      );
      const traceparent = (await arrived).traceparent;
      assert.match(traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      assert.equal(unsampled.getFinishedSpans().length, 0);
    } finally {
      disableTracing();
      await quiet.shutdown();
    }
  });
});

describe("tracing - decision spans", () => {
  it("tracing - attributes annotated as a function are built only for a span that records", () => {
    let built = 0;
    const loads = () => {
      built += 1;
      return { "presence.load.a1": 0.25 };
    };
    const decide = (name: string) =>
      inSpan(
        name,
        () => [],
        (annotate) => {
          annotate(loads);
          annotate({ "presence.placement.server": "a1" });
        },
      );
    decide("tracing off");
    assert.equal(built, 0, "no tracer");
    const sampledOut = new NodeTracerProvider({ sampler: new AlwaysOffSampler() });
    try {
      enableTracing(sampledOut.getTracer("test"));
      decide("sampled out");
      assert.equal(built, 0, "a span that does not record");
      enableTracing(provider.getTracer("test"));
      exporter.reset();
      decide("recorded");
      assert.equal(built, 1);
      assert.deepEqual(byName(exporter.getFinishedSpans(), "recorded").attributes, {
        "presence.load.a1": 0.25,
        "presence.placement.server": "a1",
      });
    } finally {
      disableTracing();
      exporter.reset();
    }
  });
});
