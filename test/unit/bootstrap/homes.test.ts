// test/unit: this node's view of presentity homes — which members may host, and when homes change.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Homes } from "../../../bootstrap/homes.js";
import type { MemberInfo } from "../../../transport/membership.js";

function m(id: string, role: string, state: MemberInfo["state"] = "ready"): MemberInfo {
  return { id, role, sip: "", http: "", state, startedAt: 0 };
}

describe("homes - candidates", () => {
  it("homes - alone, everything lives here", () => {
    const homes = new Homes("a");
    assert.equal(homes.homeOf("sip:x@y"), "a");
    assert.equal(homes.othersCanHost(), false);
  });

  it("homes - pool and draining nodes host nothing", () => {
    const homes = new Homes("a");
    assert.equal(
      homes.update([
        m("a", "primary"),
        m("b", "server"),
        m("p", "pool"),
        m("d", "server", "draining"),
      ]),
      true,
    );
    assert.deepEqual(homes.list(), ["a", "b"]);
    assert.equal(homes.othersCanHost(), true);
  });

  it("homes - a heartbeat that changes nothing is not a change", () => {
    const homes = new Homes("a");
    homes.update([m("a", "primary"), m("b", "server")]);
    assert.equal(homes.update([m("b", "server"), m("a", "primary")]), false);
  });

  it("homes - when this node drains alone, its presentities stay (nobody else can take them)", () => {
    const homes = new Homes("a");
    homes.update([m("a", "primary", "draining")]);
    assert.deepEqual(homes.list(), ["a"]);
    assert.equal(homes.homeOf("sip:x@y"), "a");
  });
});
