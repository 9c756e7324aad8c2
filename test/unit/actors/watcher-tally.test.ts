// test/unit: the WatcherTally behind `pres-sys-users` — distinct watchers, however many subscriptions
// each holds, and a watcher leaves the count only with its last subscription.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WatcherTally } from "../../../actors/services.js";

describe("watcher tally", () => {
  it("watcher tally - ten subscriptions of one watcher count one user; the last to end removes it", () => {
    const tally = new WatcherTally();
    for (let i = 0; i < 10; i++) tally.add("sip:alice@example.com");
    tally.add("sip:bob@example.com");
    assert.equal(tally.size, 2);
    for (let i = 0; i < 9; i++) tally.remove("sip:alice@example.com");
    assert.equal(tally.size, 2);
    tally.remove("sip:alice@example.com");
    assert.equal(tally.size, 1);
    tally.remove("sip:carol@example.com");
    assert.equal(tally.size, 1);
  });
});
