// test/unit: nodes for presence-source tests — real routers on one loopback hub, real PresenceResources,
// a source manager per node, and helpers that read a presentity's composed PIDF.

import type { start } from "nact";
import {
  type PresenceState,
  type PublishOutcome,
  RESOURCE_KIND,
  type ResourceCommand,
  spawnPresenceResource,
} from "../../../../actors/presence-resource.js";
import { newNodeStats } from "../../../../actors/services.js";
import type { HostDeps } from "../../../../actors/sources/host.js";
import {
  type LoadedSource,
  SourceManager,
  type SourcePlacement,
} from "../../../../actors/sources/manager.js";
import { silentLogger } from "../../../../bootstrap/log.js";
import { parsePidf } from "../../../../protocol/pidf/pidf.js";
import type { LoopbackHub } from "../../../../transport/loopback.js";
import { homeOf } from "../../../../transport/placement.js";
import { Router } from "../../../../transport/router.js";

export const settings = {
  minExpires: 60,
  maxExpires: 3600,
  defaultExpires: 3600,
  maxQueuedNotifies: 8,
  maxMailbox: 1000,
};

/** Where presentities and sources live: rendezvous over a candidate list the test changes. */
export class TestPlacement implements SourcePlacement {
  constructor(public candidates: string[]) {}
  homeOf(key: string): string {
    return homeOf(key, this.candidates) ?? "none";
  }
  list(): readonly string[] {
    return this.candidates;
  }
}

export interface TestNode {
  router: Router;
  stats: ReturnType<typeof newNodeStats>;
  deps: HostDeps;
  manager(sources: readonly LoadedSource[], settleMs?: number): SourceManager;
}

/** A node: router on `hub`, presentity resources on demand at their home, source host deps. */
export function testNode(
  hub: LoopbackHub,
  id: string,
  system: ReturnType<typeof start>,
  placement: SourcePlacement,
  overrides: Partial<HostDeps> = {},
): TestNode {
  const router = new Router({
    nodeId: id,
    transport: hub.connect(id),
    log: silentLogger,
    askTimeoutMs: 1000,
  });
  const stats = newNodeStats();
  router.placed(RESOURCE_KIND, (presentity) => placement.homeOf(presentity));
  router.onDemand(RESOURCE_KIND, (address) =>
    spawnPresenceResource(
      {
        system,
        router,
        log: silentLogger,
        stats,
        settings,
        serverOf: (node) => router.address("server", "server", node),
        released: () => {},
        previousHomeOf: () => undefined,
      },
      address,
    ),
  );
  const deps: HostDeps = {
    system,
    router,
    log: silentLogger,
    maxMailbox: 1000,
    askTimeoutMs: 1000,
    resourceOf: (presentity) =>
      router.address(RESOURCE_KIND, presentity, placement.homeOf(presentity)),
    publicationSeconds: 300,
    backoff: { initialMs: 100, maxMs: 800 },
    ...overrides,
  };
  return {
    router,
    stats,
    deps,
    manager: (sources, settleMs = 0) =>
      new SourceManager({ ...deps, sources, placement, settleMs }),
  };
}

/** The composed state of a presentity now (version and PIDF), asked of its home through `router`. */
export async function composedState(
  router: Router,
  presentity: string,
  home: string,
): Promise<{ version: number; body: string }> {
  const resource = router.address(RESOURCE_KIND, presentity, home);
  const watch: ResourceCommand = { type: "watch", node: router.nodeId };
  const state = await router.ask<PresenceState>(resource, watch);
  const unwatch: ResourceCommand = { type: "unwatch", node: router.nodeId };
  router.send(resource, unwatch);
  return { version: state.version, body: Buffer.from(state.body).toString("utf8") };
}

/** The composed PIDF of a presentity now. */
export async function composed(router: Router, presentity: string, home: string): Promise<string> {
  return (await composedState(router, presentity, home)).body;
}

/** The tuple ids in a PIDF body, in order. */
export function tuples(body: string): string[] {
  return parsePidf(Buffer.from(body, "utf8")).tuples.map((tuple) => tuple.id);
}

/** A SIP-like initial PUBLISH straight to the presentity's resource; resolves with its outcome. */
export function sipPublish(
  router: Router,
  presentity: string,
  home: string,
  tuple: string,
): Promise<PublishOutcome> {
  const document = parsePidf(
    Buffer.from(
      `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${presentity}"><tuple id="${tuple}"><status><basic>open</basic></status></tuple></presence>`,
    ),
  );
  const command: ResourceCommand = {
    type: "publish",
    request: { kind: "initial", document, expires: 3600 },
  };
  return router.ask<PublishOutcome>(router.address(RESOURCE_KIND, presentity, home), command);
}

/**
 * Turns the event loop (never a timer: tests may fake them) until `check` holds, for at most
 * `limitMs` of real time; the work under test is mail through nact mailboxes, microtasks and I/O.
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  limitMs = 5_000,
): Promise<T> {
  const deadline = performance.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline)
      throw new Error(`still waiting for ${what} after ${limitMs} ms`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Lets queued mail and microtasks run (for checks that something did not happen). */
export async function settle(turns = 200): Promise<void> {
  for (let turn = 0; turn < turns; turn += 1) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
