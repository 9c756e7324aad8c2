// test/unit: the membership table — joins, changes, leaves and expiry on a passed-in clock.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type MemberInfo, MemberTable } from "../../../transport/membership.js";

function member(id: string, extra: Partial<MemberInfo> = {}): MemberInfo {
  return {
    id,
    role: "server",
    sip: "127.0.0.1:5060",
    http: "127.0.0.1:8080",
    state: "ready",
    startedAt: 1,
    ...extra,
  };
}

describe("membership - table", () => {
  it("membership - a join is a change, a repeated heartbeat is not", () => {
    const table = new MemberTable(3000);
    assert.equal(table.upsert(member("a"), 0), true);
    assert.equal(table.upsert(member("a"), 1000), false);
    assert.equal(table.upsert(member("a", { state: "draining" }), 1500), true);
    assert.equal(
      table.upsert(member("a", { startedAt: 2 }), 1600),
      true,
      "a restart is a new incarnation",
    );
  });

  it("membership - silent members expire, this node never does", () => {
    const table = new MemberTable(3000);
    table.upsert(member("self"), 0);
    table.upsert(member("b"), 0);
    table.upsert(member("c"), 2000);
    assert.equal(table.expire(3500, "self"), true);
    assert.deepEqual(
      table.list().map((m) => m.id),
      ["c", "self"],
    );
    assert.equal(table.expire(3600, "self"), false);
  });

  it("membership - after our own reconnect everybody gets a fresh grace period", () => {
    const table = new MemberTable(3000);
    table.upsert(member("b"), 0);
    table.refreshAll(10_000);
    assert.equal(table.expire(12_000, "self"), false);
    assert.deepEqual(
      table.list().map((m) => m.id),
      ["b"],
    );
  });

  it("membership - a leave removes at once and is listed in id order otherwise", () => {
    const table = new MemberTable(3000);
    for (const id of ["c", "a", "b"]) table.upsert(member(id), 0);
    assert.deepEqual(
      table.list().map((m) => m.id),
      ["a", "b", "c"],
    );
    assert.equal(table.remove("b"), true);
    assert.equal(table.remove("b"), false);
    assert.deepEqual(
      table.list().map((m) => m.id),
      ["a", "c"],
    );
  });
});
