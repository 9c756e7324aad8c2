// test/unit: placements against load reports that race them — the real Supervisor on node p and a
// server's real control-session code on node a1, over a LoopbackHub, with the redirect INFO held.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { start, stop } from "nact";
import { spawnActor } from "../../../../actors/actor.js";
import {
  type ControlMail,
  type ControlReply,
  fromMail,
  toMail,
} from "../../../../actors/control.js";
import {
  answerControl,
  newServerControl,
  report,
  type ServerControlDeps,
} from "../../../../actors/server-control.js";
import { ExpectedUsers, newNodeStats, WatcherTally } from "../../../../actors/services.js";
import {
  type PlaceAnswer,
  type SupervisorCommand,
  type SupervisorView,
  spawnSupervisor,
} from "../../../../actors/supervisor/supervisor.js";
import { silentLogger } from "../../../../bootstrap/log.js";
import { decodeCcmp } from "../../../../protocol/ccmp/ccmp.js";
import type { ReplyTo } from "../../../../transport/envelope.js";
import { LoopbackHub } from "../../../../transport/loopback.js";
import type { MemberInfo } from "../../../../transport/membership.js";
import { Router } from "../../../../transport/router.js";

const STEP = 0.1;

function member(id: string, role: string): MemberInfo {
  return {
    id,
    role,
    sip: `127.0.0.1:${id === "p" ? 5060 : 5070}`,
    http: "",
    state: "ready",
    startedAt: 1,
  };
}

function isRedirect(raw: Buffer): boolean {
  const request = fromMail(raw);
  if (request.kind !== "request" || request.method !== "INFO") return false;
  const message = decodeCcmp(request.body);
  return message.kind === "request" && message.elements.redirectionUsrAddr !== undefined;
}

/** p (primary, its own load and watchers set by the test) and a1, whose redirect INFOs can be held. */
function cluster() {
  const hub = new LoopbackHub();
  const system = start();
  const router = (nodeId: string) =>
    new Router({ nodeId, transport: hub.connect(nodeId), log: silentLogger, askTimeoutMs: 2000 });
  const p = router("p");
  const a1 = router("a1");
  const primary = { level: 0, watchers: new WatcherTally() };
  spawnSupervisor({
    system,
    router: p,
    log: silentLogger,
    stats: newNodeStats(),
    settings: {
      maxLoad: 1,
      minLoad: 0,
      deadAfterMs: 600_000,
      scaleInAfterMs: 600_000,
      cooldownMs: 0,
      dispatch: "redirect",
      reportIntervalMs: 600_000,
      loadPerWatcher: STEP,
      syncBatch: 10,
      askTimeoutMs: 2000,
      maxMailbox: 1000,
    },
    localLoad: () => primary.level,
    localUsers: () => primary.watchers.size,
    localHas: (watcher) => primary.watchers.has(watcher),
    localSip: () => "127.0.0.1:5060",
    serverOf: (node) => p.address("server", "server", node),
  });
  const server = { level: 0, watchers: new WatcherTally(), hold: false };
  const held: { raw: Buffer; replyTo: ReplyTo | undefined }[] = [];
  const control = newServerControl();
  const deps: ServerControlDeps = {
    router: a1,
    log: silentLogger,
    reportIntervalMs: 600_000,
    significantLoad: 1,
    askTimeoutMs: 2000,
    supervisorOf: (node) => a1.address("supervisor", "supervisor", node),
    loadLevel: () => server.level,
    users: () => server.watchers.size,
    hasUser: (user) => server.watchers.has(user),
    loadPerWatcher: STEP,
    sessionChanged: () => {},
    setRole: () => {},
    endSubscriptions: async () => {},
    resourcesGone: async () => {},
    importSnapshots: async () => {},
  };
  type ServerMail = ControlMail | { type: "release" };
  spawnActor<undefined, ServerMail>(
    system,
    a1,
    a1.address("server", "server"),
    {
      receive(state, message, ctx) {
        const answer = (raw: Buffer, replyTo: ReplyTo | undefined): void => {
          const response = answerControl(control, deps, ctx, raw);
          if (response) {
            a1.reply(replyTo, {
              ok: true,
              value: { raw: toMail(response).raw } satisfies ControlReply,
            });
          }
        };
        if (message.type === "release") {
          for (const mail of held.splice(0)) answer(mail.raw, mail.replyTo);
        } else if (server.hold && isRedirect(message.raw)) {
          held.push({ raw: message.raw, replyTo: ctx.replyTo });
        } else {
          answer(message.raw, ctx.replyTo);
        }
        return state;
      },
    },
    undefined,
    { maxMailbox: 1000, log: silentLogger },
  );
  const supervisor = p.address("supervisor", "supervisor");
  const view = () =>
    p.ask<SupervisorView>(supervisor, { type: "inspect" } satisfies SupervisorCommand);
  const load = async (id: string) => (await view()).servers.find((s) => s.id === id)?.load;
  return {
    primary,
    server,
    held,
    view,
    load,
    place: (watcher: string) =>
      p.ask<PlaceAnswer>(supervisor, { type: "place", watcher } satisfies SupervisorCommand),
    tick: () => p.send(supervisor, { type: "tick" } satisfies SupervisorCommand),
    release: () => a1.send(a1.address("server", "server"), { type: "release" }),
    report: () => report(control, deps),
    /** Brings p and `servers` into the membership; resolves when their control sessions are up. */
    join: async (servers = ["a1"]) => {
      p.send(supervisor, {
        type: "members",
        members: [member("p", "primary"), ...servers.map((id) => member(id, "server"))],
      } satisfies SupervisorCommand);
      await until("the servers' control sessions", async () => {
        const ready = (await view()).servers.filter((s) => s.ready).map((s) => s.id);
        return servers.every((id) => ready.includes(id)) ? true : undefined;
      });
    },
    close: () => stop(system),
  };
}

/** Runs `test` against a fresh cluster, stopped afterwards whatever happens. */
function withCluster(test: (c: ReturnType<typeof cluster>) => Promise<void>): () => Promise<void> {
  return async () => {
    const c = cluster();
    try {
      await test(c);
    } finally {
      c.close();
    }
  };
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

describe("supervisor - placements and the load reports that race them", () => {
  it(
    "supervisor - a report the server sent before it knew of a placement does not undo it",
    withCluster(async (c) => {
      c.primary.level = 0.05;
      await c.join();
      c.tick();
      assert.equal(await c.load("p"), 0.05);
      assert.equal(await c.load("a1"), 0);

      c.server.hold = true;
      const first = c.place("sip:w1@example.com");
      await until("the redirect INFO at a1", () => (c.held.length === 1 ? true : undefined));
      // a1 reports before it has seen the INFO: its level does not know of w1 yet.
      await c.report();
      assert.equal(await c.load("a1"), STEP, "the placement still counts on top of the report");
      const second = await c.place("sip:w2@example.com");
      assert.equal(second.server, "p", "w2 goes to p (0.05), not to a1 (0 reported + w1)");

      c.release();
      assert.equal((await first).server, "a1");
      await until("the answered INFO to reach the supervisor", async () =>
        (await c.report()) && (await c.load("a1")) === STEP ? true : undefined,
      );
      // w1 arrives at a1: it is one watcher there now, counted once.
      c.server.watchers.add("sip:w1@example.com");
      c.server.level = STEP;
      await c.report();
      assert.equal(await c.load("a1"), STEP);
    }),
  );

  it(
    "supervisor - the server counts a redirected user in its reports until the user arrives",
    withCluster(async (c) => {
      c.primary.level = 0.5;
      await c.join();
      c.tick();
      assert.equal((await c.place("sip:w1@example.com")).server, "a1");
      assert.equal((await c.place("sip:w2@example.com")).server, "a1");
      await c.report();
      assert.equal(await c.load("a1"), 2 * STEP, "two users on their way, none arrived");
      c.server.watchers.add("sip:w1@example.com:5090");
      c.server.level = STEP;
      await c.report();
      assert.equal(await c.load("a1"), 2 * STEP, "w1 arrived (from another port: same AOR)");
      c.server.watchers.add("sip:w2@example.com");
      c.server.level = 2 * STEP;
      await c.report();
      assert.equal(await c.load("a1"), 2 * STEP, "both arrived: counted once each");
    }),
  );

  it(
    "supervisor - a watcher placed on the primary counts in its load until it subscribes",
    withCluster(async (c) => {
      c.primary.level = 0;
      await c.join([]);
      c.tick();
      assert.equal((await c.place("sip:w1@example.com")).server, "p");
      // A tick before w1's SUBSCRIBE reached the primary's presence server.
      c.tick();
      assert.equal(await c.load("p"), STEP);
      c.primary.watchers.add("sip:w1@example.com");
      c.primary.level = STEP;
      c.tick();
      assert.equal(await c.load("p"), STEP);
    }),
  );
});

describe("expected users", () => {
  it("expected users - pending until they arrive or their time is up; the oldest go past the limit", () => {
    const expected = new ExpectedUsers(3, 1000);
    expected.expect("a", 0);
    expected.expect("b", 500);
    const arrived = new Set<string>();
    assert.equal(
      expected.pending((u) => arrived.has(u), 900),
      2,
    );
    arrived.add("b");
    assert.equal(
      expected.pending((u) => arrived.has(u), 900),
      1,
    );
    assert.equal(
      expected.pending((u) => arrived.has(u), 1000),
      0,
      "a's time is up",
    );
    arrived.clear();
    for (const user of ["c", "d", "e", "f"]) expected.expect(user, 2000);
    assert.equal(
      expected.pending(() => false, 2000),
      3,
    );
    expected.expect("d", 2500);
    assert.equal(
      expected.pending(() => false, 3000),
      1,
      "d was expected again later",
    );
    expected.clear();
    assert.equal(
      expected.pending(() => false, 3000),
      0,
    );
  });
});
