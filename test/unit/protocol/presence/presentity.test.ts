// test/unit: the canonical presentity key derived from Request-URIs.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { presentityOf } from "../../../../protocol/presence/presentity.js";

describe("presentity - canonical key", () => {
  const rows: Array<[string, string | undefined]> = [
    ["sip:alice@example.com", "sip:alice@example.com"],
    ["sip:alice@Example.COM:5070;transport=tcp", "sip:alice@example.com"],
    ["sips:alice@example.com", "sip:alice@example.com"],
    ["pres:alice@example.com", "sip:alice@example.com"],
    ["sip:Alice@127.0.0.1:5060", "sip:Alice@127.0.0.1"],
    ["sip:127.0.0.1:5060", undefined],
    ["mailto:alice@example.com", undefined],
  ];
  for (const [uri, key] of rows) {
    it(`presentity - ${uri} → ${key ?? "none"}`, () => {
      assert.equal(presentityOf(uri), key);
    });
  }
  it("presentity - asked again, and past the answers it keeps, the same answers", () => {
    for (let round = 0; round < 3; round++) {
      for (const [uri, key] of rows) assert.equal(presentityOf(uri), key);
      for (let i = 0; i < 5000; i++) presentityOf(`sip:u${round}-${i}@example.com`);
    }
  });
});
