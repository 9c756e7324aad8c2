// test/unit: the supervisor's pure policies — placement, promotion, drain, failure — as tables,
// plus one randomized run of a burst (prints its seed) checking that assignments spread evenly.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  allBelowMin,
  decideDrain,
  decidePromotion,
  placeWatcher,
  type ServerLoadEntry,
  silentServers,
} from "../../../../actors/supervisor/policy.js";

const settings = {
  maxLoad: 100,
  minLoad: 20,
  deadAfterMs: 3000,
  scaleInAfterMs: 10_000,
  cooldownMs: 5000,
};

function s(id: string, load: number, extra: Partial<ServerLoadEntry> = {}): ServerLoadEntry {
  return { id, load, ready: true, lastReport: 0, primary: id === "p", ...extra };
}

describe("policy - placing a watcher", () => {
  const rows: Array<
    [string, ServerLoadEntry[], string | undefined, string | undefined, string | undefined]
  > = [
    ["least loaded wins", [s("p", 50), s("a", 10), s("b", 30)], undefined, "a", "least-loaded"],
    ["ties go to the lower id", [s("b", 10), s("a", 10)], undefined, "a", "least-loaded"],
    ["a user sticks to its server", [s("p", 50), s("a", 10)], "p", "p", "sticky"],
    [
      "sticky server not ready: least loaded",
      [s("p", 50), s("a", 10, { ready: false }), s("b", 70)],
      "a",
      "p",
      "least-loaded",
    ],
    [
      "not-ready servers take nobody",
      [s("a", 0, { ready: false }), s("b", 90)],
      undefined,
      "b",
      "least-loaded",
    ],
    [
      "all above max: still served, flagged",
      [s("p", 120), s("a", 110)],
      undefined,
      "a",
      "overloaded",
    ],
    ["nobody ready: no placement", [s("a", 0, { ready: false })], undefined, undefined, undefined],
  ];
  for (const [what, servers, sticky, server, reason] of rows) {
    it(`policy - ${what}`, () => {
      const placed = placeWatcher(servers, sticky, settings);
      assert.equal(placed?.server, server);
      assert.equal(placed?.reason, reason);
    });
  }

  it("policy - a burst counted at once spreads evenly (randomized)", () => {
    const seed = Date.now() % 1_000_000;
    process.stdout.write(`policy burst seed ${seed}\n`);
    let x = seed;
    const random = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
    const servers = [s("p", random() * 5), s("a", random() * 5), s("b", random() * 5)];
    for (let i = 0; i < 3000; i += 1) {
      const placed = placeWatcher(servers, undefined, settings);
      const entry = servers.find((e) => e.id === placed?.server);
      assert.ok(entry, `seed ${seed}`);
      entry.load += 0.1;
    }
    const loads = servers.map((e) => e.load);
    assert.ok(Math.max(...loads) - Math.min(...loads) < 1, `seed ${seed}: ${loads.join(", ")}`);
  });
});

describe("policy - promotion (the paper's scale-out)", () => {
  const rows: Array<[string, ServerLoadEntry[], string[], boolean, number, string]> = [
    [
      "all above max: the first pool server",
      [s("p", 101), s("a", 150)],
      ["q2", "q1"],
      false,
      0,
      "promote q1",
    ],
    ["one below max: none", [s("p", 101), s("a", 99)], ["q1"], false, 0, "none"],
    ["exactly max is not above: none", [s("p", 100)], ["q1"], false, 0, "none"],
    ["a promotion under way: none", [s("p", 200)], ["q1"], true, 0, "none"],
    ["pool empty: exhausted", [s("p", 200)], [], false, 0, "pool-exhausted"],
    ["right after a drain: none", [s("p", 200)], ["q1"], false, 99_000, "none"],
  ];
  for (const [what, servers, pool, promoting, lastChange, expected] of rows) {
    it(`policy - ${what}`, () => {
      const d = decidePromotion(servers, pool, promoting, lastChange, 100_000, settings);
      assert.equal(d.type === "promote" ? `promote ${d.pool}` : d.type, expected);
    });
  }
});

describe("policy - scale-in", () => {
  const now = 100_000;
  const rows: Array<[string, ServerLoadEntry[], number | undefined, boolean, string | undefined]> =
    [
      [
        "low long enough: drain the least-loaded non-primary",
        [s("p", 5), s("a", 3), s("b", 1)],
        80_000,
        false,
        "b",
      ],
      ["not low long enough", [s("p", 5), s("a", 3)], 95_000, false, undefined],
      ["never below one server", [s("p", 1)], 0, false, undefined],
      ["the primary is never drained", [s("p", 1), s("a", 15)], 0, false, "a"],
      ["a promotion or drain under way", [s("p", 1), s("a", 1)], 0, true, undefined],
      [
        "would not fit on one fewer with room (hysteresis)",
        [s("p", 19), s("a", 19), s("b", 19), s("c", 19)],
        0,
        false,
        undefined,
      ],
    ];
  for (const [what, servers, lowSince, busy, expected] of rows) {
    it(`policy - ${what}`, () => {
      const drained = decideDrain(servers, lowSince, busy, 0, now, { ...settings, maxLoad: 50 });
      assert.equal(drained, expected);
    });
  }

  it("policy - below min needs every ready server low and more than one server", () => {
    assert.equal(allBelowMin([s("p", 5), s("a", 25)], settings), false);
    assert.equal(allBelowMin([s("p", 5), s("a", 15)], settings), true);
    assert.equal(allBelowMin([s("p", 5)], settings), false);
  });
});

describe("policy - failure detection", () => {
  it("policy - a server silent past dead-after is reported, the primary never", () => {
    const servers = [
      s("p", 1, { lastReport: 0 }),
      s("a", 1, { lastReport: 6000 }),
      s("b", 1, { lastReport: 9000 }),
    ];
    assert.deepEqual(silentServers(servers, 10_000, settings), ["a"]);
  });
});
