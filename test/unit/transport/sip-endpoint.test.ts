// test/unit/transport: the SIP endpoint on real sockets (127.0.0.1, port 0), raw SIP peers on UDP and TCP.
// Timers that matter run on a ManualClock; everything else waits on conditions, never on sleeps.

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import net from "node:net";
import { describe, test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-node";
import { silentLogger } from "../../../bootstrap/log.js";
import { parseMessage, serializeMessage } from "../../../protocol/sip/codec.js";
import { StreamFramer } from "../../../protocol/sip/framing.js";
import { makeResponse } from "../../../protocol/sip/headers.js";
import type { Peer, SipMessage, SipRequest, SipResponse } from "../../../protocol/sip/message.js";
import { ManualClock } from "../../../protocol/sip/transaction.js";
import {
  type EndpointOptions,
  type IncomingRequest,
  SipEndpoint,
} from "../../../transport/sip-endpoint.js";
import { disableTracing, enableTracing } from "../../../transport/tracing.js";

const host = "127.0.0.1";

/** A FIFO whose `next()` waits for the next item. */
class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((item: T) => void)[] = [];
  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }
  next(): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  get size(): number {
    return this.#items.length;
  }
}

/** Resolves once `condition` holds, checking after each turn of the event loop. */
async function until(condition: () => boolean, what = "condition"): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

class UdpPeer {
  readonly inbox = new Inbox<{ message: SipMessage; from: number }>();
  private constructor(readonly socket: dgram.Socket) {
    socket.on("message", (data, rinfo) =>
      this.inbox.push({ message: parseMessage(data), from: rinfo.port }),
    );
  }
  static async open(): Promise<UdpPeer> {
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    return new UdpPeer(socket);
  }
  get port(): number {
    return this.socket.address().port;
  }
  send(data: string | Buffer, port: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(data, port, host, (error) => (error ? reject(error) : resolve())),
    );
  }
  async next(): Promise<SipMessage> {
    return (await this.inbox.next()).message;
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

class TcpPeer {
  readonly inbox = new Inbox<SipMessage>();
  readonly framer = new StreamFramer({ maxHeaderBytes: 65536, maxBodyBytes: 1 << 20 });
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const framed of this.framer.push(chunk)) {
        if (framed.kind === "message") this.inbox.push(parseMessage(framed.data));
      }
    });
    socket.on("close", () => {
      this.closed = true;
    });
    socket.on("error", () => {});
  }
  static async connect(port: number): Promise<TcpPeer> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    return new TcpPeer(socket);
  }
  get port(): number {
    return this.socket.localPort ?? 0;
  }
  send(data: string | Buffer): void {
    this.socket.write(data);
  }
  next(): Promise<SipMessage> {
    return this.inbox.next();
  }
  close(): void {
    this.socket.destroy();
  }
}

interface RawOptions {
  branch?: string;
  transport?: "UDP" | "TCP";
  viaPort: number;
  rport?: boolean;
  body?: string;
  callId?: string;
  contentLength?: number;
  cseqMethod?: string;
  /** The Request-URI (default: the presentity's). */
  uri?: string;
}

function raw(method: string, options: RawOptions): string {
  const body = options.body ?? "";
  return [
    `${method} ${options.uri ?? `sip:presentity@${host}`} SIP/2.0`,
    `Via: SIP/2.0/${options.transport ?? "UDP"} ${host}:${options.viaPort};branch=${options.branch ?? "z9hG4bKtest1"}${options.rport ? ";rport" : ""}`,
    "Max-Forwards: 70",
    "From: <sip:watcher@example.com>;tag=w1",
    "To: <sip:presentity@example.com>",
    `Call-ID: ${options.callId ?? "call-1"}`,
    `CSeq: 1 ${options.cseqMethod ?? method}`,
    "Event: presence",
    `Content-Length: ${options.contentLength ?? Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
}

function asResponse(message: SipMessage): SipResponse {
  assert.equal(message.kind, "response");
  return message as SipResponse;
}

function asRequest(message: SipMessage): SipRequest {
  assert.equal(message.kind, "request");
  return message as SipRequest;
}

function notify(uri: string, body = Buffer.alloc(0)): SipRequest {
  return {
    kind: "request",
    method: "NOTIFY",
    uri,
    version: "2.0",
    headers: {
      via: [],
      to: { uri: "sip:watcher@example.com", params: { tag: "w1" } },
      from: { uri: "sip:presentity@example.com", params: { tag: "p1" } },
      "call-id": "notify-1",
      cseq: { seq: 1, method: "NOTIFY" },
      event: "presence",
      "subscription-state": "active;expires=60",
    },
    body,
  };
}

/** A TU that answers 200 to everything and records what it saw. */
function answering(status = 200): {
  seen: IncomingRequest[];
  handler: (incoming: IncomingRequest) => void;
} {
  const seen: IncomingRequest[] = [];
  return {
    seen,
    handler: (incoming) => {
      seen.push(incoming);
      if (incoming.request.method !== "ACK")
        incoming.respond(makeResponse(incoming.request, status));
    },
  };
}

async function endpoint(
  handler: (incoming: IncomingRequest) => void,
  extra: Partial<EndpointOptions> = {},
): Promise<SipEndpoint> {
  return SipEndpoint.listen(
    { host, port: 0, maxMessageBytes: 200_000, log: silentLogger, ...extra },
    handler,
  );
}

describe("sip endpoint over UDP", () => {
  test("sip endpoint - a burst of 40 × 25 KB datagrams all arrive with the 4 MiB receive buffer", async (t) => {
    const bufferBytes = 4 * 1024 * 1024;
    const rmemMax = Number(readFileSync("/proc/sys/net/core/rmem_max", "utf8"));
    if (rmemMax < bufferBytes) {
      t.skip(`net.core.rmem_max is ${rmemMax}: the kernel cannot grant the buffer`);
      return;
    }
    let taken = 0;
    const ep = await endpoint(
      (incoming) => {
        taken += 1;
        incoming.respond(makeResponse(incoming.request, 200));
      },
      { udpReceiveBufferBytes: bufferBytes },
    );
    const socket = dgram.createSocket("udp4");
    try {
      // Linux reports twice the size it grants.
      assert.ok(ep.udpReceiveBufferBytes >= bufferBytes, `SO_RCVBUF ${ep.udpReceiveBufferBytes}`);
      const body = "x".repeat(25 * 1024);
      // Sent in one turn of the event loop: the endpoint (same process) reads none until all are queued,
      // which overflows the kernel's default 208 KiB buffer after about six of them.
      const sent = Array.from(
        { length: 40 },
        (_, i) =>
          new Promise<void>((resolve, reject) =>
            socket.send(
              raw("OPTIONS", {
                viaPort: 9,
                callId: `burst-${i}`,
                branch: `z9hG4bKburst${i}`,
                body,
              }),
              ep.port,
              host,
              (error) => (error ? reject(error) : resolve()),
            ),
          ),
      );
      await Promise.all(sent);
      const deadline = Date.now() + 5_000;
      while (taken < 40 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      assert.equal(taken, 40);
    } finally {
      socket.close();
      await ep.close();
    }
  });

  test("sip endpoint - UDP request gets its response at the source port, Via marked received/rport", async () => {
    const tu = answering();
    const ep = await endpoint(tu.handler);
    const peer = await UdpPeer.open();
    try {
      await peer.send(raw("OPTIONS", { viaPort: peer.port, rport: true }), ep.port);
      const { message, from } = await peer.inbox.next();
      const response = asResponse(message);
      assert.equal(from, ep.port);
      assert.equal(response.status, 200);
      assert.equal(response.headers.via[0]?.params.rport, String(peer.port));
      assert.equal(response.headers.via[0]?.params.received, host);
      assert.deepEqual(tu.seen[0]?.peer, { transport: "udp", address: host, port: peer.port });
      assert.equal(ep.stats().udpIn, 1);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - the UDP response goes to the source port even when Via names another", async () => {
    const ep = await endpoint(answering().handler);
    const peer = await UdpPeer.open();
    try {
      await peer.send(raw("OPTIONS", { viaPort: 9 }), ep.port);
      assert.equal(asResponse(await peer.next()).status, 200);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - a retransmitted UDP request is absorbed and its response re-sent", async () => {
    const tu = answering(202);
    const ep = await endpoint(tu.handler);
    const peer = await UdpPeer.open();
    try {
      const request = raw("SUBSCRIBE", { viaPort: peer.port, branch: "z9hG4bKretrans" });
      await peer.send(request, ep.port);
      assert.equal(asResponse(await peer.next()).status, 202);
      await peer.send(request, ep.port);
      assert.equal(asResponse(await peer.next()).status, 202);
      assert.equal(tu.seen.length, 1);
      assert.equal(ep.stats().serverTransactions, 1);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - a NOTIFY-like request reaches a UDP listener on 127.0.0.1 with our Via", async () => {
    const ep = await endpoint(answering().handler);
    const peer = await UdpPeer.open();
    try {
      const provisional: number[] = [];
      const pending = ep.request(
        notify(`sip:watcher@${host}:${peer.port}`),
        { transport: "udp", address: host, port: peer.port },
        (r) => provisional.push(r.status),
      );
      const { message, from } = await peer.inbox.next();
      const request = asRequest(message);
      assert.equal(from, ep.port);
      const via = request.headers.via[0];
      assert.ok(via);
      assert.equal(request.headers.via.length, 1);
      assert.equal(via.protocol, "UDP");
      assert.equal(via.host, host);
      assert.equal(via.port, ep.port);
      assert.match(String(via.params.branch), /^z9hG4bK.{8,}/);
      assert.ok("rport" in via.params);
      await peer.send(serializeMessage(makeResponse(request, 100)), ep.port);
      await peer.send(serializeMessage(makeResponse(request, 200)), ep.port);
      const response = await pending;
      assert.equal(response.status, 200);
      assert.deepEqual(provisional, [100]);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - a request to another endpoint on the same host is sent, not answered locally", async () => {
    const tu = answering();
    const a = await endpoint(() => {});
    const b = await endpoint(tu.handler);
    try {
      const response = await a.request(notify(`sip:watcher@${host}:${b.port}`), {
        transport: "udp",
        address: host,
        port: b.port,
      });
      assert.equal(response.status, 200);
      assert.equal(tu.seen.length, 1);
      const self = await a.request(notify(`sip:anyone@${host}:${a.port}`), {
        transport: "udp",
        address: host,
        port: b.port,
      });
      assert.equal(self.status, 200);
      assert.equal(tu.seen.length, 2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("sip endpoint - a 50 KB NOTIFY fits one datagram; over 65,000 bytes it goes over TCP", async () => {
    const tu = answering();
    const a = await endpoint(() => {});
    const b = await endpoint(tu.handler);
    try {
      const target: Peer = { transport: "udp", address: host, port: b.port };
      const small = await a.request(notify("sip:w@x", Buffer.alloc(50_000, 0x61)), target);
      assert.equal(small.status, 200);
      assert.equal(tu.seen[0]?.peer.transport, "udp");

      const large = await a.request(notify("sip:w@x", Buffer.alloc(70_000, 0x61)), target);
      assert.equal(large.status, 200);
      const incoming = tu.seen[1];
      assert.equal(incoming?.peer.transport, "tcp");
      assert.equal(incoming?.request.headers.via[0]?.protocol, "TCP");
      assert.equal(incoming?.request.body.length, 70_000);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("sip endpoint - an oversized UDP request whose TCP fallback is refused ends with 503", async () => {
    const ep = await endpoint(() => {});
    const udpOnly = await UdpPeer.open();
    try {
      const response = await ep.request(notify("sip:w@x", Buffer.alloc(70_000, 0x61)), {
        transport: "udp",
        address: host,
        port: udpOnly.port,
      });
      assert.equal(response.status, 503);
      assert.equal(udpOnly.inbox.size, 0);
    } finally {
      await udpOnly.close();
      await ep.close();
    }
  });

  test("sip endpoint - a malformed datagram gets 400 with the parse error as reason; garbage is dropped", async () => {
    const tu = answering();
    const ep = await endpoint(tu.handler);
    const peer = await UdpPeer.open();
    try {
      await peer.send(raw("OPTIONS", { viaPort: peer.port, cseqMethod: "INFO" }), ep.port);
      const bad = asResponse(await peer.next());
      assert.equal(bad.status, 400);
      assert.equal(bad.reason, "CSeq method does not match Request-Line");
      assert.ok(bad.headers.to.params.tag);

      await peer.send("\x00\x01 definitely not SIP", ep.port);
      await peer.send(raw("OPTIONS", { viaPort: peer.port, branch: "z9hG4bKafter" }), ep.port);
      assert.equal(asResponse(await peer.next()).status, 200);
      assert.equal(ep.stats().badRequests, 2);
      assert.equal(tu.seen.length, 1);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - a body over maxMessageBytes is answered 413 on UDP", async () => {
    const tu = answering();
    const ep = await endpoint(tu.handler, { maxMessageBytes: 1000 });
    const peer = await UdpPeer.open();
    try {
      await peer.send(raw("PUBLISH", { viaPort: peer.port, body: "x".repeat(2000) }), ep.port);
      assert.equal(asResponse(await peer.next()).status, 413);
      assert.equal(tu.seen.length, 0);
      assert.equal(ep.stats().tooLarge, 1);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - responses matching no client transaction are dropped and counted", async () => {
    const ep = await endpoint(() => {});
    const peer = await UdpPeer.open();
    try {
      const stray = makeResponse(
        asRequest(parseMessage(Buffer.from(raw("NOTIFY", { viaPort: ep.port })))),
        200,
      );
      await peer.send(serializeMessage(stray), ep.port);
      await until(() => ep.stats().strayResponses === 1, "the stray response");
      assert.equal(ep.stats().clientTransactions, 0);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - ACK without a transaction goes to the TU; CANCEL without one gets 481", async () => {
    const tu = answering();
    const ep = await endpoint(tu.handler);
    const peer = await UdpPeer.open();
    try {
      await peer.send(raw("ACK", { viaPort: peer.port, branch: "z9hG4bKack" }), ep.port);
      await until(() => tu.seen.length === 1, "the ACK");
      assert.equal(tu.seen[0]?.request.method, "ACK");
      await peer.send(raw("CANCEL", { viaPort: peer.port, branch: "z9hG4bKnone" }), ep.port);
      assert.equal(asResponse(await peer.next()).status, 481);
      assert.equal(tu.seen.length, 1);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - CANCEL of a pending INVITE gets 200 and the INVITE 487", async () => {
    const invites: IncomingRequest[] = [];
    const ep = await endpoint((incoming) => {
      invites.push(incoming);
      incoming.respond(makeResponse(incoming.request, 180, undefined, {}));
    });
    const peer = await UdpPeer.open();
    try {
      await peer.send(raw("INVITE", { viaPort: peer.port, branch: "z9hG4bKinv" }), ep.port);
      assert.equal(asResponse(await peer.next()).status, 180);
      await peer.send(
        raw("CANCEL", { viaPort: peer.port, branch: "z9hG4bKinv", callId: "call-1" }),
        ep.port,
      );
      const statuses = [asResponse(await peer.next()), asResponse(await peer.next())]
        .map((r) => `${r.status} ${r.headers.cseq.method}`)
        .sort();
      assert.deepEqual(statuses, ["200 CANCEL", "487 INVITE"]);
      const late = invites[0];
      assert.ok(late);
      late.respond(makeResponse(late.request, 200));
      await peer.send(raw("ACK", { viaPort: peer.port, branch: "z9hG4bKinv" }), ep.port);
      await until(() => ep.stats().udpIn === 3, "the ACK");
      assert.equal(invites.length, 1);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - a throwing TU gets a 500 sent for it and service goes on", async () => {
    let calls = 0;
    const ep = await endpoint((incoming) => {
      calls++;
      if (calls === 1) throw new Error("handler bug");
      incoming.respond(makeResponse(incoming.request, 200));
    });
    const peer = await UdpPeer.open();
    try {
      await peer.send(raw("OPTIONS", { viaPort: peer.port, branch: "z9hG4bKt1" }), ep.port);
      assert.equal(asResponse(await peer.next()).status, 500);
      await peer.send(raw("OPTIONS", { viaPort: peer.port, branch: "z9hG4bKt2" }), ep.port);
      assert.equal(asResponse(await peer.next()).status, 200);
    } finally {
      await peer.close();
      await ep.close();
    }
  });
});

describe("sip endpoint over TCP", () => {
  test("sip endpoint - TCP request gets its response on the same connection", async () => {
    const tu = answering();
    const ep = await endpoint(tu.handler);
    const peer = await TcpPeer.connect(ep.port);
    try {
      peer.send(raw("OPTIONS", { viaPort: peer.port, transport: "TCP" }));
      assert.equal(asResponse(await peer.next()).status, 200);
      const from = tu.seen[0]?.peer;
      assert.equal(from?.transport, "tcp");
      assert.equal(from?.port, peer.port);
      assert.ok(from?.connectionId);
      assert.equal(ep.stats().tcpIn, 1);
      assert.equal(ep.stats().openConnections, 1);
    } finally {
      peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - a NOTIFY to a TCP client goes down the client's own connection", async () => {
    const tu = answering(202);
    const ep = await endpoint(tu.handler);
    const peer = await TcpPeer.connect(ep.port);
    try {
      peer.send(raw("SUBSCRIBE", { viaPort: 5060, transport: "TCP" }));
      assert.equal(asResponse(await peer.next()).status, 202);
      const subscriber = tu.seen[0]?.peer;
      assert.ok(subscriber);

      const first = ep.request(notify("sip:watcher@192.0.2.55:5060"), subscriber);
      const request = asRequest(await peer.next());
      assert.equal(request.headers.via[0]?.protocol, "TCP");
      peer.send(serializeMessage(makeResponse(request, 200)));
      assert.equal((await first).status, 200);

      const { connectionId: _, ...byAddress } = subscriber;
      const second = ep.request(notify("sip:watcher@192.0.2.55:5060"), byAddress);
      const again = asRequest(await peer.next());
      peer.send(serializeMessage(makeResponse(again, 200)));
      assert.equal((await second).status, 200);
      assert.equal(ep.stats().openConnections, 1);
    } finally {
      peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - a body over maxMessageBytes is answered 413 on TCP and the stream goes on", async () => {
    const tu = answering();
    const ep = await endpoint(tu.handler, { maxMessageBytes: 1000 });
    const peer = await TcpPeer.connect(ep.port);
    try {
      peer.send(raw("PUBLISH", { viaPort: peer.port, transport: "TCP", body: "x".repeat(5000) }));
      assert.equal(asResponse(await peer.next()).status, 413);
      peer.send(raw("OPTIONS", { viaPort: peer.port, transport: "TCP", branch: "z9hG4bKnext" }));
      assert.equal(asResponse(await peer.next()).status, 200);
      assert.equal(tu.seen.length, 1);
      assert.equal(ep.stats().tooLarge, 1);
    } finally {
      peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - garbage on TCP closes only that connection", async () => {
    const ep = await endpoint(answering().handler);
    const bad = await TcpPeer.connect(ep.port);
    const good = await TcpPeer.connect(ep.port);
    try {
      bad.send("OPTIONS sip:x SIP/2.0\r\nContent-Length: lots\r\n\r\n");
      await until(() => bad.closed, "the garbage connection to close");
      good.send(raw("OPTIONS", { viaPort: good.port, transport: "TCP" }));
      assert.equal(asResponse(await good.next()).status, 200);
      assert.equal(good.closed, false);
      assert.equal(ep.stats().openConnections, 1);
      assert.equal(ep.stats().badRequests, 1);
    } finally {
      bad.close();
      good.close();
      await ep.close();
    }
  });

  test("sip endpoint - a connection with no transaction closes after the idle time", async () => {
    const clock = new ManualClock();
    const ep = await endpoint(answering().handler, { clock, idleConnectionMs: 60_000 });
    const peer = await TcpPeer.connect(ep.port);
    try {
      peer.send(raw("OPTIONS", { viaPort: peer.port, transport: "TCP" }));
      assert.equal(asResponse(await peer.next()).status, 200);
      clock.advance(59_999);
      assert.equal(ep.stats().openConnections, 1);
      clock.advance(1);
      await until(() => peer.closed, "the idle connection to close");
      assert.equal(ep.stats().openConnections, 0);
    } finally {
      peer.close();
      await ep.close();
    }
  });
});

describe("sip endpoint client transactions", () => {
  test("sip endpoint - Timer F after a 1xx resolves 408 (fake clock)", async () => {
    const clock = new ManualClock();
    const ep = await endpoint(() => {}, { clock });
    const peer = await UdpPeer.open();
    try {
      let provisional = 0;
      const pending = ep.request(
        notify("sip:w@x"),
        { transport: "udp", address: host, port: peer.port },
        () => provisional++,
      );
      const request = asRequest(await peer.next());
      await peer.send(serializeMessage(makeResponse(request, 100)), ep.port);
      await until(() => provisional === 1, "the 100");
      clock.advance(32_000);
      assert.equal((await pending).status, 408);
      assert.equal(ep.stats().clientTransactions, 0);
    } finally {
      await peer.close();
      await ep.close();
    }
  });

  test("sip endpoint - INVITE between endpoints: 2xx resolves, the TU's ACK arrives stateless", async () => {
    const seen: IncomingRequest[] = [];
    const a = await endpoint(() => {});
    const b = await endpoint((incoming) => {
      seen.push(incoming);
      if (incoming.request.method === "INVITE") {
        incoming.respond(makeResponse(incoming.request, 200));
      }
    });
    try {
      const target: Peer = { transport: "tcp", address: host, port: b.port };
      const invite = { ...notify(`sip:b@${host}:${b.port}`), method: "INVITE" };
      invite.headers = { ...invite.headers, cseq: { seq: 1, method: "INVITE" } };
      const ok = await a.request(invite, target);
      assert.equal(ok.status, 200);
      const ack: SipRequest = {
        ...invite,
        method: "ACK",
        headers: { ...invite.headers, via: [], cseq: { seq: 1, method: "ACK" } },
      };
      a.sendStateless(ack, target);
      await until(() => seen.length === 2, "the ACK");
      assert.equal(seen[1]?.request.method, "ACK");
      assert.notEqual(
        seen[1]?.request.headers.via[0]?.params.branch,
        seen[0]?.request.headers.via[0]?.params.branch,
      );
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("sip endpoint - CANCEL keeps the INVITE's branch; the 487 is ACKed by the transaction", async () => {
    const invites: IncomingRequest[] = [];
    const a = await endpoint(() => {});
    const b = await endpoint((incoming) => {
      invites.push(incoming);
      incoming.respond(makeResponse(incoming.request, 180));
    });
    try {
      const target: Peer = { transport: "udp", address: host, port: b.port };
      const invite = { ...notify(`sip:b@${host}:${b.port}`), method: "INVITE" };
      invite.headers = { ...invite.headers, cseq: { seq: 1, method: "INVITE" } };
      let ringing: SipResponse | undefined;
      const pending = a.request(invite, target, (r) => {
        ringing = r;
      });
      await until(() => ringing !== undefined, "the 180");
      const branch = ringing?.headers.via[0]?.params.branch;
      const cancel: SipRequest = {
        ...invite,
        method: "CANCEL",
        headers: {
          ...invite.headers,
          via: ringing?.headers.via ?? [],
          cseq: { seq: 1, method: "CANCEL" },
        },
      };
      const cancelled = await a.request(cancel, target);
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.headers.via[0]?.params.branch, branch);
      assert.equal((await pending).status, 487);
      await until(() => b.stats().udpIn === 3, "the ACK of the 487");
      assert.equal(invites.length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("sip endpoint - a refused TCP target resolves 503", async () => {
    const ep = await endpoint(() => {});
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, host, resolve));
    const address = closed.address();
    const port = typeof address === "object" && address ? address.port : 0;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      const response = await ep.request(notify("sip:w@x"), {
        transport: "tcp",
        address: host,
        port,
      });
      assert.equal(response.status, 503);
    } finally {
      await ep.close();
    }
  });

  test("sip endpoint - close() resolves pending requests 503 and stops answering", async () => {
    const ep = await endpoint(() => {});
    const peer = await UdpPeer.open();
    const tcp = await TcpPeer.connect(ep.port);
    try {
      const pending = ep.request(notify("sip:w@x"), {
        transport: "udp",
        address: host,
        port: peer.port,
      });
      await peer.next();
      await until(() => ep.stats().openConnections === 1, "the TCP connection");
      await ep.close();
      assert.equal((await pending).status, 503);
      await until(() => tcp.closed, "the TCP connection to close");
      assert.equal(ep.stats().openConnections, 0);
      const after = await ep.request(notify("sip:w@x"), {
        transport: "udp",
        address: host,
        port: peer.port,
      });
      assert.equal(after.status, 503);
    } finally {
      tcp.close();
      await peer.close();
    }
  });
});

/** Runs `work` with this process tracing into an in-memory exporter, then turns tracing off. */
async function traced(work: (exporter: InMemorySpanExporter) => Promise<void>): Promise<void> {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  enableTracing(provider.getTracer("test"));
  try {
    await work(exporter);
  } finally {
    disableTracing();
    await provider.shutdown();
  }
}

describe("sip endpoint spans", () => {
  test("sip endpoint - transactions completed over UDP let go of their spans while they wait out Timers J and K", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    await traced(async (exporter) => {
      // A handler that keeps nothing: what holds a span after its response is the endpoint's.
      const server = await endpoint((incoming) => {
        incoming.respond(makeResponse(incoming.request, 200));
      });
      const client = await endpoint(() => {});
      try {
        const target = { transport: "udp", address: host, port: server.port } as const;
        const response = await client.request(notify(`sip:watcher@${host}:${server.port}`), target);
        assert.equal(response.status, 200);
        const ended = exporter.getFinishedSpans().map((span) => new WeakRef(span));
        assert.equal(ended.length, 2, "the client's and the server's NOTIFY spans");
        assert.equal(client.stats().clientTransactions, 1, "Timer K keeps the client transaction");
        assert.equal(server.stats().serverTransactions, 1, "Timer J keeps the server transaction");
        exporter.reset();
        const alive = () => ended.filter((span) => span.deref() !== undefined).length;
        // A WeakRef's target stays until its job is over: collect again on later turns of the loop.
        for (let turn = 0; turn < 100 && alive() > 0; turn++) {
          await nextTurn();
          gc();
        }
        assert.equal(alive(), 0);
      } finally {
        await client.close();
        await server.close();
      }
    });
  });

  test("sip endpoint - a SUBSCRIBE's span names the presentity of its To, in a dialog too (Request-URI: our Contact)", async () => {
    await traced(async (exporter) => {
      const ep = await endpoint(answering().handler);
      const peer = await UdpPeer.open();
      try {
        const contact = `sip:node@${host}:${ep.port};transport=udp`;
        await peer.send(raw("SUBSCRIBE", { viaPort: peer.port, uri: contact }), ep.port);
        assert.equal(asResponse((await peer.inbox.next()).message).status, 200);
        const span = exporter.getFinishedSpans().find((s) => s.name === "SIP SUBSCRIBE");
        assert.equal(span?.attributes["sip.request_uri"], contact);
        assert.equal(span?.attributes["presence.presentity"], "sip:presentity@example.com");
      } finally {
        await peer.close();
        await ep.close();
      }
    });
  });
});
