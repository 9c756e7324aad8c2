// test/unit/protocol/sip: RFC 3261 §18.3 stream framing — any chunking, keep-alives, oversized bodies
// skipped without losing the stream, and unframeable input.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMessage } from "../../../../protocol/sip/codec.js";
import { type Framed, StreamFramer } from "../../../../protocol/sip/framing.js";

const LIMITS = { maxHeaderBytes: 4096, maxBodyBytes: 1024 };

function message(callId: string, body = "", extra: string[] = []): Buffer {
  const bytes = Buffer.from(body, "utf8");
  const head = [
    "NOTIFY sip:bob@192.0.2.10;transport=tcp SIP/2.0",
    "Via: SIP/2.0/TCP 198.51.100.1;branch=z9hG4bK1",
    "From: <sip:alice@example.com>;tag=1",
    "To: <sip:bob@example.com>;tag=2",
    `Call-ID: ${callId}`,
    "CSeq: 1 NOTIFY",
    ...extra,
    `Content-Length: ${bytes.length}`,
    "",
    "",
  ].join("\r\n");
  return Buffer.concat([Buffer.from(head, "latin1"), bytes]);
}

function feed(framer: StreamFramer, chunks: Buffer[]): Framed[] {
  return chunks.flatMap((chunk) => framer.push(chunk));
}

function bytesOneByOne(data: Buffer): Buffer[] {
  return [...data].map((byte) => Buffer.from([byte]));
}

function messages(framed: Framed[]): Buffer[] {
  return framed.map((item) => {
    assert.equal(item.kind, "message", JSON.stringify(item));
    return (item as { data: Buffer }).data;
  });
}

/** Small deterministic PRNG so a failing random chunking can be replayed from its printed seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("stream framing", () => {
  it("framing - a whole message in one chunk comes out as is", () => {
    const data = message("one", "hello");
    assert.deepEqual(messages(new StreamFramer(LIMITS).push(data)), [data]);
  });

  it("framing - byte-at-a-time feeding yields the same messages, UTF-8 bodies intact", () => {
    const stream = [
      message("a", "<note>안녕하세요</note>"),
      message("b"),
      message("c", "ünïcödé ✓"),
    ];
    const framed = feed(new StreamFramer(LIMITS), bytesOneByOne(Buffer.concat(stream)));
    assert.deepEqual(messages(framed), stream);
    assert.equal(
      parseMessage(messages(framed)[0] as Buffer).body.toString("utf8"),
      "<note>안녕하세요</note>",
    );
  });

  it("framing - many messages in one chunk all come out, in order", () => {
    const stream = Array.from({ length: 50 }, (_, i) => message(`m${i}`, "x".repeat(i)));
    assert.deepEqual(messages(new StreamFramer(LIMITS).push(Buffer.concat(stream))), stream);
  });

  it("framing - random chunking never changes the result", () => {
    const seed = Date.now() >>> 0;
    const random = mulberry32(seed);
    const stream = Array.from({ length: 20 }, (_, i) => message(`r${i}`, "가".repeat(i * 3)));
    const all = Buffer.concat(stream);
    for (let round = 0; round < 20; round++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < all.length; ) {
        const size = 1 + Math.floor(random() * 300);
        chunks.push(all.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(messages(feed(new StreamFramer(LIMITS), chunks)), stream, `seed ${seed}`);
    }
  });

  it("framing - a message split right inside CRLFCRLF is found", () => {
    const data = message("split", "body");
    const cut = data.indexOf("\r\n\r\n") + 2;
    const framer = new StreamFramer(LIMITS);
    assert.deepEqual(framer.push(data.subarray(0, cut)), []);
    assert.deepEqual(messages(framer.push(data.subarray(cut))), [data]);
  });

  it("framing - CRLF keep-alives before, between and after messages are skipped", () => {
    const a = message("ka-a");
    const b = message("ka-b", "b");
    const stream = Buffer.concat([
      Buffer.from("\r\n\r\n"),
      a,
      Buffer.from("\r\n"),
      Buffer.from("\r\n\r\n"),
      b,
      Buffer.from("\r\n\r\n"),
    ]);
    assert.deepEqual(messages(new StreamFramer(LIMITS).push(stream)), [a, b]);
    assert.deepEqual(messages(feed(new StreamFramer(LIMITS), bytesOneByOne(stream))), [a, b]);
    const framer = new StreamFramer(LIMITS);
    assert.deepEqual(framer.push(Buffer.from("\r\n\r\n")), []);
    assert.deepEqual(framer.push(Buffer.from("\r")), []);
    assert.deepEqual(messages(framer.push(Buffer.concat([Buffer.from("\n"), a]))), [a]);
  });

  it("framing - compact l: is a Content-Length", () => {
    const data = Buffer.from(
      "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\nf: <sip:c@d>;tag=1\r\nt: <sip:a@b>\r\n" +
        "i: x\r\nCSeq: 1 OPTIONS\r\nl: 3\r\n\r\nabcNEXT",
      "latin1",
    );
    const framed = new StreamFramer(LIMITS).push(data);
    assert.deepEqual(messages(framed), [data.subarray(0, data.length - 4)]);
  });

  it("framing - a too-large body is reported once with its head, skipped, and the stream goes on", () => {
    const big = message("big", "z".repeat(LIMITS.maxBodyBytes + 1));
    const next = message("next", "fine");
    const headEnd = big.indexOf("\r\n\r\n") + 4;
    const framer = new StreamFramer(LIMITS);
    const framed = framer.push(Buffer.concat([big, next]));
    assert.equal(framed.length, 2);
    assert.deepEqual(framed[0], { kind: "too-large", head: big.subarray(0, headEnd) });
    assert.deepEqual(framed[1], { kind: "message", data: next });
  });

  it("framing - a too-large body arriving in pieces is skipped across pushes", () => {
    const big = message("big", "z".repeat(5000));
    const next = message("next", "fine");
    const all = Buffer.concat([big, next]);
    const framer = new StreamFramer(LIMITS);
    const framed = feed(framer, [
      all.subarray(0, 100),
      ...bytesOneByOne(all.subarray(100, 700)),
      all.subarray(700, 3000),
      all.subarray(3000),
    ]);
    assert.deepEqual(
      framed.map((item) => item.kind),
      ["too-large", "message"],
    );
    assert.deepEqual(framed[1], { kind: "message", data: next });
    const head = (framed[0] as { head: Buffer }).head;
    assert.match(head.toString("latin1"), /Call-ID: big\r\n[\s\S]*\r\n\r\n$/);
  });

  it("framing - a stream message without Content-Length is garbage, and the framer then stays quiet", () => {
    const data = Buffer.from(
      "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n",
      "latin1",
    );
    const framer = new StreamFramer(LIMITS);
    assert.deepEqual(framer.push(data), [{ kind: "garbage", reason: "Missing Content-Length" }]);
    assert.deepEqual(framer.push(message("after")), []);
  });

  it("framing - malformed or conflicting Content-Length is garbage", () => {
    const bad = message("neg", "", ["Content-Length: -5"])
      .toString("latin1")
      .replace("Content-Length: 0\r\n", "");
    assert.deepEqual(new StreamFramer(LIMITS).push(Buffer.from(bad, "latin1")), [
      { kind: "garbage", reason: "Malformed Content-Length" },
    ]);
    assert.deepEqual(new StreamFramer(LIMITS).push(message("two", "", ["Content-Length: 7"])), [
      { kind: "garbage", reason: "Conflicting Content-Length headers" },
    ]);
  });

  it("framing - a header section beyond maxHeaderBytes is garbage, with or without its terminator", () => {
    const limits = { maxHeaderBytes: 300, maxBodyBytes: 1024 };
    const long = message("long", "", [`X-Filler: ${"f".repeat(400)}`]);
    assert.deepEqual(new StreamFramer(limits).push(long), [
      { kind: "garbage", reason: "Header section too large" },
    ]);
    const endless = Buffer.from(
      `OPTIONS sip:a@b SIP/2.0\r\nX-Filler: ${"f".repeat(400)}`,
      "latin1",
    );
    assert.deepEqual(
      feed(new StreamFramer(limits), [endless.subarray(0, 200), endless.subarray(200)]),
      [{ kind: "garbage", reason: "Header section too large" }],
    );
  });

  it("framing - emitted messages are copies that later pushes cannot overwrite", () => {
    const framer = new StreamFramer(LIMITS);
    const first = message("first", "1111");
    const [framed] = framer.push(Buffer.from(first));
    for (let i = 0; i < 30; i++) framer.push(message(`later${i}`, "2".repeat(100)));
    assert.deepEqual(framed, { kind: "message", data: first });
  });
});
