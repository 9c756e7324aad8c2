// test/unit/protocol/sip: the RFC 3261 §17 state machines on a ManualClock, with recording hooks.
// Each machine's state table, the retransmission schedules (Timer E/G capped at T2) and the keys.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { SipRequest, SipResponse } from "../../../../protocol/sip/message.js";
import {
  type ClientTransaction,
  clientTransactionKey,
  InviteClientTransaction,
  InviteServerTransaction,
  ManualClock,
  NonInviteClientTransaction,
  NonInviteServerTransaction,
  type ServerTransaction,
  serverTransactionKey,
  TransactionTable,
} from "../../../../protocol/sip/transaction.js";

const timers = { t1: 500, t2: 4000, t4: 5000 };

function request(method: string, branch = "z9hG4bKabc123", sentBy = "192.0.2.1"): SipRequest {
  return {
    kind: "request",
    method,
    uri: "sip:bob@example.com",
    version: "2.0",
    headers: {
      via: [{ version: "2.0", protocol: "UDP", host: sentBy, port: 5060, params: { branch } }],
      to: { uri: "sip:bob@example.com", params: {} },
      from: { uri: "sip:alice@example.com", params: { tag: "a1" } },
      "call-id": "call-1@example.com",
      cseq: { seq: 7, method: method === "ACK" ? "ACK" : method },
      "max-forwards": "70",
    },
    body: Buffer.alloc(0),
  };
}

function response(req: SipRequest, status: number): SipResponse {
  return {
    kind: "response",
    status,
    reason: `status ${status}`,
    version: "2.0",
    headers: {
      via: req.headers.via,
      to: { ...req.headers.to, params: status > 100 ? { tag: "b1" } : {} },
      from: req.headers.from,
      "call-id": req.headers["call-id"],
      cseq: { ...req.headers.cseq },
    },
    body: Buffer.alloc(0),
  };
}

interface ClientRecord {
  clock: ManualClock;
  sent: { at: number; message: SipRequest }[];
  delivered: SipResponse[];
  terminatedAt: number | undefined;
}

function client(
  kind: "invite" | "non-invite",
  reliable = false,
): { tx: ClientTransaction; rec: ClientRecord; req: SipRequest } {
  const clock = new ManualClock();
  const rec: ClientRecord = { clock, sent: [], delivered: [], terminatedAt: undefined };
  const req = request(kind === "invite" ? "INVITE" : "NOTIFY");
  const hooks = {
    send: (message: SipRequest) => rec.sent.push({ at: clock.now, message }),
    deliver: (r: SipResponse) => rec.delivered.push(r),
    terminated: () => {
      rec.terminatedAt = clock.now;
    },
  };
  const context = { clock, timers, reliable };
  const key = clientTransactionKey(req) ?? "";
  const tx =
    kind === "invite"
      ? new InviteClientTransaction(key, req, context, hooks)
      : new NonInviteClientTransaction(key, req, context, hooks);
  tx.start();
  return { tx, rec, req };
}

interface ServerRecord {
  clock: ManualClock;
  sent: { at: number; status: number }[];
  failures: string[];
  terminatedAt: number | undefined;
}

function server(
  kind: "invite" | "non-invite",
  reliable = false,
): { tx: ServerTransaction; rec: ServerRecord; req: SipRequest } {
  const clock = new ManualClock();
  const rec: ServerRecord = { clock, sent: [], failures: [], terminatedAt: undefined };
  const req = request(kind === "invite" ? "INVITE" : "SUBSCRIBE");
  const hooks = {
    send: (r: SipResponse) => rec.sent.push({ at: clock.now, status: r.status }),
    failed: (reason: string) => rec.failures.push(reason),
    terminated: () => {
      rec.terminatedAt = clock.now;
    },
  };
  const context = { clock, timers, reliable };
  const key = serverTransactionKey(req) ?? "";
  const tx =
    kind === "invite"
      ? new InviteServerTransaction(key, req, context, hooks)
      : new NonInviteServerTransaction(key, req, context, hooks);
  return { tx, rec, req };
}

function intervals(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - (times[i] ?? 0));
}

describe("non-INVITE client transaction (RFC 3261 §17.1.2)", () => {
  test("non-INVITE client - Timer E doubles from T1 and is capped at T2, Timer F ends it with 408", () => {
    const { tx, rec } = client("non-invite");
    rec.clock.advance(64 * timers.t1 - 1);
    assert.equal(tx.state, "trying");
    assert.deepEqual(
      intervals(rec.sent.map((s) => s.at)),
      [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000],
    );
    rec.clock.advance(1);
    assert.equal(tx.state, "terminated");
    assert.equal(rec.terminatedAt, 32_000);
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [408],
    );
    assert.equal(rec.clock.pending(), 0);
  });

  test("non-INVITE client - a 1xx moves to Proceeding, retransmits every T2, and Timer F still gives 408", () => {
    const { tx, rec, req } = client("non-invite");
    rec.clock.advance(600);
    tx.receive(response(req, 100));
    assert.equal(tx.state, "proceeding");
    rec.clock.advance(64 * timers.t1 - 600 - 1);
    assert.equal(tx.state, "proceeding");
    // E armed in Trying fires at 1500, then resets to T2 each time (§17.1.2.2).
    assert.deepEqual(
      rec.sent.map((s) => s.at),
      [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500],
    );
    rec.clock.advance(1);
    assert.equal(tx.state, "terminated");
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [100, 408],
    );
  });

  test("non-INVITE client - a final goes to the TU once, retransmissions are absorbed, Timer K ends it", () => {
    const { tx, rec, req } = client("non-invite");
    tx.receive(response(req, 180));
    tx.receive(response(req, 200));
    assert.equal(tx.state, "completed");
    tx.receive(response(req, 200));
    tx.receive(response(req, 180));
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [180, 200],
    );
    rec.clock.advance(timers.t4 - 1);
    assert.equal(tx.state, "completed");
    rec.clock.advance(1);
    assert.equal(tx.state, "terminated");
    assert.equal(rec.sent.length, 1);
  });

  test("non-INVITE client - reliable transport: no retransmissions, Timer K is zero, Timer F still runs", () => {
    const done = client("non-invite", true);
    done.tx.receive(response(done.req, 200));
    assert.equal(done.tx.state, "terminated");
    assert.equal(done.rec.clock.pending(), 0);

    const { tx, rec } = client("non-invite", true);
    rec.clock.advance(64 * timers.t1);
    assert.equal(rec.sent.length, 1);
    assert.equal(tx.state, "terminated");
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [408],
    );
  });

  test("non-INVITE client - a transport error gives the TU 503 and terminates", () => {
    const { tx, rec } = client("non-invite");
    tx.transportError();
    assert.equal(tx.state, "terminated");
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [503],
    );
    assert.equal(rec.clock.pending(), 0);
  });
});

describe("INVITE client transaction (RFC 3261 §17.1.1, RFC 6026)", () => {
  test("INVITE client - Timer A doubles without a cap until Timer B gives 408", () => {
    const { tx, rec } = client("invite");
    rec.clock.advance(64 * timers.t1);
    assert.deepEqual(intervals(rec.sent.map((s) => s.at)), [500, 1000, 2000, 4000, 8000, 16000]);
    assert.equal(tx.state, "terminated");
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [408],
    );
  });

  test("INVITE client - a 1xx stops retransmissions; Proceeding waits for the final (no Timer B)", () => {
    const { tx, rec, req } = client("invite");
    tx.receive(response(req, 180));
    rec.clock.advance(10 * 64 * timers.t1);
    assert.equal(tx.state, "proceeding");
    assert.equal(rec.sent.length, 1);
    tx.receive(response(req, 183));
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [180, 183],
    );
  });

  test("INVITE client - a non-2xx final is ACKed (§17.1.1.3), retransmissions re-ACKed, Timer D ends it", () => {
    const { tx, rec, req } = client("invite");
    tx.receive(response(req, 486));
    assert.equal(tx.state, "completed");
    const ack = rec.sent[1]?.message;
    assert.ok(ack);
    assert.equal(ack.method, "ACK");
    assert.equal(ack.uri, req.uri);
    assert.deepEqual(ack.headers.via, [req.headers.via[0]]);
    assert.deepEqual(ack.headers.cseq, { seq: 7, method: "ACK" });
    assert.equal(ack.headers.to.params.tag, "b1");
    assert.deepEqual(ack.headers.from, req.headers.from);
    assert.equal(ack.headers["call-id"], req.headers["call-id"]);

    tx.receive(response(req, 486));
    assert.equal(rec.sent.length, 3);
    assert.equal(rec.sent[2]?.message, ack);
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [486],
    );
    rec.clock.advance(64 * timers.t1);
    assert.equal(tx.state, "terminated");
  });

  test("INVITE client - a 2xx goes to Accepted, 2xx retransmissions reach the TU, Timer M ends it", () => {
    const { tx, rec, req } = client("invite");
    tx.receive(response(req, 100));
    tx.receive(response(req, 200));
    assert.equal(tx.state, "accepted");
    tx.receive(response(req, 200));
    tx.receive(response(req, 486));
    assert.deepEqual(
      rec.delivered.map((r) => r.status),
      [100, 200, 200],
    );
    assert.equal(rec.sent.length, 1);
    rec.clock.advance(64 * timers.t1);
    assert.equal(tx.state, "terminated");
  });

  test("INVITE client - reliable transport: Timer D is zero", () => {
    const { tx, rec, req } = client("invite", true);
    tx.receive(response(req, 404));
    assert.equal(tx.state, "terminated");
    assert.equal(rec.sent.length, 2);
  });
});

describe("non-INVITE server transaction (RFC 3261 §17.2.2)", () => {
  test("non-INVITE server - state table: retransmissions discarded in Trying, answered after", () => {
    const { tx, rec, req } = server("non-invite");
    assert.equal(tx.receive(req), "absorbed");
    assert.equal(rec.sent.length, 0);
    assert.equal(tx.respond(response(req, 100)), true);
    assert.equal(tx.state, "proceeding");
    tx.receive(req);
    assert.deepEqual(
      rec.sent.map((s) => s.status),
      [100, 100],
    );
    assert.equal(tx.respond(response(req, 202)), true);
    assert.equal(tx.state, "completed");
    tx.receive(req);
    tx.receive(req);
    assert.equal(tx.respond(response(req, 500)), false);
    assert.deepEqual(
      rec.sent.map((s) => s.status),
      [100, 100, 202, 202, 202],
    );
    rec.clock.advance(64 * timers.t1 - 1);
    assert.equal(tx.state, "completed");
    rec.clock.advance(1);
    assert.equal(tx.state, "terminated");
  });

  test("non-INVITE server - a final straight from Trying completes it (erratum 1470)", () => {
    const { tx, req } = server("non-invite");
    tx.respond(response(req, 200));
    assert.equal(tx.state, "completed");
  });

  test("non-INVITE server - reliable transport: Timer J is zero", () => {
    const { tx, rec, req } = server("non-invite", true);
    tx.respond(response(req, 200));
    assert.equal(tx.state, "terminated");
    assert.equal(rec.clock.pending(), 0);
  });

  test("non-INVITE server - a transport error tells the TU and terminates", () => {
    const { tx, rec } = server("non-invite");
    tx.transportError();
    assert.deepEqual(rec.failures, ["transport"]);
    assert.equal(tx.state, "terminated");
  });
});

describe("INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)", () => {
  test("INVITE server - sends 100 Trying when the TU is silent for 200 ms, not when it answers", () => {
    const slow = server("invite");
    slow.rec.clock.advance(200);
    assert.deepEqual(
      slow.rec.sent.map((s) => s.status),
      [100],
    );
    slow.tx.receive(slow.req);
    assert.deepEqual(
      slow.rec.sent.map((s) => s.status),
      [100, 100],
    );

    const fast = server("invite");
    fast.rec.clock.advance(50);
    fast.tx.respond(response(fast.req, 180));
    fast.rec.clock.advance(500);
    assert.deepEqual(
      fast.rec.sent.map((s) => s.status),
      [180],
    );
  });

  test("INVITE server - Timer G retransmits a non-2xx final doubling up to T2; ACK confirms and is absorbed", () => {
    const { tx, rec, req } = server("invite");
    tx.respond(response(req, 486));
    assert.equal(tx.state, "completed");
    rec.clock.advance(15_500);
    assert.deepEqual(intervals(rec.sent.map((s) => s.at)), [500, 1000, 2000, 4000, 4000, 4000]);
    tx.receive(req);
    assert.equal(rec.sent.length, 8);
    assert.equal(tx.receive(request("ACK")), "absorbed");
    assert.equal(tx.state, "confirmed");
    assert.equal(tx.receive(request("ACK")), "absorbed");
    rec.clock.advance(timers.t4 - 1);
    assert.equal(rec.sent.length, 8);
    assert.equal(tx.state, "confirmed");
    rec.clock.advance(1);
    assert.equal(tx.state, "terminated");
    assert.deepEqual(rec.failures, []);
  });

  test("INVITE server - Timer H without an ACK reports a failure", () => {
    const { tx, rec, req } = server("invite");
    tx.respond(response(req, 603));
    rec.clock.advance(64 * timers.t1);
    assert.equal(tx.state, "terminated");
    assert.deepEqual(rec.failures, ["no-ack"]);
  });

  test("INVITE server - a 2xx goes to Accepted: INVITE retransmissions absorbed, TU 2xx resent, Timer L ends it", () => {
    const { tx, rec, req } = server("invite");
    tx.respond(response(req, 200));
    assert.equal(tx.state, "accepted");
    assert.equal(tx.receive(req), "absorbed");
    assert.equal(rec.sent.length, 1);
    assert.equal(tx.respond(response(req, 200)), true);
    assert.equal(tx.respond(response(req, 486)), false);
    assert.equal(tx.receive(request("ACK")), "to-tu");
    rec.clock.advance(64 * timers.t1);
    assert.equal(tx.state, "terminated");
    assert.deepEqual(
      rec.sent.map((s) => s.status),
      [200, 200],
    );
  });

  test("INVITE server - reliable transport: no Timer G, Timer I is zero", () => {
    const { tx, rec, req } = server("invite", true);
    tx.respond(response(req, 486));
    rec.clock.advance(10_000);
    assert.equal(rec.sent.length, 1);
    tx.receive(request("ACK"));
    assert.equal(tx.state, "terminated");
  });
});

describe("transaction matching (RFC 3261 §17.1.3, §17.2.3)", () => {
  test("keys - an ACK matches its INVITE; method, branch and sent-by separate transactions", () => {
    const invite = serverTransactionKey(request("INVITE"));
    assert.equal(serverTransactionKey(request("ACK")), invite);
    assert.notEqual(serverTransactionKey(request("CANCEL")), invite);
    assert.notEqual(serverTransactionKey(request("INVITE", "z9hG4bKother")), invite);
    assert.notEqual(serverTransactionKey(request("INVITE", "z9hG4bKabc123", "192.0.2.9")), invite);
    const req = request("SUBSCRIBE");
    assert.equal(clientTransactionKey(response(req, 200)), clientTransactionKey(req));
    assert.notEqual(
      clientTransactionKey(request("CANCEL")),
      clientTransactionKey(request("INVITE")),
    );
  });

  test("keys - RFC 2543 branches match on Call-ID, CSeq, From tag and Via; the ACK still finds its INVITE", () => {
    const invite = request("INVITE", "old-branch");
    const ack = request("ACK", "old-branch");
    ack.headers.to = { uri: "sip:bob@example.com", params: { tag: "b1" } };
    assert.equal(serverTransactionKey(ack), serverTransactionKey(invite));
    const other = request("INVITE", "old-branch");
    other.headers["call-id"] = "call-2@example.com";
    assert.notEqual(serverTransactionKey(other), serverTransactionKey(invite));
  });

  test("table - finds transactions by message, the CANCEL target, and forgets terminated ones", () => {
    const clock = new ManualClock();
    const table = new TransactionTable(clock, timers);
    const noop = { send: () => {}, failed: () => {}, terminated: () => {} };
    const invite = request("INVITE");
    const tx = table.createServer(invite, false, noop);
    assert.equal(table.findServer(request("INVITE")), tx);
    assert.equal(table.findServer(request("ACK")), tx);
    assert.equal(table.findServer(request("CANCEL")), undefined);
    assert.equal(table.findCancelTarget(request("CANCEL")), tx);

    const sub = request("SUBSCRIBE", "z9hG4bKclient");
    const delivered: number[] = [];
    const ctx = table.createClient(sub, true, {
      send: () => {},
      deliver: (r) => delivered.push(r.status),
      terminated: () => {},
    });
    ctx.start();
    assert.equal(table.findClient(response(sub, 200)), ctx);
    assert.equal(table.clientCount, 1);
    ctx.receive(response(sub, 200));
    assert.equal(table.clientCount, 0);
    assert.deepEqual(delivered, [200]);

    tx.respond(response(invite, 200));
    clock.advance(64 * timers.t1);
    assert.equal(table.serverCount, 0);
  });

  test("table - close terminates every transaction and runs their hooks", () => {
    const table = new TransactionTable(new ManualClock(), timers);
    const ended: string[] = [];
    table.createServer(request("INVITE"), false, {
      send: () => {},
      failed: () => {},
      terminated: () => ended.push("server"),
    });
    table
      .createClient(request("OPTIONS", "z9hG4bKc2"), false, {
        send: () => {},
        deliver: () => {},
        terminated: () => ended.push("client"),
      })
      .start();
    table.close();
    assert.deepEqual(ended.sort(), ["client", "server"]);
    assert.equal(table.clientCount + table.serverCount, 0);
  });
});
