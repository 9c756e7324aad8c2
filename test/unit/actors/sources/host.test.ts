// test/unit: the source host — publications kept per presentity (initial, modify, refresh, lapse,
// remove), composition with SIP publications, supervision with capped backoff, on a fake clock.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { start, stop } from "nact";
import { defineSource } from "../../../../actors/sources/api.js";
import {
  type InputOutcome,
  newSourceRecord,
  type SourceCommand,
  spawnSourceHost,
} from "../../../../actors/sources/host.js";
import { LoopbackHub } from "../../../../transport/loopback.js";
import {
  composed,
  composedState,
  eventually,
  settle,
  sipPublish,
  TestPlacement,
  testNode,
  tuples,
} from "./nodes.js";

const alice = "sip:alice@example.com";

type Say = { say: string; expires?: number } | { clear: true };

/** A source that publishes what it is told, for `alice`. */
const echo = defineSource<null, null, Say>({
  name: "echo",
  start: () => null,
  receive(state, message, ctx) {
    if ("clear" in message) ctx.clear(alice);
    else {
      ctx.publish(alice, {
        status: "open",
        note: message.say,
        ...(message.expires === undefined ? {} : { expires: message.expires }),
      });
    }
    return state;
  },
});

function setup(overrides: Parameters<typeof testNode>[4] = {}) {
  const system = start();
  const hub = new LoopbackHub();
  const placement = new TestPlacement(["a"]);
  const a = testNode(hub, "a", system, placement, overrides);
  const record = newSourceRecord();
  const host = (definition = echo as Parameters<typeof spawnSourceHost>[1]["definition"]) =>
    spawnSourceHost(a.deps, { name: definition.name, definition, config: null }, record);
  const tell = (message: unknown) => {
    const input: SourceCommand = { type: "input", message };
    return a.router.ask<InputOutcome>(a.router.address("source", "echo"), input);
  };
  return { system, hub, a, record, host, tell };
}

beforeEach(() => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 });
});

afterEach(() => {
  mock.timers.reset();
});

describe("source host - publications", () => {
  it("source host - a source's publication and a SIP publication compose into one PIDF with both tuples", async () => {
    const { system, a, host } = setup();
    const desk = defineSource({
      name: "desk",
      start(ctx) {
        ctx.publish(alice, { status: "open", note: "at the desk", activities: ["working"] });
        return null;
      },
      receive: (state) => state,
    });
    await sipPublish(a.router, alice, "a", "phone");
    host(desk);
    const body = await eventually("the source's tuple next to the phone's", async () => {
      const now = await composed(a.router, alice, "a");
      return tuples(now).length === 2 && now;
    });
    assert.deepEqual(tuples(body), ["phone", "source-desk"]);
    assert.match(body, /<note>at the desk<\/note>/);
    assert.match(body, /<rpid:activities><rpid:working\/><\/rpid:activities>/);
    assert.match(body, /xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"/);
    stop(system);
  });

  it("source host - a new state modifies the one publication; the same state again changes nothing", async () => {
    const { system, a, host, tell } = setup();
    host();
    assert.deepEqual(await tell({ say: "one" }), { applied: true, presentities: [alice] });
    const first = await composedState(a.router, alice, "a");
    await tell({ say: "two" });
    const second = await composedState(a.router, alice, "a");
    assert.ok(second.version > first.version);
    assert.match(second.body, /<note>two<\/note>/);
    assert.equal(a.stats.publications, 1, "modified, not published twice");
    assert.deepEqual(await tell({ say: "two" }), { applied: true, presentities: [alice] });
    assert.equal((await composedState(a.router, alice, "a")).version, second.version);
    stop(system);
  });

  it("source host - a held state is refreshed before its publication expires, for as long as it holds", async () => {
    const { system, a, host, tell } = setup({ publicationSeconds: 60 });
    host();
    await tell({ say: "here" });
    const applied = a.stats.publishesApplied;
    // Refreshed 15 s before each expiry: 40 minutes is 53 refreshes, the state never lapsing.
    for (let refresh = 1; refresh <= 53; refresh += 1) {
      mock.timers.tick(45_000);
      await eventually(`refresh ${refresh}`, () => a.stats.publishesApplied === applied + refresh);
    }
    assert.match(await composed(a.router, alice, "a"), /<note>here<\/note>/);
    assert.equal(a.stats.publications, 1);
    stop(system);
  });

  it("source host - a state with expires lapses at its end; clear withdraws at once", async () => {
    const { system, a, host, tell, record } = setup();
    host();
    await tell({ say: "brb", expires: 5 });
    assert.deepEqual(tuples(await composed(a.router, alice, "a")), ["source-echo"]);
    mock.timers.tick(4_999);
    assert.deepEqual(tuples(await composed(a.router, alice, "a")), ["source-echo"]);
    mock.timers.tick(1);
    await eventually("the lapsed state gone", async () => record.publications === 0);
    assert.deepEqual(tuples(await composed(a.router, alice, "a")), []);

    await tell({ say: "back" });
    assert.deepEqual(tuples(await composed(a.router, alice, "a")), ["source-echo"]);
    assert.deepEqual(await tell({ clear: true }), { applied: true, presentities: [alice] });
    assert.deepEqual(tuples(await composed(a.router, alice, "a")), []);
    assert.equal(a.stats.publications, 0);
    stop(system);
  });

  it("source host - a publication whose home does not answer is sent again until it lands", async () => {
    const system = start();
    const hub = new LoopbackHub();
    const placement = new TestPlacement(["b"]);
    const a = testNode(hub, "a", system, placement);
    const record = newSourceRecord();
    const welcome = defineSource({
      name: "welcome",
      start(ctx) {
        ctx.publish(alice, { status: "open", note: "hello" });
        return null;
      },
      receive: (state) => state,
    });
    spawnSourceHost(a.deps, { name: "welcome", definition: welcome, config: null }, record);
    await eventually("the source started", () => record.state === "running");
    // Node b, the presentity's home, is not there yet: the publication waits for it.
    const b = testNode(hub, "b", system, placement);
    mock.timers.tick(1_000);
    const body = await eventually("the publication at its home", async () => {
      const now = await composed(b.router, alice, "b");
      return tuples(now).length === 1 && now;
    });
    assert.match(body, /<note>hello<\/note>/);
    stop(system);
  });
});

describe("source host - supervision", () => {
  it("source host - a source that throws is restarted after 100, 200, 400, 800, 800 ms and shown failing", async () => {
    const { system, host, record } = setup();
    const flaky = defineSource({
      name: "flaky",
      start(ctx) {
        ctx.every("tick", 10, "tick");
        return null;
      },
      receive() {
        throw new Error("boom");
      },
    });
    host(flaky);
    await eventually("started", () => record.state === "running");
    const delays: (number | null)[] = [];
    for (let crash = 1; crash <= 5; crash += 1) {
      mock.timers.tick(10);
      await eventually(`crash ${crash}`, () => record.restarts === crash);
      assert.equal(record.state, "failing");
      assert.equal(record.lastError?.message, "boom");
      delays.push(record.backoffMs);
      mock.timers.tick((record.backoffMs ?? 0) - 1);
      await settle();
      assert.notEqual(record.nextRestartAt, null, "not restarted before its pause is over");
      mock.timers.tick(1);
      await eventually(`restart ${crash}`, () => record.nextRestartAt === null);
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 800]);
    stop(system);
  });

  it("source host - a restarted source that runs the capped pause without a crash is running again, its next crash paused briefly", async () => {
    const { system, a, host, record } = setup();
    let failing = true;
    const moody = defineSource({
      name: "moody",
      start: () => null,
      receive(state) {
        if (failing) throw new Error("not today");
        return state;
      },
    });
    const handle = host(moody);
    const input: SourceCommand = { type: "input", message: {} };
    const poke = () => a.router.send(handle.address, input);
    await eventually("started", () => record.state === "running");
    poke();
    await eventually("first crash", () => record.restarts === 1);
    mock.timers.tick(100);
    poke();
    await eventually("second crash", () => record.restarts === 2);
    assert.equal(record.backoffMs, 200);
    failing = false;
    mock.timers.tick(200);
    await eventually("restarted", () => record.nextRestartAt === null);
    assert.equal(record.state, "failing", "not healthy until it ran the capped pause");
    mock.timers.tick(800);
    await eventually("healthy again", () => record.state === "running");
    failing = true;
    poke();
    await eventually("third crash", () => record.restarts === 3);
    assert.equal(record.backoffMs, 100, "the pause starts small again");
    stop(system);
  });

  it("source host - a message the source fails on is answered with the error; while it restarts, with unavailable", async () => {
    const { system, host, tell, record } = setup();
    const picky = defineSource({
      name: "echo",
      start: () => null,
      receive(): null {
        throw new Error("cannot parse that");
      },
    });
    host(picky);
    await assert.rejects(tell({}), /source echo failed: cannot parse that/);
    assert.equal(record.state, "failing");
    await assert.rejects(tell({}), (error: Error & { code?: string; retryable?: boolean }) => {
      assert.equal(error.code, "no-actor");
      assert.equal(error.retryable, true);
      assert.match(error.message, /restarting after a failure/);
      return true;
    });
    stop(system);
  });

  it("source host - publications outlive a crash; the new incarnation starts from start() and ignores the old one's mail", async () => {
    const { system, a, host, record } = setup();
    const seen: string[] = [];
    const contexts: { tell(message: string): void }[] = [];
    const once = defineSource<null, number, string>({
      name: "once",
      start(ctx) {
        contexts.push(ctx);
        if (contexts.length === 1) ctx.publish(alice, { status: "closed", note: "first" });
        return contexts.length;
      },
      receive(state, message) {
        seen.push(`${state}:${message}`);
        if (message === "crash") throw new Error("crash");
        return state;
      },
    });
    host(once);
    await eventually("first incarnation", () => record.publications === 1);
    contexts[0]?.tell("crash");
    await eventually("crashed", () => record.restarts === 1);
    mock.timers.tick(100);
    await eventually("second incarnation", () => contexts.length === 2);
    contexts[0]?.tell("late mail of the first");
    contexts[1]?.tell("mail of the second");
    await eventually("second mail handled", () => seen.length === 2);
    assert.deepEqual(seen, ["1:crash", "2:mail of the second"]);
    assert.match(await composed(a.router, alice, "a"), /<note>first<\/note>/);
    stop(system);
  });

  it("source host - a source misusing the API crashes with a reason: bad presentity, bad update, bad timer", async () => {
    const cases: [string, (ctx: Parameters<typeof echo.start>[0]) => void, RegExp][] = [
      ["presentity", (ctx) => ctx.publish("alice", { status: "open" }), /not a presentity URI/],
      [
        "update",
        (ctx) => ctx.publish(alice, { status: "busy" } as never),
        /status must be "open" or "closed"/,
      ],
      ["timer", (ctx) => ctx.every("t", 0, { say: "" }), /delay must be from 1/],
    ];
    for (const [what, misuse, reason] of cases) {
      const { system, host, record } = setup();
      host(
        defineSource({
          name: "misuse",
          start(ctx) {
            misuse(ctx as never);
            return null;
          },
          receive: (state) => state,
        }),
      );
      await eventually(`the ${what} misuse`, () => record.restarts === 1);
      assert.match(record.lastError?.message ?? "", reason, what);
      stop(system);
    }
  });
});

describe("source host - stop", () => {
  it("source host - stop ends the incarnation (its stop runs) and hands the publications over as data", async () => {
    const { system, a, host, tell, record } = setup();
    const stopped: unknown[] = [];
    const tidy = defineSource<null, string, Say>({
      name: "echo",
      start: () => "state of the incarnation",
      receive(state, message, ctx) {
        if ("say" in message) ctx.publish(alice, { status: "open", note: message.say });
        return state;
      },
      stop: (state) => {
        stopped.push(state);
      },
    });
    const handle = host(tidy);
    await tell({ say: "kept" });
    const command: SourceCommand = { type: "stop" };
    const handed = await a.router.ask<unknown[]>(handle.address, command);
    assert.deepEqual(stopped, ["state of the incarnation"]);
    assert.equal(handed.length, 1);
    assert.deepEqual(
      Object.keys(handed[0] as object).sort(),
      ["applied", "body", "etag", "expiresAt", "presentity", "until"].sort(),
    );
    assert.equal(record.state, "stopped");
    await assert.rejects(tell({ say: "after" }), /source echo is stopped here/);
    handle.stop();
    stop(system);
  });
});
