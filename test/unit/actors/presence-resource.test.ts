// test/unit: the PresenceResource actor — RFC 3903 through mail, one change message per watching
// node, and moving home with publications, ETags and watchers (two routers on one loopback hub).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { start, stop } from "nact";
import {
  type PresenceState,
  type PublishOutcome,
  RESOURCE_KIND,
  type ResourceCommand,
  spawnPresenceResource,
} from "../../../actors/presence-resource.js";
import { spawnPresenceServer, WatchHub } from "../../../actors/server.js";
import { newNodeStats } from "../../../actors/services.js";
import { silentLogger } from "../../../bootstrap/log.js";
import { parsePidf } from "../../../protocol/pidf/pidf.js";
import { LoopbackHub } from "../../../transport/loopback.js";
import { Router } from "../../../transport/router.js";

const presentity = "sip:alice@example.com";
const settings = {
  minExpires: 60,
  maxExpires: 3600,
  defaultExpires: 3600,
  maxQueuedNotifies: 8,
  maxMailbox: 1000,
};

function pidf(tuple: string, basic: string) {
  return parsePidf(
    Buffer.from(
      `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${presentity}"><tuple id="${tuple}"><status><basic>${basic}</basic></status></tuple></presence>`,
    ),
  );
}

/** The real watch hub, recording every presence-changed message its node receives. */
class RecordingHub extends WatchHub {
  constructor(
    router: Router,
    resourceOf: (presentity: string) => ReturnType<Router["address"]>,
    askTimeoutMs: number,
    private readonly seen: PresenceState[],
  ) {
    super(router, resourceOf, askTimeoutMs);
  }

  override changed(state: PresenceState): void {
    this.seen.push(state);
    super.changed(state);
  }
}

/** A node: router, stats, resources spawned on demand, and the real PresenceServer actor. */
function node(
  bus: LoopbackHub,
  id: string,
  system: ReturnType<typeof start>,
  home: () => string,
  previousHome: () => string | undefined = () => undefined,
) {
  const router = new Router({
    nodeId: id,
    transport: bus.connect(id),
    log: silentLogger,
    askTimeoutMs: 1000,
  });
  const stats = newNodeStats();
  const changes: PresenceState[] = [];
  const local = new Set<string>();
  router.placed(RESOURCE_KIND, () => home());
  router.onDemand(RESOURCE_KIND, (address) => {
    local.add(address.id);
    return spawnPresenceResource(
      {
        system,
        router,
        log: silentLogger,
        stats,
        settings,
        serverOf: (n) => router.address("server", "server", n),
        released: (p) => local.delete(p),
        previousHomeOf: () => previousHome(),
      },
      address,
    );
  });
  const watchHub = new RecordingHub(
    router,
    (p) => router.address(RESOURCE_KIND, p, home()),
    1000,
    changes,
  );
  spawnPresenceServer({
    system,
    router,
    log: silentLogger,
    stats,
    settings,
    hub: watchHub,
    control: {
      router,
      log: silentLogger,
      reportIntervalMs: 1000,
      significantLoad: 1,
      askTimeoutMs: 1000,
      supervisorOf: (n) => router.address("supervisor", "supervisor", n),
      loadLevel: () => 0,
      users: () => 0,
      hasUser: () => false,
      loadPerWatcher: 0.1,
      sessionChanged: () => {},
      setRole: () => {},
      endSubscriptions: async () => {},
      resourcesGone: async () => {},
      importSnapshots: async () => {},
    },
    exportFor: async () => ({ snapshots: [], next: undefined }),
  });
  return { router, stats, changes, local };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

describe("presence-resource - mail", () => {
  it("presence-resource - publish, refresh with a new ETag, 412 for the old one", async () => {
    const system = start();
    const a = node(new LoopbackHub(), "a", system, () => "a");
    const to = a.router.address(RESOURCE_KIND, presentity);
    const first = await a.router.ask<PublishOutcome>(to, {
      type: "publish",
      request: { kind: "initial", document: pidf("t1", "open"), expires: 60 },
    } satisfies ResourceCommand);
    assert.ok(first.ok && first.etag);
    const refreshed = await a.router.ask<PublishOutcome>(to, {
      type: "publish",
      request: { kind: "refresh", etag: first.etag, expires: 60 },
    } satisfies ResourceCommand);
    assert.ok(refreshed.ok && refreshed.etag && refreshed.etag !== first.etag);
    const stale = await a.router.ask<PublishOutcome>(to, {
      type: "publish",
      request: { kind: "refresh", etag: first.etag, expires: 60 },
    } satisfies ResourceCommand);
    assert.equal(stale.ok, false);
    assert.equal(a.stats.publications, 1);
    stop(system);
  });

  it("presence-resource - a change goes once to each watching node", async () => {
    const system = start();
    const hub = new LoopbackHub();
    const a = node(hub, "a", system, () => "a");
    const b = node(hub, "b", system, () => "a");
    const to = a.router.address(RESOURCE_KIND, presentity);
    await a.router.ask<PresenceState>(to, { type: "watch", node: "a" } satisfies ResourceCommand);
    await b.router.ask<PresenceState>(to, { type: "watch", node: "b" } satisfies ResourceCommand);
    await b.router.ask<PresenceState>(to, { type: "watch", node: "b" } satisfies ResourceCommand);
    await a.router.ask(to, {
      type: "publish",
      request: { kind: "initial", document: pidf("t1", "open"), expires: 60 },
    } satisfies ResourceCommand);
    await until("both nodes told", () => a.changes.length === 1 && b.changes.length === 1);
    assert.equal(a.stats.fanoutMessages, 1, "one cross-node message, to b");
    assert.match(b.changes[0]?.body.toString() ?? "", /<basic>open<\/basic>/);
    stop(system);
  });
});

describe("presence-resource - moving home", () => {
  it("presence-resource - state, ETags and watchers follow the presentity to its new home", async () => {
    const system = start();
    const hub = new LoopbackHub();
    let home = "a";
    const a = node(hub, "a", system, () => home);
    const b = node(hub, "b", system, () => home);
    const atA = a.router.address(RESOURCE_KIND, presentity);
    await b.router.ask(atA, { type: "watch", node: "b" } satisfies ResourceCommand);
    const first = await a.router.ask<PublishOutcome>(atA, {
      type: "publish",
      request: { kind: "initial", document: pidf("t1", "open"), expires: 60 },
    } satisfies ResourceCommand);
    assert.ok(first.ok && first.etag);

    home = "b";
    a.router.send(atA, {
      type: "rehome",
      home: "b",
      alive: ["a", "b"],
    } satisfies ResourceCommand);
    await until("moved", () => a.local.size === 0 && b.local.size === 1);
    assert.equal(a.stats.resourcesMoved, 1);
    assert.equal(a.stats.publications, 0);
    assert.equal(b.stats.publications, 1);

    // Mail sent to the old home by a node with an old view still lands at the new one.
    const viaOld = await a.router.ask<PublishOutcome>(atA, {
      type: "publish",
      request: { kind: "modify", etag: first.etag, document: pidf("t1", "closed"), expires: 60 },
    } satisfies ResourceCommand);
    assert.ok(viaOld.ok, "the old ETag is still valid after the move");
    assert.ok(a.router.stats().forwarded >= 1);
    await until("watcher b told by the new home", () =>
      b.changes.some((c) => c.body.toString().includes("<basic>closed</basic>")),
    );
    stop(system);
  });

  it("presence-resource - a handoff to a node that is not there keeps the state", async () => {
    const system = start();
    const hub = new LoopbackHub();
    const a = node(hub, "a", system, () => "a");
    const atA = a.router.address(RESOURCE_KIND, presentity);
    const first = await a.router.ask<PublishOutcome>(atA, {
      type: "publish",
      request: { kind: "initial", document: pidf("t1", "open"), expires: 60 },
    } satisfies ResourceCommand);
    a.router.send(atA, {
      type: "rehome",
      home: "gone",
      alive: ["a"],
    } satisfies ResourceCommand);
    const again = await a.router.ask<PublishOutcome>(atA, {
      type: "publish",
      request: { kind: "refresh", etag: first.ok ? (first.etag ?? "") : "", expires: 60 },
    } satisfies ResourceCommand);
    assert.ok(again.ok);
    assert.equal(a.stats.resourcesMoved, 0);
    stop(system);
  });
});

describe("presence-resource - handover on demand", () => {
  it("presence-resource - a new home asks the previous one before serving, so an old ETag never gets 412", async () => {
    const system = start();
    const hub = new LoopbackHub();
    let home = "a";
    const a = node(hub, "a", system, () => home);
    const b = node(
      hub,
      "b",
      system,
      () => home,
      () => "a",
    );
    const first = await a.router.ask<PublishOutcome>(a.router.address(RESOURCE_KIND, presentity), {
      type: "publish",
      request: { kind: "initial", document: pidf("t1", "open"), expires: 60 },
    } satisfies ResourceCommand);
    assert.ok(first.ok && first.etag);
    // b became the home, and a refresh reaches b before a has pushed anything.
    home = "b";
    const refreshed = await b.router.ask<PublishOutcome>(
      b.router.address(RESOURCE_KIND, presentity),
      {
        type: "publish",
        request: { kind: "refresh", etag: first.etag, expires: 60 },
      } satisfies ResourceCommand,
    );
    assert.ok(refreshed.ok, "the new home had the publication before answering");
    await until("the old home to give its state up", () => a.local.size === 0);
    assert.equal(a.stats.resourcesMoved, 1);
    assert.equal(b.stats.publications, 1);
    stop(system);
  });
});
