// test/unit/protocol/sip: defects of the published `sip` 0.0.6 transaction layer (DESIGN.md §8), shown on the
// package itself with a fake transport and mocked timers, each next to the same scenario on our own layer.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, test } from "node:test";
import { makeResponse } from "../../../../protocol/sip/headers.js";
import type { SipRequest, SipResponse } from "../../../../protocol/sip/message.js";
import {
  InviteServerTransaction,
  ManualClock,
  NonInviteClientTransaction,
} from "../../../../protocol/sip/transaction.js";

// The untyped CommonJS boundary: only what these tests drive is described.
interface LibMessage {
  method?: string;
  uri?: string;
  status?: number;
  reason?: string;
  version?: string;
  headers: Record<string, unknown>;
}
interface LibClientTransaction {
  message(message: LibMessage, remote?: unknown): void;
}
interface LibServerTransaction {
  send(message: LibMessage): void;
  message(message: LibMessage): void;
}
interface LibTransactionLayer {
  createClientTransaction(
    connection: { send(message: LibMessage): void; protocol: string; release(): void },
    request: LibMessage,
    callback: (response: LibMessage) => void,
  ): LibClientTransaction;
  createServerTransaction(
    request: LibMessage,
    connection: { send(message: LibMessage): void; release(): void },
  ): LibServerTransaction;
  getClient(message: LibMessage): LibClientTransaction | undefined;
}
const sipLib = createRequire(import.meta.url)("sip") as {
  makeTransactionLayer(options: object, transport?: unknown): LibTransactionLayer;
};

const timers = { t1: 500, t2: 4000, t4: 5000 };

function libRequest(method: string): LibMessage {
  return {
    method,
    uri: "sip:watcher@127.0.0.1:5070",
    version: "2.0",
    headers: {
      via: [{ version: "2.0", protocol: "UDP", host: "127.0.0.1", port: 5060, params: {} }],
      to: { uri: "sip:watcher@127.0.0.1", params: { tag: "w1" } },
      from: { uri: "sip:presentity@127.0.0.1", params: { tag: "p1" } },
      "call-id": "defects-1",
      cseq: { seq: 1, method },
    },
  };
}

function libResponse(request: LibMessage, status: number): LibMessage {
  return { status, reason: "", version: "2.0", headers: { ...request.headers } };
}

function ourRequest(method: string): SipRequest {
  return {
    kind: "request",
    method,
    uri: "sip:watcher@127.0.0.1:5070",
    version: "2.0",
    headers: {
      via: [
        {
          version: "2.0",
          protocol: "UDP",
          host: "127.0.0.1",
          port: 5060,
          params: { branch: "z9hG4bKdefects" },
        },
      ],
      to: { uri: "sip:watcher@127.0.0.1", params: { tag: "w1" } },
      from: { uri: "sip:presentity@127.0.0.1", params: { tag: "p1" } },
      "call-id": "defects-1",
      cseq: { seq: 1, method },
    },
    body: Buffer.alloc(0),
  };
}

function intervals(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - (times[i] ?? 0));
}

/** Lets the `sip` transaction enter its first state (it does so on process.nextTick). */
function nextTick(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

describe("sip 0.0.6 non-INVITE client transaction after a 1xx", () => {
  test("sip 0.0.6 - after a 1xx the client transaction never ends: no 408, never released", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const layer = sipLib.makeTransactionLayer({});
    const seen: number[] = [];
    let released = false;
    const request = libRequest("NOTIFY");
    layer.createClientTransaction(
      { send: () => {}, protocol: "UDP", release: () => (released = true) },
      request,
      (response) => seen.push(response.status ?? 0),
    );
    await nextTick();
    layer.getClient(request)?.message(libResponse(request, 100));
    t.mock.timers.tick(10 * 60_000);
    assert.deepEqual(seen, [100]);
    assert.equal(released, false);
    assert.ok(layer.getClient(request), "the transaction is still in the table");
  });

  test("transaction layer - after a 1xx Timer F still ends the transaction with 408", () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    let terminated = false;
    const request = ourRequest("NOTIFY");
    const tx = new NonInviteClientTransaction(
      "k",
      request,
      { clock, timers, reliable: false },
      {
        send: () => {},
        deliver: (r: SipResponse) => seen.push(r.status),
        terminated: () => (terminated = true),
      },
    );
    tx.start();
    tx.receive(makeResponse(request, 100));
    clock.advance(64 * timers.t1);
    assert.deepEqual(seen, [100, 408]);
    assert.equal(terminated, true);
  });
});

describe("retransmission intervals capped at T2", () => {
  test("sip 0.0.6 - Timer E keeps doubling past T2 (500, 1000, 2000, 4000, 8000, 16000)", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const layer = sipLib.makeTransactionLayer({});
    let now = 0;
    const sent: number[] = [];
    layer.createClientTransaction(
      { send: () => sent.push(now), protocol: "UDP", release: () => {} },
      libRequest("NOTIFY"),
      () => {},
    );
    await nextTick();
    for (; now < 64 * timers.t1; ) {
      now += 100;
      t.mock.timers.tick(100);
    }
    assert.deepEqual(intervals(sent), [500, 1000, 2000, 4000, 8000, 16000]);
  });

  test("transaction layer - Timer E stops growing at T2", () => {
    const clock = new ManualClock();
    const sent: number[] = [];
    new NonInviteClientTransaction(
      "k",
      ourRequest("NOTIFY"),
      { clock, timers, reliable: false },
      { send: () => sent.push(clock.now), deliver: () => {}, terminated: () => {} },
    ).start();
    clock.advance(64 * timers.t1 - 1);
    assert.deepEqual(intervals(sent).slice(0, 6), [500, 1000, 2000, 4000, 4000, 4000]);
    assert.ok(intervals(sent).every((interval) => interval <= timers.t2));
  });

  test("sip 0.0.6 - Timer G (INVITE final retransmission) keeps doubling past T2", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const layer = sipLib.makeTransactionLayer({});
    let now = 0;
    const sent: number[] = [];
    const invite = libRequest("INVITE");
    const tx = layer.createServerTransaction(invite, {
      send: () => sent.push(now),
      release: () => {},
    });
    tx.send(libResponse(invite, 486));
    for (; now < 31_600; ) {
      now += 100;
      t.mock.timers.tick(100);
    }
    assert.deepEqual(intervals(sent), [500, 1000, 2000, 4000, 8000, 16000]);
  });

  test("transaction layer - Timer G stops growing at T2", () => {
    const clock = new ManualClock();
    const sent: number[] = [];
    const invite = ourRequest("INVITE");
    const tx = new InviteServerTransaction(
      "k",
      invite,
      { clock, timers, reliable: false },
      { send: () => sent.push(clock.now), failed: () => {}, terminated: () => {} },
    );
    tx.respond(makeResponse(invite, 486));
    clock.advance(31_600);
    assert.deepEqual(intervals(sent), [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
  });
});
