// test/integration: the NATS transport against a real nats-server — delivery, trace context in
// NATS headers, fail-fast asks to a gone node, membership joins and leaves, cluster isolation.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { silentLogger } from "../../bootstrap/log.js";
import type { Envelope } from "../../transport/envelope.js";
import { MailError } from "../../transport/errors.js";
import type { MemberInfo } from "../../transport/membership.js";
import { NatsTransport } from "../../transport/nats.js";
import { type NatsServerHandle, startNatsServer, testDir, waitFor } from "./harness.js";

let nats: NatsServerHandle;
const open: NatsTransport[] = [];

before(async () => {
  nats = await startNatsServer(testDir("nats-transport"));
});

after(async () => {
  await Promise.allSettled(open.map((t) => t.close()));
  await nats.stop();
});

async function transport(nodeId: string, cluster = "x"): Promise<NatsTransport> {
  const t = await NatsTransport.connect({
    servers: [nats.url],
    cluster,
    nodeId,
    heartbeatMs: 100,
    deadAfterMs: 1000,
    deliveryTimeoutMs: 1000,
    log: silentLogger,
  });
  open.push(t);
  return t;
}

function info(id: string): MemberInfo {
  return {
    id,
    role: "server",
    sip: "127.0.0.1:1",
    http: "127.0.0.1:2",
    state: "ready",
    startedAt: 1,
  };
}

function envelope(to: string, extra: Partial<Envelope> = {}): Envelope {
  return {
    id: `m-${Math.random()}`,
    from: "a",
    to: { node: to, kind: "echo", id: "1" },
    body: { hello: "world", bytes: Buffer.from("회의") },
    sentAt: Date.now(),
    ...extra,
  };
}

describe("nats transport - real nats-server", () => {
  it("nats transport - mail arrives whole, trace context rides in the NATS headers", async () => {
    const a = await transport("a");
    const b = await transport("b");
    const received: Envelope[] = [];
    b.onReceive((e) => received.push(e));
    const spy = await connect({ servers: [nats.url] });
    const headers: Array<string | undefined> = [];
    spy.subscribe("pc.x.node.b", {
      callback: (_error, msg) => {
        headers.push(msg.headers?.get("traceparent"));
      },
    });
    await spy.flush();
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    await a.send("b", envelope("b", { traceparent, replyTo: { node: "a", correlationId: "c1" } }));
    await waitFor(async () => received.length === 1 && headers.length === 1, {
      what: "the mail at b and at the spy",
    });
    const [mail] = received;
    assert.ok(mail);
    assert.equal(mail.traceparent, traceparent);
    assert.equal((mail.body as { bytes: Buffer }).bytes.toString("utf8"), "회의");
    assert.equal(headers[0], traceparent);
    await spy.close();
  });

  it("nats transport - mail over the server's max_payload is refused, never thrown, and mail goes on", async () => {
    const a = await transport("big-a");
    const b = await transport("big-b");
    const received: Envelope[] = [];
    b.onReceive((e) => received.push(e));
    const huge = envelope("big-b", { body: { bytes: Buffer.alloc(2 * 1024 * 1024) } });
    await assert.rejects(
      a.send("big-b", huge),
      (error: unknown) => error instanceof MailError && error.code === "refused",
    );
    // As a request the client may fail it later rather than at once: rejected either way.
    await assert.rejects(
      a.send("big-b", { ...huge, replyTo: { node: "big-a", correlationId: "c" } }),
      (error: unknown) => error instanceof MailError,
    );
    await a.send("big-b", envelope("big-b"));
    await waitFor(async () => received.length === 1, {
      what: "the next mail after the refused ones",
    });
  });

  it("nats transport - an ask to a node that is not connected fails fast", async () => {
    const a = await transport("a2");
    const started = Date.now();
    await assert.rejects(
      a.send("nobody", envelope("nobody", { replyTo: { node: "a2", correlationId: "c" } })),
      (error: unknown) => error instanceof MailError && error.code === "unreachable",
    );
    assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`);
  });

  it("nats transport - members join at once, leave at once, and vanish after silence", async () => {
    const a = await transport("m1");
    const b = await transport("m2");
    a.announce(info("m1"));
    b.announce(info("m2"));
    await waitFor(async () => a.members().length === 2 && b.members().length === 2, {
      what: "both members to see each other",
    });
    await b.close();
    await waitFor(
      async () =>
        a
          .members()
          .map((m) => m.id)
          .join() === "m1",
      {
        what: "the leave to be seen",
        timeoutMs: 500,
      },
    );
    // A member heard once and then silent (a hung node) is dropped after deadAfterMs.
    const ghost = await connect({ servers: [nats.url] });
    ghost.publish("pc.x.members", JSON.stringify({ type: "alive", info: info("ghost") }));
    await waitFor(async () => a.members().length === 2, { what: "the ghost to be seen" });
    await waitFor(
      async () =>
        a
          .members()
          .map((m) => m.id)
          .join() === "m1",
      {
        what: "the silent member to be dropped",
        timeoutMs: 3000,
      },
    );
    await ghost.close();
  });

  it("nats transport - two clusters on one NATS do not see or reach each other", async () => {
    const x = await transport("same", "one");
    const y = await transport("other", "two");
    x.announce(info("same"));
    y.announce(info("other"));
    await waitFor(async () => x.members().length === 1 && y.members().length === 1, {
      what: "each cluster to list itself",
    });
    await assert.rejects(
      x.send("other", envelope("other", { replyTo: { node: "same", correlationId: "c" } })),
      (error: unknown) => error instanceof MailError && error.code === "unreachable",
    );
    assert.deepEqual(
      x.members().map((m) => m.id),
      ["same"],
    );
  });
});
