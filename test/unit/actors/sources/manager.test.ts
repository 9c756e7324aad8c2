// test/unit: the source manager — one node runs a source (the home of source:<name>), it moves with
// its publications when homes change, and HTTP requests reach it from any node.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { start, stop } from "nact";
import { defineSource } from "../../../../actors/sources/api.js";
import { type LoadedSource, sourceKey } from "../../../../actors/sources/manager.js";
import { LoopbackHub } from "../../../../transport/loopback.js";
import { homeOf } from "../../../../transport/placement.js";
import { composed, eventually, TestPlacement, testNode, tuples } from "./nodes.js";

type Say = { presentity: string; say: string };

const relay = defineSource<null, null, Say>({
  name: "relay",
  start: () => null,
  receive(state, message, ctx) {
    ctx.publish(message.presentity, { status: "open", note: message.say });
    return state;
  },
  http(request) {
    if (request.headers.authorization !== "let me") {
      return { status: 401, body: { error: "who are you?" } };
    }
    return { deliver: { presentity: request.path, say: request.body.toString("utf8") } };
  },
});

const loaded: LoadedSource = { name: "relay", module: "built-in", definition: relay, config: null };
const SETTLE_MS = 50;

/** A presentity homed on `node` among `candidates`. */
function presentityOn(node: string, candidates: string[]): string {
  for (let i = 0; ; i += 1) {
    const presentity = `sip:user${i}@example.com`;
    if (homeOf(presentity, candidates) === node) return presentity;
  }
}

function cluster(ids: string[]) {
  const system = start();
  const hub = new LoopbackHub();
  const placement = new TestPlacement([...ids]);
  const nodes = ids.map((id) => {
    const node = testNode(hub, id, system, placement);
    return { id, ...node, sources: node.manager([loaded], SETTLE_MS) };
  });
  const running = () =>
    nodes.filter((n) => n.sources.view()[0]?.state === "running").map((n) => n.id);
  const request = (path: string, body: string, authorization = "let me") => ({
    method: "POST",
    path,
    headers: { authorization },
    body: Buffer.from(body),
  });
  return { system, placement, nodes, running, request };
}

beforeEach(() => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_700_000_000_000 });
});

afterEach(() => {
  mock.timers.reset();
});

describe("source manager - placement", () => {
  it("source manager - every node loads the source, one runs it: the home of source:<name>, once homes settled", async () => {
    const { system, nodes, running } = cluster(["a", "b", "c"]);
    for (const node of nodes) node.sources.open();
    mock.timers.tick(SETTLE_MS - 1);
    assert.deepEqual(running(), [], "nothing starts before the homes settled");
    mock.timers.tick(1);
    const home = homeOf(sourceKey("relay"), ["a", "b", "c"]);
    await eventually("the source running", () => running().length === 1);
    assert.deepEqual(running(), [home]);
    for (const node of nodes) assert.equal(node.sources.view()[0]?.home, home);
    stop(system);
  });

  it("source manager - when its home leaves, the source starts on the new home with its publications, not a second tuple", async () => {
    const { system, placement, nodes, running, request } = cluster(["a", "b"]);
    for (const node of nodes) node.sources.open();
    mock.timers.tick(SETTLE_MS);
    await eventually("the source running", () => running().length === 1);
    const [old] = running();
    const stays = nodes.find((n) => n.id !== old);
    assert.ok(old && stays);
    const presentity = presentityOn(stays.id, ["a", "b"]);
    const first = await stays.sources.http("relay", request(presentity, "before the move"));
    assert.equal(first.status, 200, JSON.stringify(first.body));

    placement.candidates = [stays.id];
    for (const node of nodes) node.sources.placementChanged();
    mock.timers.tick(SETTLE_MS);
    await eventually("the source on the node that stays", () => running()[0] === stays.id);
    await eventually("the handed publication adopted", () =>
      stays.sources.view()[0]?.publications === 1 ? true : undefined,
    );
    assert.equal(nodes.find((n) => n.id === old)?.sources.view()[0]?.state, "stopped");

    const second = await stays.sources.http("relay", request(presentity, "after the move"));
    assert.equal(second.status, 200);
    const body = await composed(stays.router, presentity, stays.id);
    assert.deepEqual(tuples(body), ["source-relay"], "the adopted publication was modified");
    assert.match(body, /after the move/);
    assert.equal(stays.stats.publications, 1);
    stop(system);
  });

  it("source manager - close stops the source and hands its publications to the next home among the others", async () => {
    const { system, placement, nodes, running, request } = cluster(["a", "b"]);
    for (const node of nodes) node.sources.open();
    mock.timers.tick(SETTLE_MS);
    await eventually("the source running", () => running().length === 1);
    const leaving = nodes.find((n) => n.id === running()[0]);
    const other = nodes.find((n) => n.id !== running()[0]);
    assert.ok(leaving && other);
    const presentity = presentityOn(other.id, ["a", "b"]);
    await leaving.sources.http("relay", request(presentity, "kept"));
    await leaving.sources.close();
    assert.equal(leaving.sources.view()[0]?.state, "stopped");
    // The other node takes the source once its view of the homes lost the leaving node.
    placement.candidates = [other.id];
    other.sources.placementChanged();
    mock.timers.tick(SETTLE_MS);
    await eventually("the source and its publication on the other node", () =>
      other.sources.view()[0]?.publications === 1 ? true : undefined,
    );
    assert.deepEqual(tuples(await composed(other.router, presentity, other.id)), ["source-relay"]);
    stop(system);
  });
});

describe("source manager - HTTP", () => {
  it("source manager - a request on any node reaches the source where it runs; a refusal is answered where it arrives", async () => {
    const { system, nodes, running, request } = cluster(["a", "b", "c"]);
    const early = await nodes[0]?.sources.http("relay", request("sip:x@example.com", "too soon"));
    assert.equal(early?.status, 503, "not running anywhere yet");
    assert.equal(early.headers?.["retry-after"], "1");
    for (const node of nodes) node.sources.open();
    mock.timers.tick(SETTLE_MS);
    await eventually("the source running", () => running().length === 1);
    for (const node of nodes) {
      const presentity = presentityOn(node.id, ["a", "b", "c"]);
      const answer = await node.sources.http("relay", request(presentity, `via ${node.id}`));
      assert.deepEqual(answer, {
        status: 200,
        body: { applied: true, source: "relay", presentities: [presentity] },
      });
      assert.match(await composed(node.router, presentity, node.id), new RegExp(`via ${node.id}`));
    }
    const b = nodes[1];
    assert.ok(b);
    const refused = await b.sources.http("relay", request("sip:x@example.com", "", "no"));
    assert.deepEqual(refused, { status: 401, body: { error: "who are you?" } });
    const unknown = await b.sources.http("nope", request("", ""));
    assert.equal(unknown.status, 404);
    assert.deepEqual((unknown.body as { sources: string[] }).sources, ["relay"]);
    stop(system);
  });
});
