// test/unit: rendezvous placement — deterministic, spread, and minimal movement on membership change.
// The randomized test prints its seed so a failure can be replayed.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { homeOf } from "../../../transport/placement.js";

const keys = Array.from({ length: 3000 }, (_, i) => `sip:user${i}@example.com`);

describe("placement - rendezvous hashing", () => {
  it("placement - no candidate, no home", () => {
    assert.equal(homeOf("sip:a@b", []), undefined);
  });

  it("placement - the same key and set give the same home whatever the order of the set", () => {
    for (const key of keys.slice(0, 200)) {
      assert.equal(homeOf(key, ["a", "b", "c"]), homeOf(key, ["c", "a", "b"]));
    }
  });

  it("placement - keys spread evenly over three nodes (each within 25% of a third)", () => {
    const counts = new Map<string, number>();
    for (const key of keys) {
      const home = homeOf(key, ["n1", "n2", "n3"]) ?? "";
      counts.set(home, (counts.get(home) ?? 0) + 1);
    }
    for (const node of ["n1", "n2", "n3"]) {
      const share = (counts.get(node) ?? 0) / keys.length;
      assert.ok(Math.abs(share - 1 / 3) < 1 / 12, `${node} has ${share}`);
    }
  });

  it("placement - a node leaving moves only its own keys; a node joining takes about its share", () => {
    const seed = Date.now() % 100_000;
    process.stdout.write(`placement seed ${seed}\n`);
    const sample = keys.map((k) => `${k};${seed}`);
    const before = new Map(sample.map((k) => [k, homeOf(k, ["n1", "n2", "n3"])]));
    for (const key of sample) {
      const after = homeOf(key, ["n1", "n3"]);
      if (before.get(key) !== "n2") assert.equal(after, before.get(key), `seed ${seed}: ${key}`);
    }
    const moved = sample.filter((k) => homeOf(k, ["n1", "n2", "n3", "n4"]) !== before.get(k));
    for (const key of moved) assert.equal(homeOf(key, ["n1", "n2", "n3", "n4"]), "n4");
    const share = moved.length / sample.length;
    assert.ok(share > 0.18 && share < 0.32, `seed ${seed}: n4 took ${share}`);
  });
});
