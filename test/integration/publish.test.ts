// test/integration: PUBLISH end to end (RFC 3903, PIDF RFC 3863) - SIPp publishers and watchers over UDP
// and TCP against node processes: entity-tags, composition of several devices, expiry, large and UTF-8
// documents, and the rejections.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  assertContentLength,
  cluster,
  entity,
  lastEtag,
  type NodeHandle,
  notifies,
  type PidfTuple,
  pidf,
  presenceEntities,
  responses,
  type Scene,
  type SippHandle,
  type SipTraceMessage,
  scene,
  subscriptionState,
  type Transport,
  transports,
  tupleIds,
  waitFor,
  waitForSubscriptions,
} from "./harness.js";

const korean = "회의 중입니다";

const isNotify = (message: SipTraceMessage): boolean =>
  message.direction === "received" && message.method === "NOTIFY";

/** A watcher of `user` that answers `more` NOTIFYs after the first, then refreshes and unsubscribes. */
async function watch(
  { startSipp }: Scene,
  node: NodeHandle,
  transport: Transport,
  user: string,
  more: number,
): Promise<SippHandle> {
  const watcher = await startSipp({
    scenario: "watcher.xml",
    transport,
    target: node.sip,
    service: user,
    vars: { expires: 600, notifies: more },
  });
  await watcher.waitForMessage(isNotify, `the first NOTIFY for ${user}`, { nodes: [node] });
  return watcher;
}

/** Waits for the watcher's NOTIFY number `count` (1 is the one right after SUBSCRIBE). */
function nthNotify(
  watcher: SippHandle,
  count: number,
  what: string,
  node: NodeHandle,
): Promise<SipTraceMessage> {
  return watcher.waitForMessage(isNotify, `NOTIFY #${count} (${what})`, {
    count,
    nodes: [node],
  });
}

/** An initial PUBLISH; resolves to the SIP-ETag. */
async function publish(
  { runSipp }: Scene,
  node: NodeHandle,
  transport: Transport,
  user: string,
  tuples: readonly PidfTuple[],
  expires = 600,
): Promise<string> {
  const result = await runSipp({
    scenario: "publish.xml",
    transport,
    target: node.sip,
    service: user,
    vars: { expires },
    files: { "body.pidf": pidf(user, tuples) },
  });
  assert.equal(result.code, 0, result.describe());
  return lastEtag(result.trace);
}

async function unpublish(
  { runSipp }: Scene,
  node: NodeHandle,
  transport: Transport,
  user: string,
  etag: string,
): Promise<void> {
  const result = await runSipp({
    scenario: "publish-refresh.xml",
    transport,
    target: node.sip,
    service: user,
    vars: { etag, expires: 0 },
  });
  assert.equal(result.code, 0, result.describe());
}

describe("publish", { timeout: 180_000 }, () => {
  for (const transport of transports) {
    it(
      `publish - initial, refresh with a new SIP-ETag, modify and remove; the watcher sees each state (${transport})`,
      scene("publish", async (current) => {
        const node = await current.startNode();
        const user = "alice";
        const initialEtag = await publish(current, node, transport, user, [
          { id: "pc", basic: "open", note: "first" },
        ]);

        const refresh = await current.runSipp({
          scenario: "publish-refresh.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { etag: initialEtag, expires: 600 },
        });
        assert.equal(refresh.code, 0, refresh.describe());
        const refreshedEtag = lastEtag(refresh.trace);
        assert.notEqual(refreshedEtag, initialEtag, "a refresh gets a new SIP-ETag");
        assert.equal((await cluster(node)).publications, 1);

        const stale = await current.runSipp({
          scenario: "publish-412.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { etag: initialEtag },
        });
        assert.equal(
          stale.code,
          0,
          `the replaced SIP-ETag is no longer valid\n${stale.describe()}`,
        );

        const watcher = await watch(current, node, transport, user, 2);
        const [first] = notifies(watcher.trace());
        assert.ok(first);
        assert.deepEqual(tupleIds(first.body), ["pc"]);
        assert.match(first.body.toString(), /first/);

        const modify = await current.runSipp({
          scenario: "publish-modify.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { etag: refreshedEtag, expires: 600 },
          files: { "body.pidf": pidf(user, [{ id: "pc", basic: "closed", note: "second" }]) },
        });
        assert.equal(modify.code, 0, modify.describe());
        const modifiedEtag = lastEtag(modify.trace);
        assert.notEqual(modifiedEtag, refreshedEtag);
        const modified = await nthNotify(watcher, 2, "the modified state", node);
        assert.match(subscriptionState(modified), /^active;expires=\d+/);
        assert.deepEqual(tupleIds(modified.body), ["pc"]);
        assert.match(modified.body.toString(), /<basic>closed<\/basic>/);
        assert.doesNotMatch(modified.body.toString(), /first/, "the old state is replaced");

        await unpublish(current, node, transport, user, modifiedEtag);
        const removed = await nthNotify(watcher, 3, "the removal", node);
        assert.deepEqual(presenceEntities(removed.body), [entity(user)]);
        assert.deepEqual(tupleIds(removed.body), [], "the removed publication's tuple is gone");

        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        assert.equal((await cluster(node)).publications, 0);
      }),
    );

    it(
      `publish - the publisher scenario sends each SIP-ETag back in SIP-If-Match (${transport})`,
      scene("publish", async ({ startNode, runSipp }) => {
        const node = await startNode();
        const user = "alice";
        const result = await runSipp({
          scenario: "publisher.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600 },
          files: {
            "initial.pidf": pidf(user, [{ id: "pc", basic: "open" }]),
            "modified.pidf": pidf(user, [{ id: "pc", basic: "closed" }]),
          },
        });
        assert.equal(result.code, 0, result.describe());
        const ok = responses(result.trace, "PUBLISH");
        assert.deepEqual(
          ok.map((message) => message.status),
          [200, 200, 200, 200],
        );
        const etags = ok.slice(0, 3).map((message) => message.header("SIP-ETag"));
        assert.equal(new Set(etags).size, 3, `three distinct entity-tags: ${etags.join(", ")}`);
        assert.equal((await cluster(node)).publications, 0);
      }),
    );

    it(
      `publish - two devices reach the watcher as one PIDF with both tuples, Korean note byte-exact (${transport})`,
      scene("publish", async (current) => {
        const node = await current.startNode();
        const user = "alice";
        const watcher = await watch(current, node, transport, user, 4);

        const pcEtag = await publish(current, node, transport, user, [
          { id: "pc", basic: "open", note: korean },
        ]);
        const one = await nthNotify(watcher, 2, "the first device", node);
        assert.deepEqual(tupleIds(one.body), ["pc"]);
        assert.ok(
          one.body.includes(Buffer.from(`<note>${korean}</note>`, "utf8")),
          `the UTF-8 note arrives byte-exact: ${one.body.toString("utf8")}`,
        );
        assertContentLength(one);

        const phoneEtag = await publish(current, node, transport, user, [
          { id: "phone", basic: "closed", note: "on the road" },
        ]);
        const both = await nthNotify(watcher, 3, "both devices", node);
        assert.deepEqual(presenceEntities(both.body), [entity(user)], "one PIDF document");
        assert.deepEqual([...tupleIds(both.body)].sort(), ["pc", "phone"]);
        assert.ok(both.body.includes(Buffer.from(korean, "utf8")));
        assertContentLength(both);

        await unpublish(current, node, transport, user, pcEtag);
        const phoneOnly = await nthNotify(watcher, 4, "the first device removed", node);
        assert.deepEqual(tupleIds(phoneOnly.body), ["phone"]);
        assert.ok(!phoneOnly.body.includes(Buffer.from(korean, "utf8")));

        await unpublish(current, node, transport, user, phoneEtag);
        const none = await nthNotify(watcher, 5, "both devices removed", node);
        assert.deepEqual(tupleIds(none.body), []);

        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
      }),
    );

    it(
      `publish - an expired publication's tuples leave the watcher's document (${transport})`,
      scene("publish", async (current) => {
        const node = await current.startNode({ args: ["--min-expires", "1"] });
        const user = "alice";
        const watcher = await watch(current, node, transport, user, 2);
        const published = await current.runSipp({
          scenario: "publish.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 2 },
          files: { "body.pidf": pidf(user, [{ id: "brief", basic: "open" }]) },
        });
        assert.equal(published.code, 0, published.describe());
        assert.equal(responses(published.trace, "PUBLISH")[0]?.header("Expires"), "2");

        const shown = await nthNotify(watcher, 2, "the publication", node);
        assert.deepEqual(tupleIds(shown.body), ["brief"]);
        const expired = await nthNotify(watcher, 3, "the publication's expiry", node);
        assert.deepEqual(tupleIds(expired.body), []);
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        await waitFor(async () => (await cluster(node)).publications === 0, {
          what: "GET /api/cluster to report no publications",
          nodes: [node],
        });
      }),
    );

    it(
      `publish - a 50 KB PIDF published over ${transport} reaches a UDP and a TCP watcher`,
      scene("publish", async (current) => {
        const node = await current.startNode();
        const user = "alice";
        const tuples: PidfTuple[] = [];
        while (Buffer.byteLength(pidf(user, tuples)) < 50 * 1024) {
          const index = tuples.length;
          tuples.push({
            id: `t${String(index).padStart(3, "0")}`,
            basic: index % 2 === 0 ? "open" : "closed",
            note: `device ${index} ${"x".repeat(150)}`,
          });
        }

        const watchers = await Promise.all(
          transports.map((watcherTransport) => watch(current, node, watcherTransport, user, 2)),
        );
        const etag = await publish(current, node, transport, user, tuples);
        for (const [index, watcher] of watchers.entries()) {
          const large = await nthNotify(
            watcher,
            2,
            `the 50 KB document (${transports[index]})`,
            node,
          );
          assert.equal(large.transport, transports[index]?.toUpperCase());
          assertContentLength(large);
          assert.deepEqual(
            tupleIds(large.body),
            tuples.map((tuple) => tuple.id),
          );
          const text = large.body.toString("utf8");
          const lost = tuples.filter((tuple) => !text.includes(`<note>${tuple.note}</note>`));
          assert.deepEqual(lost, [], "every note arrives");
        }
        await unpublish(current, node, transport, user, etag);
        for (const watcher of watchers) {
          const result = await watcher.done;
          assert.equal(result.code, 0, result.describe());
          assert.deepEqual(tupleIds(notifies(result.trace)[2]?.body ?? ""), []);
        }
      }),
    );

    it(
      `publish - unknown SIP-If-Match gets 412 (${transport})`,
      scene("publish", async ({ startNode, runSipp }) => {
        const node = await startNode();
        const result = await runSipp({
          scenario: "publish-412.xml",
          transport,
          target: node.sip,
          service: "alice",
          vars: { etag: "never-issued-0000" },
        });
        assert.equal(result.code, 0, result.describe());
      }),
    );

    it(
      `publish - Content-Type other than application/pidf+xml gets 415 (${transport})`,
      scene("publish", async ({ startNode, runSipp }) => {
        const node = await startNode();
        const result = await runSipp({
          scenario: "publish-415.xml",
          transport,
          target: node.sip,
          service: "alice",
          files: { "body.pidf": pidf("alice", [{ id: "pc", basic: "open" }]) },
        });
        assert.equal(result.code, 0, result.describe());
        assert.equal((await cluster(node)).publications, 0);
      }),
    );

    it(
      `publish - Expires below --min-expires gets 423 with Min-Expires: 60 (${transport})`,
      scene("publish", async ({ startNode, runSipp }) => {
        const node = await startNode();
        const result = await runSipp({
          scenario: "publish-423.xml",
          transport,
          target: node.sip,
          service: "alice",
          vars: { expires: 30 },
          files: { "body.pidf": pidf("alice", [{ id: "pc", basic: "open" }]) },
        });
        assert.equal(result.code, 0, result.describe());
        assert.equal(responses(result.trace, "PUBLISH")[0]?.header("Min-Expires"), "60");
        assert.equal((await cluster(node)).publications, 0);
      }),
    );

    for (const [kind, body, says] of [
      [
        "malformed XML",
        `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@127.0.0.1"><tuple id="a"><status><basic>open</basic></status></presence>`,
        /XML/i,
      ],
      [
        "well-formed XML that is not PIDF",
        `<?xml version="1.0" encoding="UTF-8"?>\n<note xmlns="urn:example:not-pidf">hello</note>`,
        /PIDF/i,
      ],
    ] as const) {
      it(
        `publish - ${kind} gets 400 whose reason says what is wrong (${transport})`,
        scene("publish", async ({ startNode, runSipp }) => {
          const node = await startNode();
          const result = await runSipp({
            scenario: "publish-400.xml",
            transport,
            target: node.sip,
            service: "alice",
            files: { "body.pidf": body },
          });
          assert.equal(result.code, 0, result.describe());
          const reason = responses(result.trace, "PUBLISH")[0]?.reason ?? "";
          assert.match(reason, says, `reason phrase "${reason}"`);
          assert.equal((await cluster(node)).publications, 0);
        }),
      );
    }

    it(
      `publish - a body over --max-body-bytes gets 413 (${transport})`,
      scene("publish", async ({ startNode, runSipp }) => {
        const limit = 57_344;
        const node = await startNode({ args: ["--max-body-bytes", String(limit)] });
        const user = "alice";
        // Just over the limit and still one UDP datagram.
        const tuples: PidfTuple[] = [];
        while (Buffer.byteLength(pidf(user, tuples)) <= limit + 512) {
          tuples.push({ id: `t${tuples.length}`, basic: "open", note: "y".repeat(150) });
        }
        const result = await runSipp({
          scenario: "publish-413.xml",
          transport,
          target: node.sip,
          service: user,
          files: { "body.pidf": pidf(user, tuples) },
        });
        assert.equal(result.code, 0, result.describe());
        assert.equal((await cluster(node)).publications, 0);
        await waitForSubscriptions(node, 0);
      }),
    );
  }
});
