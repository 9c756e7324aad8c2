// test/integration: NOTIFY failures end to end (RFC 6665 section 4.2.2, RFC 3261 Timer F) - a watcher
// that answers 481 and one that vanishes lose their subscriptions; other watchers keep theirs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  lastEtag,
  type NodeHandle,
  notifies,
  pidf,
  type Scene,
  type SipTraceMessage,
  scene,
  type Transport,
  transports,
  tupleIds,
  waitForSubscriptions,
} from "./harness.js";

const isNotify = (message: SipTraceMessage): boolean =>
  message.direction === "received" && message.method === "NOTIFY";

// T1 = 50 ms: an unanswered NOTIFY times out after 64 * T1 = 3.2 s.
const t1Args = ["--sip-t1", "50"];

async function publish(
  { runSipp }: Scene,
  node: NodeHandle,
  transport: Transport,
  user: string,
  basic: "open" | "closed",
  etag?: string,
): Promise<string> {
  const result = await runSipp({
    scenario: etag === undefined ? "publish.xml" : "publish-modify.xml",
    transport,
    target: node.sip,
    service: user,
    vars: etag === undefined ? { expires: 600 } : { etag, expires: 600 },
    files: { "body.pidf": pidf(user, [{ id: "pc", basic }]) },
  });
  assert.equal(result.code, 0, result.describe());
  return lastEtag(result.trace);
}

describe("notify", { timeout: 120_000 }, () => {
  for (const transport of transports) {
    it(
      `notify - a watcher answering 481 loses its subscription, another keeps getting NOTIFYs (${transport})`,
      scene("notify", async (current) => {
        const node = await current.startNode({ args: t1Args });
        const user = "alice";
        const forgetful = await current.startSipp({
          scenario: "watcher-reject-notify.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600 },
        });
        const faithful = await current.startSipp({
          scenario: "watcher.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600, notifies: 2 },
        });
        for (const watcher of [forgetful, faithful]) {
          await watcher.waitForMessage(isNotify, "the first NOTIFY", { nodes: [node] });
        }
        await waitForSubscriptions(node, 2);

        const etag = await publish(current, node, transport, user, "open");
        const rejected = await forgetful.done;
        assert.equal(rejected.code, 0, rejected.describe());
        await faithful.waitForMessage(isNotify, "the NOTIFY for the publication", {
          count: 2,
          nodes: [node],
        });
        await waitForSubscriptions(node, 1);

        await publish(current, node, transport, user, "closed", etag);
        const result = await faithful.done;
        assert.equal(result.code, 0, result.describe());
        const states = notifies(result.trace).map((notify) => notify.body.toString());
        assert.match(states[2] ?? "", /<basic>closed<\/basic>/, "the later NOTIFY still arrives");
        await waitForSubscriptions(node, 0);
      }),
    );

    it(
      `notify - a watcher that stops answering is removed after Timer F (${transport})`,
      scene("notify", async (current) => {
        const node = await current.startNode({ args: t1Args });
        const user = "alice";
        const vanished = await current.runSipp({
          scenario: "watcher-vanish.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600 },
        });
        assert.equal(vanished.code, 0, vanished.describe());
        await waitForSubscriptions(node, 1);

        const survivor = await current.startSipp({
          scenario: "watcher.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600, notifies: 2 },
        });
        await survivor.waitForMessage(isNotify, "the first NOTIFY", { nodes: [node] });
        await waitForSubscriptions(node, 2);

        const etag = await publish(current, node, transport, user, "open");
        await survivor.waitForMessage(isNotify, "the NOTIFY for the publication", {
          count: 2,
          nodes: [node],
        });
        // The survivor is still subscribed (it waits for one more NOTIFY): the one that leaves is
        // the vanished watcher, within Timer F (64 * T1 = 3.2 s) plus slack.
        await waitForSubscriptions(node, 1, 64 * 50 + 5000);
        assert.ok(node.alive());

        await publish(current, node, transport, user, "closed", etag);
        const result = await survivor.done;
        assert.equal(result.code, 0, result.describe());
        assert.deepEqual(tupleIds(notifies(result.trace)[2]?.body ?? ""), ["pc"]);
        await waitForSubscriptions(node, 0);
      }),
    );
  }
});
