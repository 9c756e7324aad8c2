// test/integration: presence sources in real node processes — the tutorial source loaded by path in a
// 3-node cluster, the webhook and calendar built-ins, supervision, and composition with SIP PUBLISH.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  cluster,
  entity,
  type NodeHandle,
  notifies,
  presenceEntities,
  type Scene,
  type SipTraceMessage,
  scene,
  startNatsServer,
  subscriptionState,
  tupleIds,
  waitFor,
} from "./harness.js";
import { SipPublisher } from "./sip-client.js";

const fast = ["--heartbeat", "200", "--dead-after", "3000"];
const TOKEN = "integration-token";
const webhookArgs = ["--source", "webhook", "--webhook-token", TOKEN];

interface SourceView {
  name: string;
  home: string;
  state: "running" | "failing" | "stopped";
  restarts: number;
  lastError: { message: string; at: string } | null;
  backoffMs: number | null;
  publications: number;
}

async function sourceOn(node: NodeHandle, name: string): Promise<SourceView> {
  const view = (await cluster(node)) as unknown as { sources: SourceView[] };
  const source = view.sources.find((s) => s.name === name);
  if (!source) throw new Error(`node ${node.id} does not list source ${name}`);
  return source;
}

/** Waits until every node names the same home for the source and that node runs it; returns it. */
async function sourceHome(nodes: readonly NodeHandle[], name: string): Promise<NodeHandle> {
  return waitFor(
    async () => {
      const views = await Promise.all(nodes.map((node) => sourceOn(node, name)));
      const homes = new Set(views.map((v) => v.home));
      const runs = nodes.filter((_, i) => views[i]?.state !== "stopped");
      const [home] = homes;
      return homes.size === 1 && runs.length === 1 && runs[0]?.id === home && runs[0];
    },
    { what: `one node, the one all name as home, to run source ${name}`, nodes, timeoutMs: 15_000 },
  );
}

async function post(
  node: NodeHandle,
  presentity: string,
  body: string,
  token: string | null = TOKEN,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`http://${node.http}/sources/webhook/${presentity}`, {
    method: "POST",
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    body,
    signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

function active(trace: readonly SipTraceMessage[]): SipTraceMessage[] {
  return notifies(trace).filter((m) => subscriptionState(m).startsWith("active"));
}

function noteOf(message: SipTraceMessage): string | undefined {
  return /<note>([^<]*)<\/note>/.exec(message.body.toString("utf8"))?.[1];
}

async function startCluster(s: Scene, args: readonly string[]): Promise<NodeHandle[]> {
  const nats = await startNatsServer(s.dir);
  return Promise.all(
    ["a", "b", "c"].map((id, i) =>
      s.startNode({
        id,
        role: i === 0 ? "primary" : "server",
        args: ["--nats", nats.url, ...fast, ...args],
      }),
    ),
  );
}

describe("sources - the tutorial source", () => {
  it(
    "sources - the tutorial source, loaded by path into a 3-node cluster, produces NOTIFYs at a watcher on another node",
    scene("sources", async (s) => {
      const nodes = await startCluster(s, [
        "--source",
        "office-hours:dist/examples/sources/office-hours.js",
        "--source-option",
        `office-hours.presentity=${entity("desk")}`,
        "--source-option",
        "office-hours.hours=0-24",
        "--source-option",
        "office-hours.note=final-note-reached",
      ]);
      const home = await sourceHome(nodes, "office-hours");
      const elsewhere = nodes.find((n) => n.id !== home.id);
      assert.ok(elsewhere);
      const watcher = await s.startSipp({
        scenario: "watcher-until.xml",
        transport: "udp",
        target: elsewhere.sip,
        service: "desk",
        vars: { expires: "600" },
        timeoutS: 30,
      });
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());
      const last = active(result.trace).at(-1);
      assert.ok(last);
      assert.deepEqual(tupleIds(last.body), ["source-office-hours"]);
      assert.match(last.body.toString(), /<basic>open<\/basic>/);
      for (const node of nodes) {
        const view = await sourceOn(node, "office-hours");
        assert.equal(view.home, home.id);
        assert.equal(view.state, node === home ? "running" : "stopped", node.id);
      }
    }),
  );

  it(
    "sources - when the node running a source leaves, another takes it over with its publication: one tuple, state kept",
    scene("sources", async (s) => {
      const nodes = await startCluster(s, webhookArgs);
      const home = await sourceHome(nodes, "webhook");
      const [watchAt, postAt] = nodes.filter((n) => n.id !== home.id);
      assert.ok(watchAt && postAt);
      const watcher = await s.startSipp({
        scenario: "watcher-until.xml",
        transport: "udp",
        target: watchAt.sip,
        service: "mover",
        vars: { expires: "600" },
        timeoutS: 60,
      });
      const presentity = entity("mover");
      assert.equal(
        (await post(postAt, presentity, '{"status":"open","note":"before"}')).status,
        200,
      );
      await watcher.waitForMessage(
        (m) => m.method === "NOTIFY" && noteOf(m) === "before",
        "before",
      );

      assert.equal(await home.stop(), 0);
      const rest = nodes.filter((n) => n !== home);
      const next = await sourceHome(rest, "webhook");
      await waitFor(async () => (await sourceOn(next, "webhook")).publications === 1, {
        what: "the new home to hold the handed-over publication",
        nodes: rest,
      });
      const moved = await post(postAt, presentity, '{"status":"open","note":"final-note-reached"}');
      assert.equal(moved.status, 200, JSON.stringify(moved.json));
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());
      for (const message of active(result.trace)) {
        const ours = tupleIds(message.body).filter((id) => id.startsWith("source-webhook"));
        assert.ok(ours.length <= 1, `one webhook tuple, not ${ours.join(", ")}`);
      }
      const notes = active(result.trace).map(noteOf);
      assert.equal(notes.at(-1), "final-note-reached");
      assert.ok(
        !notes.slice(notes.indexOf("before")).includes(undefined),
        "the state never vanished during the move",
      );
    }),
  );
});

describe("sources - webhook", () => {
  it(
    "sources - webhook: a POST on any node changes a watcher's state within one NOTIFY; bad token, bad JSON, unknown field change nothing",
    scene("sources", async (s) => {
      const nodes = await startCluster(s, webhookArgs);
      const home = await sourceHome(nodes, "webhook");
      const [watchAt, postAt] = nodes.filter((n) => n.id !== home.id);
      assert.ok(watchAt && postAt);
      const watcher = await s.startSipp({
        scenario: "watcher-until.xml",
        transport: "udp",
        target: watchAt.sip,
        service: "hooked",
        vars: { expires: "600" },
        timeoutS: 30,
      });
      await watcher.waitForMessage((m) => m.method === "NOTIFY", "the first NOTIFY");
      const presentity = entity("hooked");
      const good = '{"status":"open","note":"final-note-reached","activities":["on-the-phone"]}';

      const refusals: [string, Awaited<ReturnType<typeof post>>, number, RegExp][] = [
        ["wrong token", await post(postAt, presentity, good, "not-the-token"), 401, /token/],
        ["no token", await post(postAt, presentity, good, null), 401, /token/],
        ["bad JSON", await post(postAt, presentity, '{"status": open}'), 400, /not JSON/],
        [
          "unknown field",
          await post(postAt, presentity, '{"status":"open","colour":"green"}'),
          422,
          /unknown field "colour"/,
        ],
      ];
      for (const [what, answer, status, reason] of refusals) {
        assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.json)}`);
        assert.match(String(answer.json.error), reason, what);
      }

      const applied = await post(postAt, presentity, good);
      assert.deepEqual(applied, {
        status: 200,
        json: { applied: true, source: "webhook", presentities: [presentity] },
      });
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());
      const states = active(result.trace);
      assert.equal(states.length, 2, "the first NOTIFY, then one for the POST: nothing between");
      assert.deepEqual(tupleIds(states[0]?.body ?? ""), [], "nothing published before");
      const after = states[1];
      assert.ok(after);
      assert.deepEqual(tupleIds(after.body), ["source-webhook"]);
      assert.match(after.body.toString(), /<rpid:on-the-phone\/>/);
    }),
  );
});

describe("sources - calendar", () => {
  it(
    "sources - calendar: with an event starting in a few seconds the watcher sees busy at its start and available after its end",
    scene("sources", async (s) => {
      const stamp = (ms: number) =>
        new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
      const start = Math.ceil((Date.now() + 4_000) / 1000) * 1000;
      const end = start + 2_000;
      const file = join(s.dir, "meetings.ics");
      writeFileSync(
        file,
        [
          "BEGIN:VCALENDAR",
          "VERSION:2.0",
          "PRODID:-//presence-cluster//integration//EN",
          "BEGIN:VEVENT",
          "UID:soon@presence-cluster",
          `DTSTAMP:${stamp(Date.now())}`,
          `DTSTART:${stamp(start)}`,
          `DTEND:${stamp(end)}`,
          "SUMMARY:Planning",
          "END:VEVENT",
          "END:VCALENDAR",
          "",
        ].join("\r\n"),
      );
      const node = await s.startNode({
        args: [...fast, "--source", "calendar", "--calendar", `${entity("planner")}=${file}`],
      });
      const watcher = await s.startSipp({
        scenario: "watcher-until.xml",
        transport: "udp",
        target: node.sip,
        service: "planner",
        vars: { expires: "600" },
        timeoutS: 40,
      });
      const isNotify = (note: string) => (m: SipTraceMessage) =>
        m.direction === "received" && m.method === "NOTIFY" && noteOf(m) === note;
      await watcher.waitForMessage(isNotify("available"), "available before the event", {
        nodes: [node],
      });
      const busy = await watcher.waitForMessage(isNotify("in a meeting"), "busy", {
        timeoutMs: 15_000,
        nodes: [node],
      });
      const free = await watcher.waitForMessage(
        (m) => m.at > busy.at && isNotify("available")(m),
        "available after the event",
        { timeoutMs: 10_000, nodes: [node] },
      );
      assert.ok(busy.at >= start - 50, `busy ${busy.at - start} ms after the start`);
      assert.ok(busy.at <= start + 1_500, `busy ${busy.at - start} ms after the start`);
      assert.match(busy.body.toString(), /<rpid:busy\/><rpid:meeting\/>/);
      assert.ok(free.at >= end - 50, `available ${free.at - end} ms after the end`);
      assert.ok(free.at <= end + 1_500, `available ${free.at - end} ms after the end`);

      const publisher = await SipPublisher.open();
      try {
        const done = await publisher.publish(
          node.sipPort,
          "planner",
          `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity("planner")}"><tuple id="p"><status><basic>open</basic></status><note>final-note-reached</note></tuple></presence>`,
          { expires: 600 },
        );
        assert.equal(done.status, 200);
      } finally {
        await publisher.close();
      }
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());
    }),
  );
});

describe("sources - supervision and composition", () => {
  it(
    "sources - a source that throws on every message is restarted with backoff and shown failing; the node and other sources keep working",
    scene("sources", async (s) => {
      const node = await s.startNode({
        args: [
          ...fast,
          ...webhookArgs,
          "--source",
          "crashing:dist/test/integration/crashing-source.js",
          "--source-backoff",
          "50",
          "--source-backoff-max",
          "400",
        ],
      });
      const first = await waitFor(
        async () => {
          const view = await sourceOn(node, "crashing");
          return view.restarts >= 1 && view;
        },
        { what: "the first crash", nodes: [node] },
      );
      const firstAt = Date.now();
      const later = await waitFor(
        async () => {
          const view = await sourceOn(node, "crashing");
          return view.restarts >= first.restarts + 6 && view;
        },
        { what: "six more crashes", nodes: [node], timeoutMs: 15_000 },
      );
      // Without backoff a crash every 20 ms; with it 100 + 200 + 400 + 400 + 400 ms at least.
      assert.ok(Date.now() - firstAt >= 1_400, `six restarts took ${Date.now() - firstAt} ms`);
      assert.equal(later.state, "failing");
      assert.equal(later.backoffMs, 400, "the pause is capped");
      assert.equal(later.lastError?.message, "this source fails on every message");

      const watcher = await s.startSipp({
        scenario: "watcher-until.xml",
        transport: "udp",
        target: node.sip,
        service: "steady",
        vars: { expires: "600" },
        timeoutS: 30,
      });
      const publisher = await SipPublisher.open();
      try {
        const sip = await publisher.publish(
          node.sipPort,
          "steady",
          `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity("steady")}"><tuple id="desk-phone"><status><basic>open</basic></status></tuple></presence>`,
          { expires: 600 },
        );
        assert.equal(sip.status, 200, "the node still takes SIP PUBLISH");
      } finally {
        await publisher.close();
      }
      const hook = await post(
        node,
        entity("steady"),
        '{"status":"open","note":"final-note-reached"}',
      );
      assert.equal(hook.status, 200, "the other source still works");
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());
      assert.equal((await fetch(`http://${node.http}/healthz`)).status, 200);
      assert.equal((await sourceOn(node, "webhook")).state, "running");
      assert.equal((await sourceOn(node, "webhook")).restarts, 0);
    }),
  );

  it(
    "sources - a source's publication and a SIP PUBLISH for the same presentity are composed into one PIDF with both tuples",
    scene("sources", async (s) => {
      const node = await s.startNode({ args: [...fast, ...webhookArgs] });
      await sourceHome([node], "webhook");
      const watcher = await s.startSipp({
        scenario: "watcher-until.xml",
        transport: "udp",
        target: node.sip,
        service: "both",
        vars: { expires: "600" },
        timeoutS: 30,
      });
      const publisher = await SipPublisher.open();
      try {
        const sip = await publisher.publish(
          node.sipPort,
          "both",
          `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity("both")}"><tuple id="desk-phone"><status><basic>open</basic></status><note>on the desk phone</note></tuple></presence>`,
          { expires: 600 },
        );
        assert.equal(sip.status, 200);
      } finally {
        await publisher.close();
      }
      const hook = await post(
        node,
        entity("both"),
        '{"status":"closed","note":"final-note-reached","activities":["meeting"]}',
      );
      assert.equal(hook.status, 200);
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());
      const last = active(result.trace).at(-1);
      assert.ok(last);
      assert.deepEqual(presenceEntities(last.body), [entity("both")], "one PIDF document");
      assert.deepEqual(tupleIds(last.body), ["desk-phone", "source-webhook"]);
      assert.match(last.body.toString(), /on the desk phone/);
      assert.match(last.body.toString(), /<rpid:meeting\/>/);
    }),
  );
});
