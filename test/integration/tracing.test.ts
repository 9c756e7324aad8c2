// test/integration: traces end to end — node processes on NATS export OTLP/JSON to a receiver this test
// runs on 127.0.0.1; one PUBLISH is one trace across three processes, a placement shows its loads.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { homeOf } from "../../transport/placement.js";
import {
  cluster,
  type NodeHandle,
  type Scene,
  type SipTraceMessage,
  scene,
  startNatsServer,
  waitFor,
} from "./harness.js";
import {
  ancestry,
  type OtlpReceiver,
  type ReceivedSpan,
  SPAN_KIND,
  startOtlpReceiver,
} from "./otlp-receiver.js";
import { SipPublisher } from "./sip-client.js";

const fast = ["--heartbeat", "200", "--dead-after", "3000"];

let receiver: OtlpReceiver;
before(async () => {
  receiver = await startOtlpReceiver();
});
after(() => receiver.close());

function otel(): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "50",
  };
}

const isNotify = (message: SipTraceMessage): boolean =>
  message.direction === "received" && message.method === "NOTIFY";

const nodeOf = (span: ReceivedSpan): unknown => span.attributes["presence.node.id"];

async function startTracedCluster(s: Scene): Promise<NodeHandle[]> {
  const nats = await startNatsServer(s.dir);
  const ids = ["a", "b", "c"];
  const nodes = await Promise.all(
    ids.map((id, i) =>
      s.startNode({
        id,
        role: i === 0 ? "primary" : "server",
        args: ["--nats", nats.url, ...fast, "--log-level", "debug"],
        env: otel(),
      }),
    ),
  );
  await waitFor(
    async () => {
      for (const node of nodes) {
        const view = (await cluster(node)) as Awaited<ReturnType<typeof cluster>> & {
          homes: string[];
        };
        if (view.homes.join(",") !== "a,b,c") return false;
        const ready = await fetch(`http://${node.http}/readyz`);
        await ready.arrayBuffer();
        if (ready.status !== 200) return false;
      }
      return true;
    },
    { what: "three nodes ready, presentities placed on all of them", nodes, timeoutMs: 15_000 },
  );
  return nodes;
}

function userHomedOn(node: string, prefix: string): string {
  for (let i = 0; ; i += 1) {
    const user = `${prefix}${i}`;
    if (homeOf(`sip:${user}@127.0.0.1`, ["a", "b", "c"]) === node) return user;
  }
}

describe("tracing - OTLP export from node processes", () => {
  it(
    "tracing - one PUBLISH on B for a presentity homed on C is one trace reaching the NOTIFYs on A and B",
    scene("tracing", async (s) => {
      const [a, b] = await startTracedCluster(s);
      assert.ok(a && b);
      const user = userHomedOn("c", "traced");
      const presentity = `sip:${user}@127.0.0.1`;
      const watchers = await Promise.all(
        [a, b].map(async (node) => {
          const watcher = await s.startSipp({
            scenario: "watcher.xml",
            transport: "udp",
            target: node.sip,
            service: user,
            vars: { expires: 600, notifies: 1 },
          });
          await watcher.waitForMessage(isNotify, `the first NOTIFY from ${node.id}`, {
            nodes: [node],
          });
          return watcher;
        }),
      );
      const publisher = await SipPublisher.open();
      try {
        const answer = await publisher.publish(
          b.sipPort,
          user,
          `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${presentity}"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`,
          { expires: 600 },
        );
        assert.equal(answer.status, 200);
      } finally {
        await publisher.close();
      }
      for (const watcher of watchers) {
        await watcher.waitForMessage(isNotify, "the NOTIFY of the publication", { count: 2 });
      }

      const found = await waitFor(
        () => {
          const publish = receiver
            .spans()
            .find(
              (span) =>
                span.name === "SIP PUBLISH" &&
                span.kind === SPAN_KIND.server &&
                span.attributes["presence.presentity"] === presentity,
            );
          if (!publish) return undefined;
          const trace = receiver.spans().filter((span) => span.traceId === publish.traceId);
          const notifies = trace.filter(
            (span) => span.name === "SIP NOTIFY" && span.kind === SPAN_KIND.client,
          );
          const onA = notifies.find((span) => nodeOf(span) === "a");
          const onB = notifies.find((span) => nodeOf(span) === "b");
          // Each process sends its spans in batches of its own: wait for whole chains.
          const whole = [onA, onB].every(
            (notify) => notify && ancestry(notify, trace).at(-1)?.parentSpanId === undefined,
          );
          return onA && onB && whole ? { publish, trace, onA, onB } : undefined;
        },
        {
          what: "the PUBLISH trace with a NOTIFY span on A and on B, their chains complete",
          nodes: [a, b],
        },
      );
      assert.deepEqual(receiver.errors, []);
      const { publish, trace, onA, onB } = found;
      assert.equal(publish.parentSpanId, undefined, "the PUBLISH transaction is the root");
      assert.equal(nodeOf(publish), "b");
      assert.equal(publish.attributes["sip.method"], "PUBLISH");
      assert.ok(publish.attributes["sip.call_id"], "the Call-ID is on the span");
      for (const notify of [onA, onB]) {
        const chain = ancestry(notify, trace);
        assert.equal(
          chain.at(-1),
          publish,
          `the NOTIFY on ${nodeOf(notify)} descends from the PUBLISH`,
        );
        const home = chain.find((span) => span.kind === SPAN_KIND.consumer && nodeOf(span) === "c");
        assert.ok(home, `the home resource's work on C is on the path to ${nodeOf(notify)}`);
        assert.equal(home.attributes["presence.presentity"], presentity);
        assert.match(String(home.attributes["presence.actor"]), /^c:presence\//);
        const hop = chain[chain.indexOf(home) + 1];
        assert.equal(
          hop?.kind,
          SPAN_KIND.producer,
          "the consumer's parent is the sender's PRODUCER",
        );
        assert.equal(nodeOf(hop ?? publish), "b");
        assert.equal(notify.attributes["presence.presentity"], presentity);
      }
      const processes = new Set(trace.map((span) => span.resource["service.instance.id"]));
      assert.deepEqual([...processes].sort(), ["a", "b", "c"]);
      const lines = readFileSync(b.logFile, "utf8")
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const inTrace = lines.filter((line) => line.trace_id === publish.traceId);
      assert.ok(inTrace.length > 0, "log lines written inside the PUBLISH trace carry its id");
      const spanIds = new Set(trace.map((span) => span.spanId));
      for (const line of inTrace)
        assert.ok(spanIds.has(String(line.span_id)), JSON.stringify(line));
    }),
  );

  it(
    "tracing - a SUBSCRIBE at the primary shows the placement decision with the load levels it saw",
    scene("tracing", async (s) => {
      const [a] = await startTracedCluster(s);
      assert.ok(a);
      // Loads tie at first and the primary (first by id) keeps the first watcher; the next goes on.
      for (const user of ["placed0", "placed1"]) {
        const watcher = await s.startSipp({
          scenario: "watcher-redirect.xml",
          transport: "udp",
          target: a.sip,
          service: user,
          vars: { expires: 600 },
        });
        await watcher.waitForMessage(isNotify, `${user}'s first NOTIFY`, { nodes: [a] });
      }
      const { decision, trace } = await waitFor(
        () => {
          const decision = receiver
            .spans()
            .find(
              (span) =>
                span.name === "supervisor place" &&
                String(span.attributes["presence.watcher"]).includes("placed1"),
            );
          if (!decision) return undefined;
          const trace = receiver.spans().filter((span) => span.traceId === decision.traceId);
          // The SUBSCRIBE's span ends with its 302, after the decision: maybe in a later batch.
          const whole = ancestry(decision, trace).at(-1)?.parentSpanId === undefined;
          const ccmp = trace.some((span) => span.name === "ccmp INFO");
          return whole && ccmp ? { decision, trace } : undefined;
        },
        {
          what: "the supervisor's placement span for the second watcher, its trace complete",
          nodes: [a],
        },
      );
      const root = ancestry(decision, trace).at(-1);
      assert.equal(root?.name, "SIP SUBSCRIBE");
      assert.equal(root?.kind, SPAN_KIND.server);
      assert.equal(nodeOf(decision), "a");
      const loads = JSON.parse(String(decision.attributes["presence.placement.loads"]));
      for (const server of ["b", "c"]) {
        assert.equal(typeof decision.attributes[`presence.load.${server}`], "number");
        assert.equal(loads[server], decision.attributes[`presence.load.${server}`]);
      }
      const chosen = decision.attributes["presence.placement.server"];
      assert.ok(chosen === "b" || chosen === "c", `chosen ${String(chosen)}`);
      const ccmp = trace.find(
        (span) => span.name === "ccmp INFO" && span.kind === SPAN_KIND.producer,
      );
      assert.match(String(ccmp?.attributes["ccmp.document"]), /redirection-usr-addr/);
      const hasParent = (span: ReceivedSpan): boolean => ancestry(span, trace).includes(decision);
      assert.ok(ccmp && hasParent(ccmp), "the CCMP mail is sent within the decision");
      const kept = await waitFor(
        () => {
          const subscribe = receiver
            .spans()
            .find(
              (span) =>
                span.name === "SIP SUBSCRIBE" &&
                span.kind === SPAN_KIND.server &&
                nodeOf(span) === "a" &&
                String(span.attributes["presence.presentity"]).includes("placed0"),
            );
          if (!subscribe) return undefined;
          const notify = receiver
            .spans()
            .find(
              (span) =>
                span.traceId === subscribe.traceId &&
                span.name === "SIP NOTIFY" &&
                span.kind === SPAN_KIND.client,
            );
          return notify ? { subscribe, notify } : undefined;
        },
        {
          what: "the first NOTIFY of the watcher the primary kept, in its SUBSCRIBE's trace",
          nodes: [a],
        },
      );
      assert.equal(nodeOf(kept.notify), "a");
      const joined = receiver
        .spans()
        .filter((span) => span.name === "supervisor session-up" && nodeOf(span) === "a")
        .map((span) => span.attributes["presence.decision.server"]);
      assert.deepEqual([...new Set(joined)].sort(), ["b", "c"], "each server's session decision");
    }),
  );
});
