// test/unit/protocol/sip: the message codec — round trips per method, byte-exact bodies and headers,
// header casing, compact forms, datagram Content-Length rules and the 400-ready SipParseError.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  canonicalHeaderName,
  parseMessage,
  SipParseError,
  serializeMessage,
} from "../../../../protocol/sip/codec.js";
import { makeResponse } from "../../../../protocol/sip/headers.js";
import type { SipMessage, SipRequest, SipResponse } from "../../../../protocol/sip/message.js";

const CRLF = "\r\n";

/** Header lines (latin1) + Content-Length + blank line + body bytes, exactly as on the wire. */
function wire(lines: string[], body: Buffer = Buffer.alloc(0)): Buffer {
  const head = [...lines, `Content-Length: ${body.length}`, "", ""].join(CRLF);
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

/** Raw bytes with no Content-Length added: for datagram edge cases. */
function raw(...lines: string[]): Buffer {
  return Buffer.from(lines.join(CRLF), "latin1");
}

function parseError(data: Buffer): SipParseError {
  try {
    parseMessage(data);
  } catch (error) {
    assert.ok(error instanceof SipParseError, `expected SipParseError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a SipParseError");
}

function asRequest(message: SipMessage): SipRequest {
  assert.equal(message.kind, "request");
  return message as SipRequest;
}

function asResponse(message: SipMessage): SipResponse {
  assert.equal(message.kind, "response");
  return message as SipResponse;
}

const PIDF = Buffer.from(
  [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">',
    '  <tuple id="t1"><status><basic>open</basic></status><note xml:lang="ko">회의 중입니다</note></tuple>',
    "</presence>",
    "",
  ].join("\n"),
  "utf8",
);

const SDP = Buffer.from(
  [
    "v=0",
    "o=- 1 1 IN IP4 192.0.2.10",
    "s=-",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "m=audio 4000 RTP/AVP 0",
    "",
  ].join(CRLF),
  "latin1",
);

const DIALOG = [
  "Max-Forwards: 70",
  "From: <sip:bob@example.com>;tag=a73kszlfl",
  "To: <sip:alice@example.com>;tag=8f7e6d",
  "Call-ID: 3848276298220188511@192.0.2.10",
];

/** Canonically written messages: parse + serialise must give back the very same bytes. */
const ROUND_TRIPS: Record<string, Buffer> = {
  SUBSCRIBE: wire([
    "SUBSCRIBE sip:alice@example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds7;rport",
    "Max-Forwards: 70",
    'From: "Bob, the Builder" <sip:bob@example.com>;tag=a73kszlfl',
    "To: <sip:alice@example.com>",
    "Call-ID: 3848276298220188511@192.0.2.10",
    "CSeq: 1 SUBSCRIBE",
    'Contact: <sip:bob@192.0.2.10:5060>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"',
    "Event: presence",
    "Expires: 3600",
    "Accept: application/pidf+xml, application/rlmi+xml",
    "Allow-Events: presence",
    "Supported: eventlist",
  ]),
  NOTIFY: wire(
    [
      "NOTIFY sip:bob@192.0.2.10:5060 SIP/2.0",
      "Via: SIP/2.0/TCP 198.51.100.1:5060;branch=z9hG4bK776asdhds",
      ...DIALOG,
      "CSeq: 2 NOTIFY",
      "Contact: <sip:presence@198.51.100.1:5060;transport=tcp>",
      "Event: presence;id=7",
      "Subscription-State: active;expires=3599",
      "Content-Type: application/pidf+xml",
    ],
    PIDF,
  ),
  PUBLISH: wire(
    [
      "PUBLISH sip:alice@example.com SIP/2.0",
      "Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKpub1",
      "Max-Forwards: 70",
      "From: <sip:alice@example.com>;tag=1234",
      "To: <sip:alice@example.com>",
      "Call-ID: 81818181@192.0.2.20",
      "CSeq: 3 PUBLISH",
      "Event: presence",
      "Expires: 120",
      "SIP-If-Match: dx200xyz",
      "Content-Type: application/pidf+xml",
    ],
    PIDF,
  ),
  OPTIONS: wire([
    "OPTIONS sip:presence.example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bKopt",
    "Max-Forwards: 70",
    "From: <sip:monitor@example.com>;tag=mon1",
    "To: <sip:presence.example.com>",
    "Call-ID: opt-1@192.0.2.30",
    "CSeq: 1 OPTIONS",
    "Accept: application/sdp",
  ]),
  INVITE: wire(
    [
      "INVITE sip:alice@example.com SIP/2.0",
      "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1",
      "Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKprx1;received=192.0.2.99",
      "Max-Forwards: 69",
      "Record-Route: <sip:proxy.example.com;lr>",
      "From: Bob <sip:bob@example.com>;tag=a73kszlfl",
      "To: <sip:alice@example.com>",
      "Call-ID: inv-1@192.0.2.10",
      "CSeq: 10 INVITE",
      "Contact: <sip:bob@192.0.2.10>",
      "Content-Type: application/sdp",
    ],
    SDP,
  ),
  ACK: wire([
    "ACK sip:alice@192.0.2.40 SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKack1",
    "Route: <sip:proxy.example.com;lr>, <sip:edge.example.com;lr>",
    ...DIALOG,
    "CSeq: 10 ACK",
  ]),
  BYE: wire([
    "BYE sip:alice@192.0.2.40 SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbye1",
    ...DIALOG,
    "CSeq: 11 BYE",
  ]),
  INFO: wire(
    [
      "INFO sip:alice@192.0.2.40 SIP/2.0",
      "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinfo1",
      ...DIALOG,
      "CSeq: 12 INFO",
      "Info-Package: dtmf",
      "Content-Type: application/dtmf-relay",
    ],
    Buffer.from("Signal=5\r\nDuration=160\r\n", "latin1"),
  ),
  "200 to PUBLISH": wire([
    "SIP/2.0 200 OK",
    "Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKpub1",
    "From: <sip:alice@example.com>;tag=1234",
    "To: <sip:alice@example.com>;tag=srv9",
    "Call-ID: 81818181@192.0.2.20",
    "CSeq: 3 PUBLISH",
    "SIP-ETag: kwj449x",
    "Expires: 120",
  ]),
  "202 to SUBSCRIBE": wire([
    "SIP/2.0 202 Accepted",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds7;rport=5060;received=192.0.2.10",
    "From: <sip:bob@example.com>;tag=a73kszlfl",
    "To: <sip:alice@example.com>;tag=8f7e6d",
    "Call-ID: 3848276298220188511@192.0.2.10",
    "CSeq: 1 SUBSCRIBE",
    "Contact: <sip:presence@198.51.100.1:5060>",
    "Expires: 3600",
  ]),
  "423 with Min-Expires": wire([
    "SIP/2.0 423 Interval Too Brief",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx",
    ...DIALOG.slice(1),
    "CSeq: 1 SUBSCRIBE",
    "Min-Expires: 60",
  ]),
  "401 with WWW-Authenticate": wire([
    "SIP/2.0 401 Unauthorized",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx",
    ...DIALOG.slice(1),
    "CSeq: 1 SUBSCRIBE",
    'WWW-Authenticate: Digest realm="example.com", nonce="abc", algorithm=MD5',
  ]),
};

describe("codec round trips", () => {
  for (const [name, bytes] of Object.entries(ROUND_TRIPS)) {
    it(`codec - ${name} parses and serialises back to the same bytes`, () => {
      const message = parseMessage(bytes);
      assert.deepEqual(serializeMessage(message), bytes);
      assert.deepEqual(parseMessage(serializeMessage(message)), message);
    });
  }

  it("codec - request fields are structured", () => {
    const request = asRequest(parseMessage(ROUND_TRIPS.INVITE as Buffer));
    assert.equal(request.method, "INVITE");
    assert.equal(request.uri, "sip:alice@example.com");
    assert.equal(request.version, "2.0");
    assert.deepEqual(request.headers.via, [
      {
        version: "2.0",
        protocol: "UDP",
        host: "192.0.2.10",
        port: 5060,
        params: { branch: "z9hG4bKinv1" },
      },
      {
        version: "2.0",
        protocol: "TCP",
        host: "proxy.example.com",
        params: { branch: "z9hG4bKprx1", received: "192.0.2.99" },
      },
    ]);
    assert.deepEqual(request.headers.from, {
      name: "Bob",
      uri: "sip:bob@example.com",
      params: { tag: "a73kszlfl" },
    });
    assert.deepEqual(request.headers.to, { uri: "sip:alice@example.com", params: {} });
    assert.equal(request.headers["call-id"], "inv-1@192.0.2.10");
    assert.deepEqual(request.headers.cseq, { seq: 10, method: "INVITE" });
    assert.deepEqual(request.headers["record-route"], [
      { uri: "sip:proxy.example.com;lr", params: {} },
    ]);
    assert.equal(request.headers["max-forwards"], "69");
    assert.equal(request.headers["content-type"], "application/sdp");
    assert.equal(request.headers["content-length"], undefined, "the body length is the truth");
    assert.deepEqual(request.body, SDP);
  });

  it("codec - quoted display names and quoted params come back unquoted", () => {
    const request = asRequest(parseMessage(ROUND_TRIPS.SUBSCRIBE as Buffer));
    assert.equal(request.headers.from.name, "Bob, the Builder");
    assert.deepEqual(request.headers.contact?.[0]?.params, {
      "+sip.instance": "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
    });
  });

  it("codec - responses keep status, reason and version", () => {
    const response = asResponse(parseMessage(ROUND_TRIPS["423 with Min-Expires"] as Buffer));
    assert.equal(response.status, 423);
    assert.equal(response.reason, "Interval Too Brief");
    assert.equal(response.version, "2.0");
    assert.equal(response.headers["min-expires"], "60");
  });
});

describe("codec bytes", () => {
  it("codec - a UTF-8 Korean body survives byte-exact and Content-Length counts bytes", () => {
    const body = Buffer.from("<note>안녕하세요, 프레즌스 서버입니다 🙂</note>", "utf8");
    assert.notEqual(
      body.length,
      body.toString("utf8").length,
      "the test needs multi-byte characters",
    );
    const request = asRequest(parseMessage(ROUND_TRIPS.NOTIFY as Buffer));
    const bytes = serializeMessage({ ...request, body });
    const text = bytes.toString("latin1");
    assert.match(text, new RegExp(`\\r\\nContent-Length: ${body.length}\\r\\n\\r\\n`));
    assert.deepEqual(bytes.subarray(bytes.length - body.length), body);
    const back = parseMessage(bytes);
    assert.deepEqual(back.body, body);
    assert.equal(back.body.toString("utf8"), "<note>안녕하세요, 프레즌스 서버입니다 🙂</note>");
  });

  it("codec - header values are latin1 byte strings and round-trip byte-exact", () => {
    const utf8Name = Buffer.from("홍길동", "utf8").toString("latin1");
    const bytes = wire([
      "MESSAGE sip:alice@example.com SIP/2.0",
      "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1",
      `From: "${utf8Name}" <sip:hong@example.com>;tag=1`,
      "To: <sip:alice@example.com>",
      "Call-ID: bytes-1",
      "CSeq: 1 MESSAGE",
      `Subject: ${Buffer.from("회의 — ok", "utf8").toString("latin1")}`,
    ]);
    const message = parseMessage(bytes);
    assert.equal(Buffer.from(message.headers.from.name ?? "", "latin1").toString("utf8"), "홍길동");
    assert.equal(
      Buffer.from(message.headers.subject as string, "latin1").toString("utf8"),
      "회의 — ok",
    );
    assert.deepEqual(serializeMessage(message), bytes);
  });

  it("codec - the body is a copy, not a view of the datagram", () => {
    const bytes = ROUND_TRIPS.NOTIFY as Buffer;
    const datagram = Buffer.from(bytes);
    const message = parseMessage(datagram);
    datagram.fill(0);
    assert.deepEqual(message.body, PIDF);
  });

  it("codec - binary bodies with NUL and high octets are untouched", () => {
    const body = Buffer.from([0, 1, 2, 0x80, 0xff, 0x0d, 0x0a, 0x0d, 0x0a, 0x7f]);
    const request = asRequest(parseMessage(ROUND_TRIPS.INFO as Buffer));
    const back = parseMessage(serializeMessage({ ...request, body }));
    assert.deepEqual(back.body, body);
  });
});

describe("codec header names", () => {
  it("codec - canonicalHeaderName spells registered names exactly", () => {
    const table: Array<[string, string]> = [
      ["sip-etag", "SIP-ETag"],
      ["sip-if-match", "SIP-If-Match"],
      ["call-id", "Call-ID"],
      ["cseq", "CSeq"],
      ["www-authenticate", "WWW-Authenticate"],
      ["min-expires", "Min-Expires"],
      ["allow-events", "Allow-Events"],
      ["subscription-state", "Subscription-State"],
      ["max-forwards", "Max-Forwards"],
      ["record-route", "Record-Route"],
      ["content-type", "Content-Type"],
      ["content-length", "Content-Length"],
      ["mime-version", "MIME-Version"],
      ["rseq", "RSeq"],
      ["rack", "RAck"],
      ["via", "Via"],
      ["x-presence-node", "X-Presence-Node"],
      ["newfangledheader", "Newfangledheader"],
    ];
    for (const [lower, canonical] of table)
      assert.equal(canonicalHeaderName(lower), canonical, lower);
  });

  it("codec - serialisation writes canonical names whatever the stored key", () => {
    const request = asRequest(parseMessage(ROUND_TRIPS.PUBLISH as Buffer));
    const response = makeResponse(request, 200, undefined, {
      headers: {
        "sip-etag": "e1",
        "www-authenticate": 'Digest realm="x"',
        "min-expires": "60",
        "allow-events": "presence",
        "subscription-state": "active",
        "max-forwards": "70",
        "record-route": [{ uri: "sip:p.example.com;lr", params: {} }],
        "SIP-If-Match": "e0",
      },
      contentType: "application/pidf+xml",
    });
    const names = serializeMessage(response)
      .toString("latin1")
      .split(CRLF)
      .slice(1)
      .filter((line) => line.includes(":"))
      .map((line) => line.slice(0, line.indexOf(":")));
    assert.deepEqual(names, [
      "Via",
      "From",
      "To",
      "Call-ID",
      "CSeq",
      "SIP-ETag",
      "WWW-Authenticate",
      "Min-Expires",
      "Allow-Events",
      "Subscription-State",
      "Max-Forwards",
      "Record-Route",
      "SIP-If-Match",
      "Content-Type",
      "Content-Length",
    ]);
  });

  it("codec - header names are case-insensitive and compact forms expand to long names", () => {
    const message = parseMessage(
      raw(
        "NOTIFY sip:bob@192.0.2.10 SIP/2.0",
        "v: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK1",
        "f: <sip:alice@example.com>;tag=1",
        "t: <sip:bob@example.com>;tag=2",
        "i: compact-1",
        "cSeQ: 4 NOTIFY",
        "m: <sip:presence@198.51.100.1>",
        "o: presence",
        "u: presence, dialog",
        "k: eventlist",
        "s: hello",
        "x: 1800",
        "c: application/pidf+xml",
        "e: gzip",
        "SIP-ETAG: upper",
        "l: 0",
        "",
        "",
      ),
    );
    assert.equal(message.headers["call-id"], "compact-1");
    assert.deepEqual(message.headers.cseq, { seq: 4, method: "NOTIFY" });
    assert.equal(message.headers.contact?.[0]?.uri, "sip:presence@198.51.100.1");
    assert.equal(message.headers.event, "presence");
    assert.equal(message.headers["allow-events"], "presence, dialog");
    assert.equal(message.headers.supported, "eventlist");
    assert.equal(message.headers.subject, "hello");
    assert.equal(message.headers["session-expires"], "1800");
    assert.equal(message.headers["content-type"], "application/pidf+xml");
    assert.equal(message.headers["content-encoding"], "gzip");
    assert.equal(message.headers["sip-etag"], "upper");
    assert.match(serializeMessage(message).toString("latin1"), /\r\nSIP-ETag: upper\r\n/);
  });
});

describe("codec header values", () => {
  it("codec - repeated headers join with comma; Via, Contact and Route lists accumulate in order", () => {
    const message = parseMessage(
      wire([
        "SUBSCRIBE sip:alice@example.com SIP/2.0",
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/TCP b.example.com;branch=z9hG4bKb",
        "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bKc",
        "From: <sip:bob@example.com>;tag=1",
        "To: <sip:alice@example.com>",
        "Call-ID: lists-1",
        "CSeq: 1 SUBSCRIBE",
        "Route: <sip:r1.example.com;lr>",
        "Route: <sip:r2.example.com;lr>, <sip:r3.example.com;lr>",
        "Supported: eventlist",
        "Supported: gruu",
        "Event: presence",
      ]),
    );
    assert.deepEqual(
      message.headers.via.map((via) => via.host),
      ["a.example.com", "b.example.com", "c.example.com"],
    );
    assert.deepEqual(
      message.headers.route?.map((route) => route.uri),
      ["sip:r1.example.com;lr", "sip:r2.example.com;lr", "sip:r3.example.com;lr"],
    );
    assert.equal(message.headers.supported, "eventlist, gruu");
    const text = serializeMessage(message).toString("latin1");
    assert.match(
      text,
      /^SUBSCRIBE [^\r]+\r\nVia: SIP\/2\.0\/UDP a\.example\.com;branch=z9hG4bKa\r\nVia: SIP\/2\.0\/TCP b\./,
    );
  });

  it("codec - folded lines unfold to a single space and surrounding whitespace is trimmed", () => {
    const message = parseMessage(
      raw(
        "OPTIONS sip:alice@example.com SIP/2.0",
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa",
        "From: <sip:bob@example.com>;tag=1",
        "To:",
        "   <sip:alice@example.com>",
        "Call-ID:   fold-1   ",
        "CSeq: 1",
        "\tOPTIONS",
        "Accept: application/sdp,",
        "        application/pidf+xml",
        "Content-Length: 0",
        "",
        "",
      ),
    );
    assert.equal(message.headers.to.uri, "sip:alice@example.com");
    assert.equal(message.headers["call-id"], "fold-1");
    assert.deepEqual(message.headers.cseq, { seq: 1, method: "OPTIONS" });
    assert.equal(message.headers.accept, "application/sdp, application/pidf+xml");
  });

  it("codec - Contact * is accepted for REGISTER only", () => {
    const lines = (method: string) => [
      `${method} sip:example.com SIP/2.0`,
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa",
      "From: <sip:bob@example.com>;tag=1",
      "To: <sip:bob@example.com>",
      "Call-ID: star-1",
      `CSeq: 1 ${method}`,
      "Contact: *",
      "Expires: 0",
    ];
    const register = parseMessage(wire(lines("REGISTER")));
    assert.deepEqual(register.headers.contact, [{ uri: "*", params: {} }]);
    assert.match(serializeMessage(register).toString("latin1"), /\r\nContact: \*\r\n/);
    assert.equal(parseError(wire(lines("SUBSCRIBE"))).reason, "Malformed Contact header");
  });

  it("codec - non-SIP Request-URI schemes parse; the UAS decides (416)", () => {
    const request = asRequest(
      parseMessage(
        wire([
          "OPTIONS tel:+1-201-555-0123 SIP/2.0",
          "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa",
          "From: <sip:bob@example.com>;tag=1",
          "To: <tel:+1-201-555-0123>",
          "Call-ID: tel-1",
          "CSeq: 1 OPTIONS",
        ]),
      ),
    );
    assert.equal(request.uri, "tel:+1-201-555-0123");
  });
});

describe("codec datagrams", () => {
  const head = [
    "NOTIFY sip:bob@192.0.2.10 SIP/2.0",
    "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK1",
    "From: <sip:alice@example.com>;tag=1",
    "To: <sip:bob@example.com>;tag=2",
    "Call-ID: dgram-1",
    "CSeq: 5 NOTIFY",
  ];

  it("codec - a body longer than Content-Length is truncated", () => {
    const message = parseMessage(raw(...head, "Content-Length: 5", "", "hello, trailing junk"));
    assert.equal(message.body.toString("latin1"), "hello");
  });

  it("codec - a body shorter than Content-Length is an error that still carries the request", () => {
    const error = parseError(raw(...head, "Content-Length: 50", "", "short"));
    assert.equal(error.reason, "Content-Length larger than body");
    assert.equal(error.partial?.headers["call-id"], "dgram-1");
    assert.equal(error.partial?.body.length, 0);
  });

  it("codec - without Content-Length the body runs to the end of the datagram", () => {
    const message = parseMessage(raw(...head, "", "the rest\r\n"));
    assert.equal(message.body.toString("latin1"), "the rest\r\n");
  });

  it("codec - leading CRLFs are ignored and a bare keep-alive is not a message", () => {
    const message = parseMessage(Buffer.concat([Buffer.from("\r\n\r\n"), wire(head)]));
    assert.equal(message.headers["call-id"], "dgram-1");
    assert.equal(parseError(Buffer.from("\r\n\r\n")).reason, "Empty message");
    assert.equal(parseError(raw(...head)).reason, "Incomplete header section");
  });

  it("codec - a negative or non-numeric Content-Length is rejected", () => {
    assert.equal(
      parseError(raw(...head, "Content-Length: -1", "", "")).reason,
      "Malformed Content-Length header",
    );
    assert.equal(
      parseError(raw(...head, "Content-Length: ten", "", "")).reason,
      "Malformed Content-Length header",
    );
  });
});

describe("codec errors", () => {
  const valid = [
    "SUBSCRIBE sip:alice@example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKa",
    "From: <sip:bob@example.com>;tag=1",
    "To: <sip:alice@example.com>",
    "Call-ID: err-1",
    "CSeq: 1 SUBSCRIBE",
  ];
  const without = (prefix: string) => valid.filter((line) => !line.startsWith(prefix));

  it("codec - each required header missing gives its own reason and no partial", () => {
    const cases: Array<[string, string]> = [
      ["Via:", "Missing Via"],
      ["From:", "Missing From"],
      ["To:", "Missing To"],
      ["Call-ID:", "Missing Call-ID"],
      ["CSeq:", "Missing CSeq"],
    ];
    for (const [prefix, reason] of cases) {
      const error = parseError(wire(without(prefix)));
      assert.equal(error.reason, reason);
      assert.equal(error.partial, undefined, reason);
    }
  });

  it("codec - Max-Forwards is optional", () => {
    assert.equal(parseMessage(wire(valid)).headers["max-forwards"], undefined);
  });

  it("codec - malformed required headers name the header", () => {
    const replace = (prefix: string, line: string) =>
      valid.map((l) => (l.startsWith(prefix) ? line : l));
    assert.equal(
      parseError(wire(replace("Via:", "Via: SIP/2.0/UDP"))).reason,
      "Malformed Via header",
    );
    assert.equal(parseError(wire(replace("From:", "From: bob"))).reason, "Malformed From header");
    assert.equal(
      parseError(wire(replace("To:", "To: <sip:alice@example.com"))).reason,
      "Malformed To header",
    );
    assert.equal(
      parseError(wire(replace("Call-ID:", "Call-ID: a b"))).reason,
      "Malformed Call-ID header",
    );
    assert.equal(
      parseError(wire(replace("CSeq:", "CSeq: one SUBSCRIBE"))).reason,
      "Malformed CSeq header",
    );
    assert.equal(
      parseError(wire(replace("CSeq:", "CSeq: 4294967296 SUBSCRIBE"))).reason,
      "Malformed CSeq header",
    );
  });

  it("codec - a partial request comes with errors outside Via/From/To/Call-ID/CSeq, ready for a 400", () => {
    const mismatch = parseError(wire([...valid.slice(0, 5), "CSeq: 1 NOTIFY"]));
    assert.equal(mismatch.reason, "CSeq method does not match Request-Line");
    assert.ok(mismatch.partial);
    const error = parseError(
      wire([...valid.slice(0, 5), "CSeq: 1 NOTIFY", "Contact: <sip:bob@192.0.2.10"]),
    );
    assert.equal(
      error.reason,
      "Malformed Contact header",
      "the first problem in header order is reported",
    );
    const partial = error.partial;
    assert.ok(partial);
    assert.equal(partial.method, "SUBSCRIBE");
    assert.equal(partial.headers.contact, undefined);
    const response = makeResponse(partial, 400, error.reason);
    const text = serializeMessage(response).toString("latin1");
    assert.match(text, /^SIP\/2\.0 400 Malformed Contact header\r\n/);
    assert.match(text, /\r\nCSeq: 1 NOTIFY\r\n/);
  });

  it("codec - duplicated single-value headers are rejected", () => {
    const error = parseError(wire([...valid, "To: <sip:carol@example.com>"]));
    assert.equal(error.reason, "Duplicate To header");
    assert.equal(error.partial?.headers.to.uri, "sip:alice@example.com");
  });

  it("codec - a header line without a colon or with a bad name is rejected, the rest still parsed", () => {
    for (const bad of [
      "NoColonHere",
      "Bad Name: x",
      ": empty name",
      " leading continuation",
      "Subject: a\nb",
    ]) {
      const lines = bad.startsWith(" ")
        ? [valid[0] as string, bad, ...valid.slice(1)]
        : [...valid, bad];
      const error = parseError(wire(lines));
      assert.equal(error.reason, "Malformed header line", bad);
      assert.equal(error.partial?.headers["call-id"], "err-1", bad);
    }
  });

  it("codec - start lines are checked strictly; requests keep a partial", () => {
    const withStart = (line: string) => wire([line, ...valid.slice(1)]);
    assert.equal(parseError(withStart("HELLO")).reason, "Malformed Start-Line");
    assert.equal(parseError(withStart("SIP/2.0 1000 Big")).reason, "Malformed Status-Line");
    assert.equal(parseError(withStart("SIP/2.0 099 Small")).reason, "Malformed Status-Line");
    const sloppy = parseError(withStart("SUBSCRIBE  sip:alice@example.com SIP/2.0"));
    assert.equal(sloppy.reason, "Malformed Request-Line");
    assert.equal(sloppy.partial?.method, "SUBSCRIBE");
    assert.equal(parseError(withStart("SUBSCRIBE alice SIP/2.0")).reason, "Malformed Request-URI");
  });

  it("codec - SipParseError is an Error with a name and a readable message", () => {
    const error = parseError(wire(without("Call-ID:")));
    assert.ok(error instanceof Error);
    assert.equal(error.name, "SipParseError");
    assert.match(error.message, /Missing Call-ID/);
  });
});

describe("codec serialisation guards", () => {
  const base = () => asRequest(parseMessage(ROUND_TRIPS.OPTIONS as Buffer));

  it("codec - CR or LF in a header value is refused (no header injection)", () => {
    const request = base();
    request.headers.subject = "hi\r\nVia: SIP/2.0/UDP evil.example.com";
    assert.throws(() => serializeMessage(request), TypeError);
  });

  it("codec - characters above U+00FF are refused: header values must be byte strings", () => {
    const request = base();
    request.headers.subject = "안녕";
    assert.throws(() => serializeMessage(request), /latin1 byte strings/);
    request.headers.subject = Buffer.from("안녕", "utf8").toString("latin1");
    assert.doesNotThrow(() => serializeMessage(request));
  });

  it("codec - undefined headers are skipped and numbers are written as decimals", () => {
    const request = base();
    request.headers.subject = undefined;
    request.headers.expires = 60;
    const text = serializeMessage(request).toString("latin1");
    assert.doesNotMatch(text, /Subject/);
    assert.match(text, /\r\nExpires: 60\r\n/);
  });
});
