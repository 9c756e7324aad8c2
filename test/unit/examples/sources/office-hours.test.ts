// test/unit: the tutorial source — in the office during office hours, out of office otherwise,
// looked at again every minute (fake clock, real host).

import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import { start, stop } from "nact";
import { newSourceRecord, spawnSourceHost } from "../../../../actors/sources/host.js";
import officeHours from "../../../../examples/sources/office-hours.js";
import { LoopbackHub } from "../../../../transport/loopback.js";
import { composed, eventually, TestPlacement, testNode } from "../../actors/sources/nodes.js";

const desk = "sip:desk@example.com";

afterEach(() => {
  mock.timers.reset();
});

describe("office-hours example", () => {
  it("office-hours example - open in the office at 16:59, closed and away from 17:00", async () => {
    mock.timers.enable({
      apis: ["setTimeout", "setInterval", "Date"],
      now: new Date(2025, 2, 10, 16, 59, 0).getTime(),
    });
    const config = officeHours.config?.({ presentity: desk, hours: "9-17" });
    const system = start();
    const a = testNode(new LoopbackHub(), "a", system, new TestPlacement(["a"]));
    spawnSourceHost(a.deps, { name: "desk", definition: officeHours, config }, newSourceRecord());
    const body = () => composed(a.router, desk, "a");
    await eventually("in the office", async () => /<note>in the office<\/note>/.test(await body()));
    assert.match(await body(), /<basic>open<\/basic>/);
    mock.timers.tick(60_000);
    await eventually("out of office", async () => /<note>out of office<\/note>/.test(await body()));
    assert.match(await body(), /<basic>closed<\/basic>/);
    assert.match(await body(), /<rpid:away\/>/);
    stop(system);
  });

  it("office-hours example - a missing presentity or bad hours stop the node at start", () => {
    assert.throws(() => officeHours.config?.({}), /needs presentity/);
    assert.throws(() => officeHours.config?.({ presentity: desk, hours: "nine" }), /hours=/);
  });
});
