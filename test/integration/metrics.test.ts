// test/integration: /metrics and /readyz of a real node — the exposition parses strictly and its counters
// move as a SIPp watcher and publisher run against it; a server without a control session is not ready.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  entity,
  type NodeHandle,
  pidf,
  type SipTraceMessage,
  scene,
  waitFor,
  waitForSubscriptions,
} from "./harness.js";
import { type MetricFamily, parsePrometheusText, sampleValue } from "./prometheus.js";

async function scrape(node: NodeHandle): Promise<Map<string, MetricFamily>> {
  const response = await fetch(`http://${node.http}/metrics`, {
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

const isNotify = (message: SipTraceMessage): boolean =>
  message.direction === "received" && message.method === "NOTIFY";

describe("metrics", () => {
  it(
    "metrics - /metrics parses and its counters move as a SIPp watcher and publisher run",
    scene("metrics", async ({ startNode, startSipp, runSipp }) => {
      const node = await startNode();
      const before = await scrape(node);
      const responses = (f: Map<string, MetricFamily>, method: string, status: string): number =>
        sampleValue(f, "presence_sip_responses_total", { method, status });
      assert.equal(sampleValue(before, "presence_subscriptions"), 0);
      assert.equal(sampleValue(before, "presence_notifies_sent_total"), 0);
      assert.equal(sampleValue(before, "presence_control_session_up", { node: "n1" }), 1);

      const user = "metered";
      const watcher = await startSipp({
        scenario: "watcher.xml",
        transport: "udp",
        target: node.sip,
        service: user,
        vars: { expires: 600, notifies: 1 },
      });
      await watcher.waitForMessage(isNotify, "the first NOTIFY", { nodes: [node] });
      await waitForSubscriptions(node, 1);
      const published = await runSipp({
        scenario: "publish.xml",
        transport: "udp",
        target: node.sip,
        service: user,
        vars: { expires: 600 },
        files: { "body.pidf": pidf(user, [{ id: "pc", basic: "open" }]) },
      });
      assert.equal(published.code, 0, published.describe());
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());

      const after = await waitFor(
        async () => {
          const families = await scrape(node);
          return sampleValue(families, "presence_notifies_sent_total") >= 3 ? families : undefined;
        },
        { what: `NOTIFYs of ${entity(user)} counted`, nodes: [node] },
      );
      assert.ok(responses(after, "SUBSCRIBE", "200") >= 2, "the SUBSCRIBE and its unsubscribe");
      assert.equal(responses(after, "PUBLISH", "200"), 1);
      assert.equal(sampleValue(after, "presence_publications"), 1);
      assert.equal(sampleValue(after, "presence_presentities"), 1);
      assert.equal(sampleValue(after, "presence_publishes_applied_total"), 1);
      assert.equal(sampleValue(after, "presence_notifies_failed_total"), 0);
      assert.ok(
        sampleValue(after, "presence_placements_total") >= 1,
        "the primary placed the watcher",
      );
      assert.ok(
        sampleValue(after, "presence_mail_local_total") >
          sampleValue(before, "presence_mail_local_total"),
        "actor mail delivered",
      );
      const utilisation = sampleValue(after, "presence_event_loop_utilization");
      assert.ok(utilisation >= 0 && utilisation <= 1, `utilisation ${utilisation}`);
    }),
  );

  it(
    "metrics - /readyz: a primary is ready, a server without its control session is not",
    scene("metrics", async ({ startNode }) => {
      const primary = await startNode({ id: "p1" });
      const ready = await fetch(`http://${primary.http}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: "ok" });
      const server = await startNode({ id: "s1", role: "server" });
      const alone = await fetch(`http://${server.http}/readyz`);
      assert.equal(alone.status, 503);
      assert.deepEqual(await alone.json(), { status: "no-session" });
      const health = await fetch(`http://${server.http}/healthz`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
      const families = await scrape(server);
      assert.equal(sampleValue(families, "presence_control_session_up"), 0);
    }),
  );
});
