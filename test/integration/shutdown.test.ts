// test/integration: a node's life end to end - ready once /healthz answers, described by /api/cluster,
// and on SIGTERM every active subscription gets a final NOTIFY
// terminated;reason=probation;retry-after=<--shutdown-retry-after> before the process exits with code 0.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cluster,
  notifies,
  type SipTraceMessage,
  scene,
  subscriptionState,
  transports,
  waitForSubscriptions,
} from "./harness.js";

const isNotify = (message: SipTraceMessage): boolean =>
  message.direction === "received" && message.method === "NOTIFY";

describe("shutdown", { timeout: 60_000 }, () => {
  it(
    "node - ready: GET /healthz is {status: ok}, GET /api/cluster describes the node",
    scene("shutdown", async ({ startNode }) => {
      const node = await startNode({ id: "ready-1" });
      const health = await fetch(`http://${node.http}/healthz`);
      assert.equal(health.status, 200);
      assert.match(health.headers.get("content-type") ?? "", /json/);
      assert.deepEqual(await health.json(), { status: "ok" });

      const view = await cluster(node);
      assert.equal(view.node.id, "ready-1");
      assert.equal(view.node.role, "primary");
      assert.equal(view.node.sip, node.sip);
      assert.equal(view.node.http, node.http);
      assert.equal(typeof view.node.state, "string");
      assert.deepEqual(
        [view.subscriptions, view.presentities, view.publications],
        [0, 0, 0],
        "a fresh node holds nothing",
      );
      assert.ok(Array.isArray(view.nodes));
    }),
  );

  it(
    "shutdown - SIGTERM sends every UDP and TCP watcher a final NOTIFY with reason=probation, then exits 0",
    scene("shutdown", async ({ startNode, startSipp }) => {
      const node = await startNode({ args: ["--shutdown-retry-after", "7"] });
      const watchers = await Promise.all(
        transports.flatMap((transport) =>
          ["carol", "dave"].map((name) =>
            startSipp({
              scenario: "watcher-shutdown.xml",
              transport,
              target: node.sip,
              service: `${name}-${transport}`,
              vars: { expires: 600 },
            }),
          ),
        ),
      );
      for (const watcher of watchers) {
        await watcher.waitForMessage(isNotify, "the first NOTIFY", { nodes: [node] });
      }
      await waitForSubscriptions(node, watchers.length);

      assert.equal(await node.stop(), 0, "exit code after SIGTERM");
      for (const watcher of watchers) {
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        const final = notifies(result.trace).at(-1);
        assert.ok(final);
        // Subscription-State parameters may come in any order.
        const [value, ...parameters] = subscriptionState(final).split(";");
        assert.equal(value, "terminated");
        assert.deepEqual(parameters.sort(), ["reason=probation", "retry-after=7"]);
      }
    }),
  );

  it(
    "shutdown - SIGTERM without subscriptions exits 0",
    scene("shutdown", async ({ startNode }) => {
      const node = await startNode();
      assert.equal(await node.stop(), 0);
    }),
  );
});
