// test/unit: the router and the loopback transport — local vs remote delivery, asks, failures.
// Each test makes its own LoopbackHub (no global bus); actors are real nact actors via spawnActor.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { start, stop } from "nact";
import { spawnActor } from "../../../actors/actor.js";
import { silentLogger } from "../../../bootstrap/log.js";
import { decodeEnvelope, type Envelope, encodeEnvelope } from "../../../transport/envelope.js";
import { MailError } from "../../../transport/errors.js";
import { LoopbackHub } from "../../../transport/loopback.js";
import { Router } from "../../../transport/router.js";
import type { LocalTrace } from "../../../transport/tracing.js";

type Echo = { type: "echo"; text: string } | { type: "boom" } | { type: "count" };

function twoNodes() {
  const hub = new LoopbackHub();
  const a = new Router({
    nodeId: "a",
    transport: hub.connect("a"),
    log: silentLogger,
    askTimeoutMs: 500,
  });
  const b = new Router({
    nodeId: "b",
    transport: hub.connect("b"),
    log: silentLogger,
    askTimeoutMs: 500,
  });
  return { hub, a, b };
}

function echoActor(router: Router, system: ReturnType<typeof start>, maxMailbox = 100) {
  let handled = 0;
  spawnActor<number, Echo>(
    system,
    router,
    router.address("echo", "one"),
    {
      receive(state, message, ctx) {
        handled += 1;
        if (message.type === "boom") throw new Error("kaboom");
        if (message.type === "echo") ctx.reply(`${router.nodeId}:${message.text}:${state}`);
        if (message.type === "count") ctx.reply(state);
        return state + 1;
      },
    },
    0,
    { maxMailbox, log: silentLogger },
  );
  return () => handled;
}

describe("router - delivery", () => {
  it("router - an ask to a local actor is answered", async () => {
    const { a } = twoNodes();
    const system = start();
    echoActor(a, system);
    assert.equal(await a.ask(a.address("echo", "one"), { type: "echo", text: "hi" }), "a:hi:0");
    stop(system);
  });

  it("router - an ask to an actor on another node crosses the transport and comes back", async () => {
    const { a, b } = twoNodes();
    const system = start();
    echoActor(b, system);
    const answer = await a.ask(b.address("echo", "one"), { type: "echo", text: "x" });
    assert.equal(answer, "b:x:0");
    assert.equal(a.stats().remoteSent, 1);
    assert.equal(b.stats().remoteReceived, 1);
    stop(system);
  });

  it("router - mail to one actor is handled in the order it was sent", async () => {
    const { a } = twoNodes();
    const system = start();
    echoActor(a, system);
    for (let i = 0; i < 50; i += 1)
      a.send(a.address("echo", "one"), { type: "echo", text: String(i) });
    assert.equal(await a.ask(a.address("echo", "one"), { type: "count" }), 50);
    stop(system);
  });

  it("router - spawn on demand creates the actor of a kind on first mail", async () => {
    const { a } = twoNodes();
    const system = start();
    const created: string[] = [];
    a.onDemand("lazy", (address) => {
      created.push(address.id);
      return spawnActor<null, { type: "hello" }>(
        system,
        a,
        address,
        {
          receive: (s, _m, ctx) => {
            ctx.reply(`hello from ${address.id}`);
            return s;
          },
        },
        null,
        { maxMailbox: 10, log: silentLogger },
      );
    });
    assert.equal(
      await a.ask(a.address("lazy", "sip:x@y"), { type: "hello" }),
      "hello from sip:x@y",
    );
    assert.equal(
      await a.ask(a.address("lazy", "sip:x@y"), { type: "hello" }),
      "hello from sip:x@y",
    );
    assert.deepEqual(created, ["sip:x@y"]);
    stop(system);
  });
});

describe("router - failures", () => {
  it("router - an ask to a missing actor fails fast with no-actor", async () => {
    const { a } = twoNodes();
    await assert.rejects(a.ask(a.address("echo", "nobody"), {}), (e: unknown) => {
      return e instanceof MailError && e.code === "no-actor";
    });
  });

  it("router - an ask to a node that is not there fails fast with unreachable", async () => {
    const { a } = twoNodes();
    const started = Date.now();
    await assert.rejects(a.ask({ node: "gone", kind: "echo", id: "one" }, {}), (e: unknown) => {
      return e instanceof MailError && e.code === "unreachable";
    });
    assert.ok(Date.now() - started < 400, "did not wait for the ask timeout");
    assert.equal(a.stats().dropped, 1);
  });

  it("router - an actor that throws answers the ask with the error and keeps serving", async () => {
    const { a } = twoNodes();
    const system = start();
    echoActor(a, system);
    await assert.rejects(a.ask(a.address("echo", "one"), { type: "boom" }), /kaboom/);
    assert.equal(await a.ask(a.address("echo", "one"), { type: "echo", text: "ok" }), "a:ok:0");
    stop(system);
  });

  it("router - an ask nobody answers times out", async () => {
    const { a } = twoNodes();
    const system = start();
    spawnActor<null, unknown>(system, a, a.address("mute", "m"), { receive: (s) => s }, null, {
      maxMailbox: 10,
      log: silentLogger,
    });
    await assert.rejects(a.ask(a.address("mute", "m"), {}, 30), (e: unknown) => {
      return e instanceof MailError && e.code === "timeout";
    });
    assert.equal(a.stats().askTimeouts, 1);
    stop(system);
  });

  it("router - a full mailbox refuses mail instead of growing without bound", async () => {
    const { a } = twoNodes();
    const system = start();
    const handled = echoActor(a, system, 3);
    for (let i = 0; i < 10; i += 1) a.send(a.address("echo", "one"), { type: "echo", text: "x" });
    assert.ok(a.stats().dropped >= 6, `dropped ${a.stats().dropped}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.ok(handled() <= 4);
    stop(system);
  });
});

describe("envelope - wire codec", () => {
  it("envelope - round-trips bytes, nested data and trace context", () => {
    const envelope: Envelope = {
      id: "x.1",
      from: "a",
      to: { node: "b", kind: "presence", id: "sip:alice@example.com" },
      body: {
        type: "presence-changed",
        body: Buffer.from("회의 중", "utf8"),
        nested: [1, { k: "v" }],
      },
      replyTo: { node: "a", correlationId: "c1" },
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      sentAt: 123,
    };
    const back = decodeEnvelope(encodeEnvelope(envelope));
    assert.deepEqual(back, envelope);
    const body = back.body as { body: Buffer };
    assert.equal(body.body.toString("utf8"), "회의 중");
  });

  it("envelope - a local trace context is never encoded", () => {
    const envelope: Envelope = {
      id: "x.2",
      from: "a",
      to: { node: "b", kind: "presence", id: "p" },
      body: "x",
      trace: {} as LocalTrace,
      sentAt: 1,
    };
    const back = decodeEnvelope(encodeEnvelope(envelope));
    assert.equal("trace" in back, false);
    assert.equal(back.id, "x.2");
  });

  it("envelope - rejects bytes that are not an envelope", () => {
    assert.throws(() => decodeEnvelope(Buffer.from('{"hello":1}')));
    assert.throws(() => decodeEnvelope(Buffer.from("not json")));
  });
});
