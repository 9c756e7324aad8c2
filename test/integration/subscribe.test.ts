// test/integration: SUBSCRIBE end to end (RFC 6665, RFC 3856) - real SIPp watchers over UDP and TCP
// against node processes started through the CLI: dialogs, NOTIFY contents, durations and the rejections.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  assertContentLength,
  entity,
  notifies,
  presenceEntities,
  requests,
  responses,
  type SipTraceMessage,
  scene,
  subscriptionState,
  tagOf,
  transports,
  tupleIds,
  waitForSubscriptions,
} from "./harness.js";

function expiresOf(state: string): number {
  const match = /expires=(\d+)/.exec(state);
  assert.ok(match, `Subscription-State "${state}" carries expires`);
  return Number(match[1]);
}

function firstOk(trace: readonly SipTraceMessage[], method: string): SipTraceMessage {
  const ok = responses(trace, method).find((message) => message.status === 200);
  assert.ok(ok, `a 200 to ${method} in the trace`);
  return ok;
}

/** Requests the node must refuse (or, for OPTIONS, answer): scenario, its keys, checks on its trace. */
const rejections: ReadonlyArray<
  readonly [string, string, Record<string, number>, (trace: readonly SipTraceMessage[]) => void]
> = [
  ["unknown Event gets 489 with Allow-Events: presence", "subscribe-489.xml", {}, () => {}],
  [
    "Expires below --min-expires gets 423 with Min-Expires: 60",
    "subscribe-423.xml",
    { expires: 30 },
    (trace) => assert.equal(responses(trace, "SUBSCRIBE")[0]?.header("Min-Expires"), "60"),
  ],
  ["Accept without application/pidf+xml gets 406", "subscribe-406.xml", {}, () => {}],
  ["in-dialog SUBSCRIBE for an unknown dialog gets 481", "subscribe-481.xml", {}, () => {}],
  [
    "unknown method FOO gets 405 with Allow",
    "unknown-method.xml",
    {},
    (trace) => {
      const allow = responses(trace, "FOO")[0]?.header("Allow") ?? "";
      for (const method of ["SUBSCRIBE", "PUBLISH", "OPTIONS"]) {
        assert.match(allow, new RegExp(`\\b${method}\\b`), `Allow lists ${method}`);
      }
      assert.doesNotMatch(allow, /\bFOO\b/);
    },
  ],
  [
    "OPTIONS gets 200 with Allow, Allow-Events: presence, Accept: application/pidf+xml",
    "options.xml",
    {},
    () => {},
  ],
];

describe("subscribe", { timeout: 120_000 }, () => {
  for (const transport of transports) {
    it(
      `subscribe - 200, immediate NOTIFY with the empty PIDF, refresh, final NOTIFY on Expires: 0 (${transport})`,
      scene("subscribe", async ({ startNode, runSipp }) => {
        const node = await startNode();
        const user = "alice";
        const result = await runSipp({
          scenario: "watcher.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600, notifies: 0 },
        });
        assert.equal(result.code, 0, result.describe());

        const subscribe = requests(result.trace, "SUBSCRIBE", "sent")[0];
        assert.ok(subscribe);
        const ok = firstOk(result.trace, "SUBSCRIBE");
        assert.equal(ok.header("Expires"), "600", "the 200 grants the asked duration");
        assert.match(ok.header("Contact") ?? "", /sips?:/);
        const localTag = tagOf(ok.header("To"));
        const watcherTag = tagOf(subscribe.header("From"));
        assert.ok(localTag, "the 200 adds a To-tag");

        const received = notifies(result.trace);
        assert.equal(received.length, 3, "initial, refresh and final NOTIFY");
        const contact = /<([^>]+)>/.exec(subscribe.header("Contact") ?? "")?.[1];
        let lastCseq = 0;
        for (const notify of received) {
          // RFC 3261 12.2.1.1: in-dialog requests go to the remote target, carry the dialog's
          // Call-ID and tags, and raise the CSeq.
          assert.equal(notify.startLine, `NOTIFY ${contact} SIP/2.0`);
          assert.equal(notify.header("Call-ID"), subscribe.header("Call-ID"));
          assert.equal(tagOf(notify.header("From")), localTag);
          assert.equal(tagOf(notify.header("To")), watcherTag);
          const cseq = Number(notify.header("CSeq")?.split(/\s+/)[0]);
          assert.ok(cseq > lastCseq, `NOTIFY CSeq ${cseq} rises above ${lastCseq}`);
          lastCseq = cseq;
          assert.match(notify.header("Event") ?? "", /^presence\b/i);
          assertContentLength(notify);
        }

        const [initial, refreshed, final] = received;
        assert.ok(initial && refreshed && final);
        const state = subscriptionState(initial);
        assert.match(state, /^active;expires=\d+/);
        const remaining = expiresOf(state);
        assert.ok(remaining > 0 && remaining <= 600, `remaining ${remaining} within (0, 600]`);
        assert.match(initial.header("Content-Type") ?? "", /^application\/pidf\+xml/i);
        assert.deepEqual(presenceEntities(initial.body), [entity(user)]);
        assert.deepEqual(tupleIds(initial.body), [], "nothing published: no tuples");

        assert.match(subscriptionState(refreshed), /^active;expires=\d+/);
        assert.match(subscriptionState(final), /^terminated;reason=timeout/);
        await waitForSubscriptions(node, 0);
      }),
    );

    it(
      `subscribe - Expires above --max-expires is capped, absent Expires gets 3600 capped (${transport})`,
      scene("subscribe", async ({ startNode, runSipp }) => {
        const node = await startNode({ id: "n1" });
        const capping = await startNode({ id: "n2", args: ["--max-expires", "300"] });
        const capped = await runSipp({
          scenario: "watcher.xml",
          transport,
          target: capping.sip,
          service: "alice",
          vars: { expires: 1000, notifies: 0 },
        });
        assert.equal(capped.code, 0, capped.describe());
        assert.equal(firstOk(capped.trace, "SUBSCRIBE").header("Expires"), "300");
        const first = notifies(capped.trace)[0];
        assert.ok(first);
        assert.ok(expiresOf(subscriptionState(first)) <= 300);

        for (const [target, granted] of [
          [node, "3600"],
          [capping, "300"],
        ] as const) {
          const result = await runSipp({
            scenario: "subscribe-no-expires.xml",
            transport,
            target: target.sip,
            service: "bob",
          });
          assert.equal(result.code, 0, result.describe());
          assert.equal(firstOk(result.trace, "SUBSCRIBE").header("Expires"), granted);
        }
        await waitForSubscriptions(node, 0);
        await waitForSubscriptions(capping, 0);
      }),
    );

    it(
      `subscribe - an unrefreshed subscription ends with NOTIFY terminated;reason=timeout (${transport})`,
      scene("subscribe", async ({ startNode, startSipp }) => {
        const node = await startNode({ args: ["--min-expires", "1"] });
        const watcher = await startSipp({
          scenario: "watcher-expiry.xml",
          transport,
          target: node.sip,
          service: "alice",
          vars: { expires: 2 },
        });
        await watcher.waitForMessage((m) => m.method === "NOTIFY", "the first NOTIFY", {
          nodes: [node],
        });
        const view = await waitForSubscriptions(node, 1);
        assert.equal(view.presentities, 1, "the watched presentity is listed");
        assert.equal(view.node.sip, node.sip);

        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        assert.equal(firstOk(result.trace, "SUBSCRIBE").header("Expires"), "2");
        const final = notifies(result.trace).at(-1);
        assert.ok(final);
        assert.match(subscriptionState(final), /^terminated;reason=timeout/);
        await waitForSubscriptions(node, 0);
      }),
    );

    for (const [name, scenario, vars, check] of rejections) {
      it(
        `subscribe - ${name} (${transport})`,
        scene("subscribe", async ({ startNode, runSipp }) => {
          const node = await startNode();
          const result = await runSipp({
            scenario,
            transport,
            target: node.sip,
            service: "alice",
            vars,
          });
          assert.equal(result.code, 0, result.describe());
          assert.equal(notifies(result.trace).length, 0, "no NOTIFY");
          check(result.trace);
          await waitForSubscriptions(node, 0);
        }),
      );
    }
  }
});
