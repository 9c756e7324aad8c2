// test/unit: the admin HTTP port — read-only views, and /sources/<name>/… handed to presence sources.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { SourceHttpRequest } from "../../../actors/sources/api.js";
import { type AdminServer, startAdmin } from "../../../bootstrap/admin.js";
import { silentLogger } from "../../../bootstrap/log.js";

const seen: { name: string; request: SourceHttpRequest }[] = [];
let admin: AdminServer;
let base = "";

before(async () => {
  admin = await startAdmin(
    { host: "127.0.0.1", port: 0 },
    {
      view: async () => ({ nodes: [] }),
      ready: () => true,
      readyForWatchers: () => ({ ready: false, status: "no-session" }),
      metrics: async () => ({
        contentType: "text/plain; version=0.0.4",
        text: "# TYPE up gauge\nup 1\n",
      }),
      source: async (name, request) => {
        seen.push({ name, request });
        return { status: 202, body: { taken: name }, headers: { "x-source": name } };
      },
    },
    silentLogger,
  );
  base = `http://${admin.host}:${admin.port}`;
});

after(() => admin.close());

describe("admin - probes and metrics", () => {
  it("admin - /readyz answers 503 with the reason while not ready for watchers, /healthz 200", async () => {
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: "no-session" });
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    await health.arrayBuffer();
  });

  it("admin - /metrics answers the exposition text with its content type", async () => {
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4");
    assert.equal(await response.text(), "# TYPE up gauge\nup 1\n");
  });
});

describe("admin - sources", () => {
  it("admin - /sources/<name>/<path> goes to the source with the decoded path, headers and body", async () => {
    const response = await fetch(`${base}/sources/webhook/sip%3Aalice%40example.com?x=1`, {
      method: "POST",
      headers: { Authorization: "Bearer t", "Content-Type": "application/json" },
      body: '{"status":"open"}',
    });
    assert.equal(response.status, 202);
    assert.equal(response.headers.get("x-source"), "webhook");
    assert.deepEqual(await response.json(), { taken: "webhook" });
    const last = seen.at(-1);
    assert.equal(last?.name, "webhook");
    assert.equal(last?.request.method, "POST");
    assert.equal(last?.request.path, "sip:alice@example.com");
    assert.equal(last?.request.headers.authorization, "Bearer t");
    assert.equal(last?.request.body.toString(), '{"status":"open"}');
  });

  it("admin - a body over 64 KiB is refused with 413, a path that is not percent-encoding with 400", async () => {
    const before = seen.length;
    const big = await fetch(`${base}/sources/webhook/a@b.c`, {
      method: "POST",
      body: "x".repeat(64 * 1024 + 1),
    });
    assert.equal(big.status, 413);
    const bad = await fetch(`${base}/sources/webhook/%E0%A4%A`, { method: "POST", body: "{}" });
    assert.equal(bad.status, 400);
    assert.equal(seen.length, before, "neither reached the source");
  });

  it("admin - the read-only paths still refuse other methods", async () => {
    const response = await fetch(`${base}/api/cluster`, { method: "POST" });
    assert.equal(response.status, 405);
    assert.equal((await fetch(`${base}/api/cluster`)).status, 200);
  });
});
