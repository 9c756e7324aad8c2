// test/integration: the CCMP control plane with real processes, NATS and SIPp — control sessions
// as SIP over actor mail, redirection to the least-loaded server, pool promotion, scale-in,
// proxy dispatch, dead servers, and an even spread of a large arrival of watchers.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { decodeCcmp } from "../../protocol/ccmp/ccmp.js";
import { parseMessage } from "../../protocol/sip/codec.js";
import type { SipMessage } from "../../protocol/sip/message.js";
import { decodeEnvelope, encodeEnvelope } from "../../transport/envelope.js";
import {
  type NodeHandle,
  notifies,
  projectRoot,
  type Scene,
  scene,
  startNatsServer,
  waitFor,
} from "./harness.js";
import { SipPublisher } from "./sip-client.js";

interface SupervisorView {
  activeServers: number;
  servers: Array<{ id: string; role: string; session: string; ready: boolean; load: number }>;
  pool: string[];
  decisions: Array<{ type: string; server?: string; reason: string }>;
  counters: Record<string, number>;
}

async function supervisor(primary: NodeHandle): Promise<SupervisorView> {
  const response = await fetch(`http://${primary.http}/api/cluster`);
  const view = (await response.json()) as { supervisor?: SupervisorView };
  assert.ok(view.supervisor, "the primary shows its supervisor");
  return view.supervisor;
}

/** Every control-session SIP message crossing NATS, in order (requests and the replies to them). */
class ControlSpy {
  readonly messages: Array<{ at: number; to: string; message: SipMessage }> = [];
  private constructor(readonly nc: NatsConnection) {}

  static async start(url: string): Promise<ControlSpy> {
    const spy = new ControlSpy(await connect({ servers: [url] }));
    spy.nc.subscribe("pc.presence.node.>", {
      callback: (_error, msg) => {
        try {
          const envelope = decodeEnvelope(msg.data);
          const body = envelope.body as {
            type?: string;
            raw?: Buffer;
            ok?: boolean;
            value?: { raw?: Buffer };
          };
          const raw = body.type === "control" ? body.raw : body.ok ? body.value?.raw : undefined;
          if (raw)
            spy.messages.push({ at: Date.now(), to: envelope.to.node, message: parseMessage(raw) });
        } catch {
          // Not control mail.
        }
      },
    });
    await spy.nc.flush();
    return spy;
  }

  /** "INVITE", "200/INVITE", "ACK", "INFO", … — requests by method, responses by status/method. */
  labels(filter: (m: SipMessage) => boolean = () => true): string[] {
    return this.messages
      .filter((m) => filter(m.message))
      .map(({ message }) =>
        message.kind === "request"
          ? message.method
          : `${message.status}/${message.headers.cseq.method}`,
      );
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

const fast = ["--heartbeat", "200", "--report-interval", "200", "--dead-after", "1500"];

async function cluster(
  s: Scene,
  nodes: Array<{ id: string; role: "primary" | "server" | "pool" }>,
  nats: string,
  extra: string[] = [],
): Promise<NodeHandle[]> {
  const started: NodeHandle[] = [];
  for (const node of nodes) {
    started.push(await s.startNode({ ...node, args: ["--nats", nats, ...fast, ...extra] }));
  }
  const primary = started[0];
  assert.ok(primary);
  const servers = nodes.filter((n) => n.role !== "pool").length;
  await waitFor(async () => (await supervisor(primary)).activeServers === servers, {
    what: `${servers} active servers with their control sessions up`,
    nodes: started,
  });
  return started;
}

function doc(user: string, note: string): string {
  return `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${user}@127.0.0.1"><tuple id="t"><status><basic>open</basic></status><note>${note}</note></tuple></presence>`;
}

function xmllintValid(dir: string, body: Buffer, name: string): void {
  const file = join(dir, `${name}.xml`);
  writeFileSync(file, body);
  execFileSync(
    "xmllint",
    ["--noout", "--nonet", "--schema", join(projectRoot, "protocol/ccmp/extd-ccmp.xsd"), file],
    { stdio: "pipe" },
  );
}

describe("control - the CCMP control plane", () => {
  it(
    "control - sessions are SIP INVITE/200/ACK/INFO with CCMP bodies that validate; bad CCMP gets a CCMP error",
    scene("control", async (s) => {
      const nats = await startNatsServer(s.dir);
      const spy = await ControlSpy.start(nats.url);
      try {
        const [primary] = await cluster(
          s,
          [
            { id: "p", role: "primary" },
            { id: "a1", role: "server" },
          ],
          nats.url,
        );
        assert.ok(primary);
        await waitFor(async () => spy.labels().filter((l) => l === "INFO").length >= 2, {
          what: "load reports in INFO requests",
        });
        const labels = spy.labels();
        assert.deepEqual(labels.slice(0, 3), ["INVITE", "200/INVITE", "ACK"]);
        const ccmp = spy.messages.filter(
          ({ message }) => message.headers["content-type"] === "application/extd-ccmp",
        );
        assert.ok(ccmp.length >= 4, "INVITE, its 200, INFO and its 200 carry CCMP");
        for (const [i, { message }] of ccmp.entries()) {
          xmllintValid(s.dir, message.body, `ccmp-${i}`);
          decodeCcmp(message.body);
        }

        // A malformed CCMP body in an INFO: the answer is a CCMP error, and the primary carries on.
        const tester = await connect({ servers: [nats.url] });
        const answers: Buffer[] = [];
        tester.subscribe("pc.presence.node.tester", {
          callback: (_error, msg) => {
            const body = decodeEnvelope(msg.data).body as { ok: boolean; value?: { raw: Buffer } };
            if (body.value?.raw) answers.push(body.value.raw);
          },
        });
        const info = [
          "INFO sip:p@presence-cluster SIP/2.0",
          "Via: SIP/2.0/ACTOR tester;branch=z9hG4bKbad",
          "From: <sip:tester@presence-cluster>;tag=t1",
          "To: <sip:p@presence-cluster>;tag=p1",
          "Call-ID: bad-ccmp@tester",
          "CSeq: 1 INFO",
          "Content-Type: application/extd-ccmp",
          "Content-Length: 23",
          "",
          "<ccmpRequest><oops/></x",
        ].join("\r\n");
        await tester.request(
          "pc.presence.node.p",
          encodeEnvelope({
            id: "bad-1",
            from: "tester",
            to: { node: "p", kind: "supervisor", id: "supervisor" },
            body: { type: "control", raw: Buffer.from(info, "latin1") },
            replyTo: { node: "tester", correlationId: "c1" },
            sentAt: Date.now(),
          }),
        );
        await waitFor(async () => answers.length === 1, { what: "the answer to the bad INFO" });
        const answer = parseMessage(answers[0] ?? Buffer.alloc(0));
        assert.equal(answer.kind === "response" && answer.status, 200);
        const error = decodeCcmp(answer.body);
        assert.equal(error.kind === "response" && error.responseCode, 400);
        xmllintValid(s.dir, answer.body, "ccmp-error");
        assert.equal((await supervisor(primary)).counters.badCcmp, 1);

        // optionsRequest: the answer lists the extended messages the control plane speaks.
        const options = Buffer.from(
          '<?xml version="1.0" encoding="UTF-8"?>\n<ccmp:ccmpRequest xmlns:ccmp="urn:ietf:params:xml:ns:xcon-ccmp" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><ccmpRequest xsi:type="ccmp:ccmp-options-request-message-type"><confUserID>xcon-userid:tester</confUserID></ccmpRequest></ccmp:ccmpRequest>',
        );
        const optionsInfo = Buffer.concat([
          Buffer.from(
            [
              "INFO sip:p@presence-cluster SIP/2.0",
              "Via: SIP/2.0/ACTOR tester;branch=z9hG4bKopt",
              "From: <sip:tester@presence-cluster>;tag=t1",
              "To: <sip:p@presence-cluster>;tag=p1",
              "Call-ID: options@tester",
              "CSeq: 2 INFO",
              "Content-Type: application/extd-ccmp",
              `Content-Length: ${options.length}`,
              "",
              "",
            ].join("\r\n"),
            "latin1",
          ),
          options,
        ]);
        await tester.request(
          "pc.presence.node.p",
          encodeEnvelope({
            id: "opt-1",
            from: "tester",
            to: { node: "p", kind: "supervisor", id: "supervisor" },
            body: { type: "control", raw: optionsInfo },
            replyTo: { node: "tester", correlationId: "c2" },
            sentAt: Date.now(),
          }),
        );
        await waitFor(async () => answers.length === 2, {
          what: "the answer to the optionsRequest",
        });
        const optionsAnswer = parseMessage(answers[1] ?? Buffer.alloc(0));
        const listed = decodeCcmp(optionsAnswer.body);
        assert.equal(listed.kind, "options-response");
        assert.ok(
          listed.kind === "options-response" && listed.extensions.includes("redirect-user"),
        );
        xmllintValid(s.dir, optionsAnswer.body, "ccmp-options");
        await tester.close();
      } finally {
        await spy.close();
      }
    }),
  );

  it(
    "control - watchers are redirected to the least-loaded server; all above max-load promotes a pool server that gets the state (Fig. 5)",
    scene("control", async (s) => {
      const nats = await startNatsServer(s.dir);
      const spy = await ControlSpy.start(nats.url);
      const publisher = await SipPublisher.open();
      try {
        const nodes = await cluster(
          s,
          [
            { id: "p", role: "primary" },
            { id: "a1", role: "server" },
            { id: "q1", role: "pool" },
            { id: "q2", role: "pool" },
          ],
          nats.url,
          ["--max-load", "0.25", "--min-load", "0.05", "--scale-in-after", "600000"],
        );
        const [primary, a1, q1] = nodes;
        assert.ok(primary && a1 && q1);
        const users = Array.from({ length: 8 }, (_, i) => `fig5u${i}`);
        for (const user of users) {
          const answer = await publisher.publish(
            primary.sipPort,
            user,
            doc(user, `state of ${user}`),
            {
              expires: 600,
            },
          );
          assert.equal(answer.status, 200);
        }
        const landed: string[] = [];
        const watchers = [];
        for (const user of users) {
          const watcher = await s.startSipp({
            scenario: "watcher-redirect.xml",
            transport: "udp",
            target: primary.sip,
            service: user,
            vars: { expires: "600" },
            timeoutS: 90,
          });
          const first = await watcher.waitForMessage(
            (m) => m.direction === "received" && m.method === "NOTIFY",
            `${user}'s first NOTIFY`,
            { nodes },
          );
          assert.match(
            first.body.toString("utf8"),
            new RegExp(`state of ${user}`),
            "current state in the first NOTIFY",
          );
          const contact = first.header("contact") ?? "";
          landed.push(/sip:([^@]+)@/.exec(contact)?.[1] ?? contact);
          watchers.push({ user, watcher });
        }
        // p and a1 take watchers in turn until both are above max-load (3 each: 0.3); then q1.
        assert.deepEqual(landed.slice(0, 6).sort(), ["a1", "a1", "a1", "p", "p", "p"]);
        assert.deepEqual(landed.slice(6), ["q1", "q1"]);
        const view = await supervisor(primary);
        assert.deepEqual(
          view.decisions
            .filter((d) => d.type === "promote" || d.type === "promoted")
            .map((d) => `${d.type} ${d.server}`),
          ["promote q1", "promoted q1"],
        );
        assert.deepEqual(view.pool, ["q2"]);
        // Fig. 5 order on the wire for the added server.
        const toQ1 = spy.labels((m) => m.headers["call-id"] !== undefined);
        const order = [
          "INVITE",
          "200/INVITE",
          "ACK",
          "SUBSCRIBE",
          "200/SUBSCRIBE",
          "NOTIFY",
          "200/NOTIFY",
        ];
        let at = -1;
        for (const label of order) {
          at = toQ1.indexOf(label, at + 1);
          assert.ok(at >= 0, `${label} in order in ${toQ1.join(" ")}`);
        }
        for (const { user, watcher } of watchers) {
          const final = await publisher.publish(
            primary.sipPort,
            user,
            doc(user, "final-note-reached"),
            {
              expires: 600,
            },
          );
          assert.equal(final.status, 200);
          const result = await watcher.done;
          assert.equal(result.code, 0, result.describe());
          assert.ok(notifies(result.trace).length >= 2);
        }
      } finally {
        await publisher.close();
        await spy.close();
      }
    }),
  );

  it(
    "control - load below min-load drains a server: its watchers are deactivated, re-subscribe via the primary, the server returns to the pool",
    scene("control", async (s) => {
      const nats = await startNatsServer(s.dir);
      const spy = await ControlSpy.start(nats.url);
      const publisher = await SipPublisher.open();
      try {
        const nodes = await cluster(
          s,
          [
            { id: "p", role: "primary" },
            { id: "a1", role: "server" },
          ],
          nats.url,
          [
            "--max-load",
            "10",
            "--min-load",
            "5",
            "--scale-in-after",
            "1500",
            "--scale-cooldown",
            "0",
          ],
        );
        const [primary, a1] = nodes;
        assert.ok(primary && a1);
        // a1 sorts first: the first watcher goes there.
        const watcher = await s.startSipp({
          scenario: "watcher-deactivated.xml",
          transport: "udp",
          target: primary.sip,
          service: "drainee",
          vars: { expires: "600", primary_ip: "127.0.0.1", primary_port: String(primary.sipPort) },
          timeoutS: 60,
        });
        await watcher.waitForMessage(
          (m) => m.direction === "received" && m.method === "NOTIFY",
          "first NOTIFY",
          { nodes },
        );
        await waitFor(
          async () =>
            (await supervisor(primary)).decisions.some(
              (d) => d.type === "drained" && d.server === "a1",
            ),
          { what: "a1 drained back to the pool", nodes, timeoutMs: 20_000 },
        );
        const view = await supervisor(primary);
        assert.deepEqual(view.pool, ["a1"]);
        assert.ok(spy.labels().includes("BYE"), "the control session ended with BYE");
        const deactivated = notifies(watcher.trace()).filter((m) =>
          (m.header("subscription-state") ?? "").includes("reason=deactivated"),
        );
        assert.equal(deactivated.length, 1);
        await waitFor(async () => notifies(watcher.trace()).length >= 3, {
          what: "the re-subscription's first NOTIFY",
          nodes,
        });
        const final = await publisher.publish(
          primary.sipPort,
          "drainee",
          doc("drainee", "final-note-reached"),
          {
            expires: 600,
          },
        );
        assert.equal(final.status, 200);
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
      } finally {
        await publisher.close();
        await spy.close();
      }
    }),
  );

  it(
    "control - --dispatch proxy: a client that ignores 3xx ends up in a dialog with the chosen server",
    scene("control", async (s) => {
      const nats = await startNatsServer(s.dir);
      const publisher = await SipPublisher.open();
      try {
        const [primary, a1] = await cluster(
          s,
          [
            { id: "p", role: "primary" },
            { id: "a1", role: "server" },
          ],
          nats.url,
          ["--dispatch", "proxy"],
        );
        assert.ok(primary && a1);
        const watcher = await s.startSipp({
          scenario: "watcher-proxied.xml",
          transport: "udp",
          target: primary.sip,
          service: "proxied",
          vars: { expires: "600" },
          timeoutS: 30,
        });
        const first = await watcher.waitForMessage(
          (m) => m.direction === "received" && m.method === "NOTIFY",
          "first NOTIFY",
        );
        assert.match(first.header("contact") ?? "", new RegExp(`@127\\.0\\.0\\.1:${a1.sipPort}`));
        await publisher.publish(primary.sipPort, "proxied", doc("proxied", "final-note-reached"), {
          expires: 600,
        });
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        const ok = result.trace.find((m) => m.direction === "received" && m.status === 200);
        assert.match(
          ok?.header("contact") ?? "",
          /sip:a1@/,
          "the 200 came from a1 through the primary",
        );
        assert.equal(ok?.header("via")?.split(",").length, 1, "the primary took its own Via off");
      } finally {
        await publisher.close();
      }
    }),
  );

  it(
    "control - a server killed with SIGKILL is declared dead and gets no new watchers",
    scene("control", async (s) => {
      const nats = await startNatsServer(s.dir);
      const [primary, a1, a2] = await cluster(
        s,
        [
          { id: "p", role: "primary" },
          { id: "a1", role: "server" },
          { id: "a2", role: "server" },
        ],
        nats.url,
      );
      assert.ok(primary && a1 && a2);
      await a1.kill();
      await waitFor(
        async () =>
          (await supervisor(primary)).decisions.some((d) => d.type === "dead" && d.server === "a1"),
        { what: "a1 declared dead", nodes: [primary, a2], timeoutMs: 10_000 },
      );
      const placed = await s.runSipp({
        scenario: "watcher-redirect.xml",
        transport: "udp",
        target: primary.sip,
        service: "afterdeath",
        vars: { expires: "600" },
        calls: 1,
        timeoutS: 5,
      });
      const redirect = placed.trace.find((m) => m.direction === "received" && m.status === 302);
      assert.doesNotMatch(redirect?.header("contact") ?? "", new RegExp(`:${a1.sipPort}`));
    }),
  );

  it(
    "control - 10,000 watchers arriving at 500/s over 3 servers end within 10% of an even share",
    scene("control", async (s) => {
      const nats = await startNatsServer(s.dir);
      const nodes = await cluster(
        s,
        [
          { id: "p", role: "primary" },
          { id: "a1", role: "server" },
          { id: "a2", role: "server" },
        ],
        nats.url,
        [
          "--max-load",
          "100000",
          "--min-load",
          "1",
          "--scale-in-after",
          "600000",
          "--log-level",
          "warn",
        ],
      );
      const [primary] = nodes;
      assert.ok(primary);
      const crowd = await s.runSipp({
        scenario: "watcher-arrive.xml",
        transport: "udp",
        target: primary.sip,
        service: "crowd",
        vars: { expires: "600" },
        calls: 10_000,
        rate: 500,
        trace: false,
        timeoutS: 120,
        continueOnUnexpected: true,
      });
      assert.equal(crowd.code, 0, crowd.describe());
      const view = await waitFor(
        async () => {
          const v = await supervisor(primary);
          const total = v.servers.reduce((sum, x) => sum + x.load, 0);
          return Math.round(total * 10) === 10_000 ? v : false;
        },
        { what: "the load reports to add up to 10,000 watchers", nodes },
      );
      const share = 1000 / 3;
      for (const server of view.servers) {
        assert.ok(
          Math.abs(server.load - share) <= share * 0.1,
          `${server.id} has load ${server.load}, an even share is ${share.toFixed(1)}`,
        );
      }
    }),
  );
});
