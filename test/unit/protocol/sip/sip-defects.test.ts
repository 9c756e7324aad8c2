// test/unit/protocol/sip: why the adapter exists — each defect of the published `sip` 0.0.6 package is shown
// still present (calling `sip` directly), next to the test that our codec gets it right.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as sip from "sip";
import { parseMessage, SipParseError, serializeMessage } from "../../../../protocol/sip/codec.js";
import { newBranch } from "../../../../protocol/sip/headers.js";
import type { SipRequest } from "../../../../protocol/sip/message.js";

const KOREAN = "<note>안녕하세요 — 지금 회의 중입니다</note>";

const PUBLISH_HEAD = [
  "PUBLISH sip:alice@example.com SIP/2.0",
  "Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKpub1",
  "From: <sip:alice@example.com>;tag=1234",
  "To: <sip:alice@example.com>",
  "Call-ID: defects-1@192.0.2.20",
  "CSeq: 3 PUBLISH",
  "Event: presence",
  "SIP-If-Match: dx200xyz",
];

function publish(): SipRequest {
  const bytes = Buffer.from([...PUBLISH_HEAD, "Content-Length: 0", "", ""].join("\r\n"), "latin1");
  const message = parseMessage(bytes);
  assert.equal(message.kind, "request");
  return message as SipRequest;
}

function headerNames(text: string): string[] {
  return text
    .split("\r\n\r\n")[0]
    ?.split("\r\n")
    .slice(1)
    .map((line) => line.slice(0, line.indexOf(":"))) as string[];
}

describe("Via branch randomness", () => {
  it("sip defects - sip.generateBranch is the cookie plus at most 7 decimal digits, and collides", () => {
    const draws = 10_000;
    const seen = new Set<string>();
    for (let i = 0; i < draws; i++) {
      const branch = sip.generateBranch();
      assert.match(branch, /^z9hG4bK\d{1,7}$/);
      seen.add(branch);
    }
    // ~20 bits: 10,000 draws give about 50 expected collisions (none is a 1-in-10^21 event).
    assert.ok(seen.size < draws, `expected collisions, got ${seen.size} distinct of ${draws}`);
  });

  it("sip defects - newBranch carries 96 crypto-random bits and does not collide", () => {
    const draws = 100_000;
    const seen = new Set<string>();
    for (let i = 0; i < draws; i++) {
      const branch = newBranch();
      assert.match(branch, /^z9hG4bK[A-Za-z0-9_-]{16}$/);
      seen.add(branch);
    }
    assert.equal(seen.size, draws);
  });
});

describe("Content-Length of UTF-8 bodies", () => {
  it("sip defects - sip.stringify counts UTF-16 code units, so a UTF-8 body is cut short on the wire", () => {
    const text = sip.stringify({
      method: "NOTIFY",
      uri: "sip:bob@192.0.2.10",
      headers: {
        via: [
          { version: "2.0", protocol: "UDP", host: "192.0.2.1", params: { branch: "z9hG4bK1" } },
        ],
        from: { uri: "sip:alice@example.com", params: { tag: "1" } },
        to: { uri: "sip:bob@example.com", params: { tag: "2" } },
        "call-id": "defects-2",
        cseq: { seq: 1, method: "NOTIFY" },
      },
      content: KOREAN,
    });
    const bytes = Buffer.from(text, "utf8");
    const declared = Number(/\r\nContent-Length: (\d+)\r\n/.exec(text)?.[1]);
    assert.equal(declared, KOREAN.length);
    assert.notEqual(declared, Buffer.byteLength(KOREAN, "utf8"));
    // A receiver honouring Content-Length gets a truncated (and here mid-character) body.
    assert.notEqual(parseMessage(bytes).body.toString("utf8"), KOREAN);
  });

  it("sip defects - serializeMessage counts body bytes, and the body comes back intact", () => {
    const body = Buffer.from(KOREAN, "utf8");
    const bytes = serializeMessage({ ...publish(), body });
    assert.match(
      bytes.toString("latin1"),
      new RegExp(`\\r\\nContent-Length: ${body.length}\\r\\n`),
    );
    assert.equal(parseMessage(bytes).body.toString("utf8"), KOREAN);
  });
});

describe("header name casing", () => {
  it("sip defects - sip.stringify re-cases SIP-ETag, SIP-If-Match and WWW-Authenticate", () => {
    const text = sip.stringify({
      status: 401,
      reason: "Unauthorized",
      headers: {
        "sip-etag": "kwj449x",
        "sip-if-match": "dx200xyz",
        "www-authenticate": 'Digest realm="example.com", nonce="n"',
        "min-expires": "60",
      },
    });
    assert.deepEqual(headerNames(text), [
      "Sip-Etag",
      "Sip-If-Match",
      "Www-Authenticate",
      "Min-Expires",
      "Content-Length",
    ]);
  });

  it("sip defects - a parse/stringify round trip through sip loses the registered spelling", () => {
    const wire = [...PUBLISH_HEAD, "Content-Length: 0", "", ""].join("\r\n");
    const parsed = sip.parse(Buffer.from(wire, "latin1"));
    assert.ok(parsed);
    assert.ok(headerNames(sip.stringify(parsed)).includes("Sip-If-Match"));
  });

  it("sip defects - serializeMessage writes the registered spelling", () => {
    const request = publish();
    request.headers["sip-etag"] = "kwj449x";
    request.headers["www-authenticate"] = 'Digest realm="example.com", nonce="n"';
    assert.deepEqual(headerNames(serializeMessage(request).toString("latin1")), [
      "Via",
      "From",
      "To",
      "Call-ID",
      "CSeq",
      "Event",
      "SIP-If-Match",
      "SIP-ETag",
      "WWW-Authenticate",
      "Content-Length",
    ]);
  });
});

describe("parsing strictness", () => {
  const broken = (via: string, extra: string[] = []) =>
    Buffer.from(
      [
        "NOTIFY sip:bob@192.0.2.10 SIP/2.0",
        via,
        "From: <sip:alice@example.com>;tag=1",
        "To: <sip:bob@example.com>;tag=2",
        "Call-ID: defects-3",
        "CSeq: 1 NOTIFY",
        ...extra,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      "latin1",
    );

  it("sip defects - sip.parse silently drops a malformed Via and maps compact e to a wrong header", () => {
    const parsed = sip.parse(broken("Via: not a via at all", ["e: gzip"]));
    assert.ok(parsed, "sip accepts the message");
    assert.equal(parsed.headers.via, undefined);
    assert.equal(parsed.headers["contact-encoding"], "gzip");
  });

  it("sip defects - parseMessage refuses a malformed Via and maps e to Content-Encoding", () => {
    assert.throws(
      () => parseMessage(broken("Via: not a via at all")),
      (error: unknown) => error instanceof SipParseError && error.reason === "Malformed Via header",
    );
    const message = parseMessage(broken("Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", ["e: gzip"]));
    assert.equal(message.headers["content-encoding"], "gzip");
  });
});
