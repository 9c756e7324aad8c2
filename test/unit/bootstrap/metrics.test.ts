// test/unit: the node's Prometheus metrics — the exposition parses strictly and reads the node's stats.
// Stats are plain objects here; the integration test drives a real node.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newNodeStats } from "../../../actors/services.js";
import { createMetrics } from "../../../bootstrap/metrics.js";
import type { RouterStats } from "../../../transport/router.js";
import { parsePrometheusText, sampleValue } from "../../integration/prometheus.js";

function fixture() {
  const stats = newNodeStats();
  const mail: RouterStats = {
    localDelivered: 0,
    forwarded: 0,
    remoteSent: 0,
    remoteReceived: 0,
    dropped: 0,
    askTimeouts: 0,
  };
  const responses = new Map<string, number>();
  let up = false;
  const metrics = createMetrics(
    { node: "n1", role: "primary" },
    {
      stats: () => stats,
      mail: () => mail,
      sipResponses: () => responses,
      load: () => 42.5,
      sessionUp: () => up,
      supervisor: async () => ({
        placed: 7,
        redirected: 7,
        promotions: 2,
        drains: 1,
        poolExhausted: 0,
        declaredDead: 0,
        badCcmp: 0,
      }),
    },
  );
  return { stats, mail, responses, metrics, setUp: (v: boolean) => (up = v) };
}

describe("metrics - exposition", () => {
  it("metrics - the text parses strictly and carries the node label and content type", async () => {
    const { metrics } = fixture();
    const { contentType, text } = await metrics.render();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusText(text);
    for (const name of [
      "presence_subscriptions",
      "presence_publications",
      "presence_presentities",
      "presence_notifies_sent_total",
      "presence_notifies_failed_total",
      "presence_sip_responses_total",
      "presence_mail_sent_total",
      "presence_mail_received_total",
      "presence_mail_dropped_total",
      "presence_mail_latency_seconds",
      "presence_load_level",
      "presence_event_loop_utilization",
      "presence_promotions_total",
      "presence_drains_total",
      "presence_control_session_up",
    ]) {
      assert.ok(families.has(name), `family ${name}`);
    }
    assert.equal(families.get("presence_mail_latency_seconds")?.type, "histogram");
    assert.equal(families.get("presence_subscriptions")?.samples[0]?.labels.node, "n1");
  });

  it("metrics - values follow the stats, SIP responses by method and status, latency observed", async () => {
    const { stats, mail, responses, metrics, setUp } = fixture();
    stats.subscriptions = 3;
    stats.notifiesSent = 5;
    mail.remoteSent = 9;
    mail.dropped = 1;
    responses.set("SUBSCRIBE 200", 4);
    responses.set("PUBLISH 412", 1);
    setUp(true);
    metrics.mailLatency(3);
    metrics.mailLatency(700);
    const families = parsePrometheusText((await metrics.render()).text);
    assert.equal(sampleValue(families, "presence_subscriptions"), 3);
    assert.equal(sampleValue(families, "presence_notifies_sent_total"), 5);
    assert.equal(sampleValue(families, "presence_mail_sent_total"), 9);
    assert.equal(sampleValue(families, "presence_mail_dropped_total"), 1);
    assert.equal(
      sampleValue(families, "presence_sip_responses_total", { method: "SUBSCRIBE", status: "200" }),
      4,
    );
    assert.equal(
      sampleValue(families, "presence_sip_responses_total", { method: "PUBLISH", status: "412" }),
      1,
    );
    assert.equal(sampleValue(families, "presence_load_level"), 42.5);
    assert.equal(sampleValue(families, "presence_control_session_up"), 1);
    assert.equal(sampleValue(families, "presence_promotions_total"), 2);
    assert.equal(sampleValue(families, "presence_drains_total"), 1);
    const latency = "presence_mail_latency_seconds";
    assert.equal(sampleValue(families, latency, {}, `${latency}_count`), 2);
    assert.equal(sampleValue(families, latency, { le: "0.005" }, `${latency}_bucket`), 1);
  });

  it("metrics - the strict reader refuses text that breaks the format", () => {
    assert.throws(() => parsePrometheusText("x 1\n"), /no declared family/);
    assert.throws(() => parsePrometheusText("# TYPE x counter\nx 1\n"), /_total/);
    assert.throws(() => parsePrometheusText('# TYPE x gauge\nx{a="1} 1\n'), /unterminated/);
    assert.throws(() => parsePrometheusText("# TYPE x gauge\nx one\n"), /not a sample value/);
    assert.throws(() => parsePrometheusText("# TYPE x gauge\nx 1"), /newline/);
  });
});
