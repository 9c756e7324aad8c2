// test/unit/protocol/sip: header-level helpers — random tokens, params, name-addr, Via, SIP URIs,
// Expires / media types and response building.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMessage, serializeMessage } from "../../../../protocol/sip/codec.js";
import {
  defaultReason,
  expiresOf,
  formatNameAddr,
  formatParams,
  formatUri,
  formatVia,
  makeResponse,
  mediaTypes,
  newBranch,
  parseNameAddr,
  parseNameAddrList,
  parseParams,
  parseUri,
  parseViaList,
  randomToken,
} from "../../../../protocol/sip/headers.js";
import type { SipMessage, SipRequest } from "../../../../protocol/sip/message.js";

const SUBSCRIBE = Buffer.from(
  [
    "SUBSCRIBE sip:alice@example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa;rport",
    "Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKb",
    "Max-Forwards: 70",
    "Record-Route: <sip:proxy.example.com;lr>",
    'From: "Bob" <sip:bob@example.com>;tag=f1',
    "To: <sip:alice@example.com>",
    "Call-ID: hdr-1@192.0.2.10",
    "CSeq: 7 SUBSCRIBE",
    "Event: presence",
    "Expires: 600",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n"),
  "latin1",
);

function subscribe(): SipRequest {
  const message = parseMessage(SUBSCRIBE);
  assert.equal(message.kind, "request");
  return message as SipRequest;
}

function withExpires(value: string | undefined): SipMessage {
  const message = subscribe();
  message.headers.expires = value;
  return message;
}

describe("random tokens", () => {
  it("headers - randomToken is 16 url-safe characters by default and never repeats", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const token = randomToken();
      assert.match(token, /^[A-Za-z0-9_-]{16}$/);
      seen.add(token);
    }
    assert.equal(seen.size, 10_000);
  });

  it("headers - randomToken never repeats across draws of mixed sizes (its pool refilled many times)", () => {
    const seen = new Set<string>();
    const sizes = [12, 7, 8, 32, 12, 1000];
    for (let i = 0; i < 60_000; i++) seen.add(randomToken(sizes[i % sizes.length]));
    assert.equal(seen.size, 60_000);
    // Every bit is used: the 12-byte tokens' characters spread over the whole alphabet evenly.
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      for (const c of randomToken().slice(0, 15)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    assert.equal(counts.size, 64);
    const expected = (20_000 * 15) / 64;
    for (const [c, n] of counts) assert.ok(Math.abs(n - expected) < expected * 0.1, `${c}: ${n}`);
  });

  it("headers - randomToken takes a byte count", () => {
    assert.match(randomToken(3), /^[A-Za-z0-9_-]{4}$/);
    assert.match(randomToken(32), /^[A-Za-z0-9_-]{43}$/);
  });

  it("headers - newBranch carries the magic cookie and 96 random bits", () => {
    const branch = newBranch();
    assert.match(branch, /^z9hG4bK[A-Za-z0-9_-]{16}$/);
    assert.deepEqual(parseViaList(`SIP/2.0/UDP h;branch=${branch}`)?.[0]?.params, { branch });
  });
});

describe("params", () => {
  it("headers - parseParams splits a value from its parameters", () => {
    assert.deepEqual(parseParams("presence;id=7"), { value: "presence", params: { id: "7" } });
    assert.deepEqual(parseParams("active;expires=60"), {
      value: "active",
      params: { expires: "60" },
    });
    assert.deepEqual(parseParams("terminated ; reason = timeout"), {
      value: "terminated",
      params: { reason: "timeout" },
    });
    assert.deepEqual(parseParams("presence"), { value: "presence", params: {} });
    assert.deepEqual(parseParams('application/pidf+xml;charset="UTF-8";Flag'), {
      value: "application/pidf+xml",
      params: { charset: "UTF-8", flag: null },
    });
  });

  it("headers - parseParams reads a malformed tail leniently instead of failing", () => {
    assert.deepEqual(parseParams("active;;expires=60;=x;bad value"), {
      value: "active",
      params: { expires: "60", "bad value": null },
    });
  });

  it("headers - formatParams writes flags bare and quotes values that are not tokens", () => {
    assert.equal(formatParams({ lr: null, transport: "tcp" }), ";lr;transport=tcp");
    assert.equal(formatParams({ received: "2001:db8::1" }), ";received=2001:db8::1");
    assert.equal(formatParams({ text: 'say "hi"' }), ';text="say \\"hi\\""');
    assert.equal(formatParams({ empty: "" }), ';empty=""');
    assert.equal(formatParams({}), "");
  });

  it("headers - params survive parse → format → parse", () => {
    const params = { id: "7", note: "a b;c", flag: null };
    assert.deepEqual(parseParams(`presence${formatParams(params)}`).params, params);
  });
});

describe("name-addr", () => {
  it("headers - formatNameAddr quotes display names only when needed", () => {
    assert.equal(formatNameAddr({ uri: "sip:a@b", params: { tag: "x" } }), "<sip:a@b>;tag=x");
    assert.equal(formatNameAddr({ name: "Alice", uri: "sip:a@b", params: {} }), "Alice <sip:a@b>");
    assert.equal(
      formatNameAddr({ name: "Alice Liddell", uri: "sip:a@b", params: {} }),
      "Alice Liddell <sip:a@b>",
    );
    assert.equal(
      formatNameAddr({ name: "Liddell, Alice", uri: "sip:a@b", params: {} }),
      '"Liddell, Alice" <sip:a@b>',
    );
    assert.equal(
      formatNameAddr({ name: 'The "A"', uri: "sip:a@b", params: {} }),
      '"The \\"A\\"" <sip:a@b>',
    );
    assert.equal(formatNameAddr({ name: "", uri: "sip:a@b", params: {} }), "<sip:a@b>");
  });

  it("headers - parseNameAddr reads name-addr and addr-spec forms", () => {
    assert.deepEqual(parseNameAddr('"Liddell, Alice" <sip:a@b;transport=tcp>;tag=x'), {
      name: "Liddell, Alice",
      uri: "sip:a@b;transport=tcp",
      params: { tag: "x" },
    });
    assert.deepEqual(parseNameAddr("sip:a@b;tag=x"), { uri: "sip:a@b", params: { tag: "x" } });
    assert.deepEqual(parseNameAddr("Alice   Liddell<sip:a@b>"), {
      name: "Alice Liddell",
      uri: "sip:a@b",
      params: {},
    });
    assert.equal(parseNameAddr("<sip:a@b>, <sip:c@d>"), undefined);
    assert.equal(parseNameAddr("sip:a@b?subject=x"), undefined, "an addr-spec with ? needs <>");
    assert.deepEqual(parseNameAddr("<sip:a@b>;tag")?.params, { tag: null });
  });

  it("headers - name-addrs round-trip through format and parse", () => {
    const cases = [
      { uri: "sip:a@b", params: {} },
      {
        name: "Bob",
        uri: "sips:bob@example.com:5061",
        params: { tag: "9", "+sip.instance": "<urn:x>" },
      },
      { name: 'Zoë \\ "Q"', uri: "sip:z@example.com", params: { expires: "60", q: "0.5" } },
    ];
    for (const value of cases) assert.deepEqual(parseNameAddr(formatNameAddr(value)), value);
  });

  it("headers - parseNameAddrList splits on commas outside quotes and brackets", () => {
    const list = parseNameAddrList('"A, B" <sip:a@b;lr>, <sip:c@d>;expires=5 , sip:e@f');
    assert.deepEqual(list, [
      { name: "A, B", uri: "sip:a@b;lr", params: {} },
      { uri: "sip:c@d", params: { expires: "5" } },
      { uri: "sip:e@f", params: {} },
    ]);
    assert.equal(parseNameAddrList("<sip:a@b>,,<sip:c@d>"), undefined);
    assert.equal(parseNameAddrList(""), undefined);
  });
});

describe("via", () => {
  it("headers - parseViaList reads transports, ports, IPv6 and params", () => {
    assert.deepEqual(
      parseViaList(
        "SIP/2.0/udp [2001:db8::1]:5062;branch=z9hG4bK1;received=2001:db8::9;rport, SIP/2.0/TLS h.example.com",
      ),
      [
        {
          version: "2.0",
          protocol: "UDP",
          host: "[2001:db8::1]",
          port: 5062,
          params: { branch: "z9hG4bK1", received: "2001:db8::9", rport: null },
        },
        { version: "2.0", protocol: "TLS", host: "h.example.com", params: {} },
      ],
    );
  });

  it("headers - parseViaList rejects malformed via-parms", () => {
    for (const bad of [
      "",
      "SIP/2.0/UDP",
      "SIP/2.0 192.0.2.1",
      "HTTP/1.1/TCP 192.0.2.1",
      "SIP/2.0/UDP 192.0.2.1:99999",
      "SIP/2.0/UDP 192.0.2.1;;branch=x",
      "SIP/2.0/UDP 192.0.2.1;branch=",
      "SIP/2.0/UDP 192.0.2.1,",
      "SIP/2.0/UDP192.0.2.1",
    ]) {
      assert.equal(parseViaList(bad), undefined, bad);
    }
  });

  it("headers - formatVia writes one via-parm", () => {
    const via = {
      version: "2.0",
      protocol: "TCP",
      host: "192.0.2.1",
      port: 5060,
      params: { branch: "z9hG4bKx", rport: null },
    };
    assert.equal(formatVia(via), "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKx;rport");
    assert.deepEqual(parseViaList(formatVia(via)), [via]);
  });
});

describe("uris", () => {
  it("headers - parseUri splits user, host, port, params and headers", () => {
    assert.deepEqual(parseUri("sip:alice@example.com"), {
      scheme: "sip",
      user: "alice",
      host: "example.com",
      params: {},
      headers: {},
    });
    assert.deepEqual(
      parseUri("SIPS:bob@192.0.2.4:5061;Transport=tcp;lr?subject=project%20x&priority=urgent"),
      {
        scheme: "sips",
        user: "bob",
        host: "192.0.2.4",
        port: 5061,
        params: { transport: "tcp", lr: null },
        headers: { subject: "project%20x", priority: "urgent" },
      },
    );
    assert.deepEqual(parseUri("sip:[2001:db8::1]:5060"), {
      scheme: "sip",
      host: "[2001:db8::1]",
      port: 5060,
      params: {},
      headers: {},
    });
    assert.equal(
      parseUri("sip:user;par=u%40example.net@example.com")?.user,
      "user;par=u%40example.net",
    );
    assert.equal(parseUri("sip:alice:secret@example.com")?.user, "alice:secret");
  });

  it("headers - parseUri refuses other schemes and malformed URIs", () => {
    for (const bad of [
      "tel:+12015550123",
      "mailto:a@b",
      "sip:",
      "sip:alice@",
      "sip:alice@exa mple.com",
      "sip:example.com:99999",
      "sip:example.com:port",
      "sip:example.com;;lr",
      "sip:example.com?noequals",
      "<sip:example.com>",
    ]) {
      assert.equal(parseUri(bad), undefined, bad);
    }
  });

  it("headers - formatUri inverts parseUri", () => {
    for (const uri of [
      "sip:alice@example.com",
      "sips:bob@192.0.2.4:5061;transport=tcp;lr?subject=x&priority=urgent",
      "sip:[2001:db8::1]:5060;maddr=239.255.255.1",
      "sip:presence.example.com;lr",
    ]) {
      const parsed = parseUri(uri);
      assert.ok(parsed, uri);
      assert.equal(formatUri(parsed), uri);
    }
  });
});

describe("values", () => {
  it("headers - expiresOf reads delta-seconds", () => {
    assert.equal(expiresOf(withExpires(undefined)), undefined);
    assert.equal(expiresOf(withExpires("3600")), 3600);
    assert.equal(expiresOf(withExpires(" 0 ")), 0);
    assert.equal(expiresOf(withExpires("0060")), 60);
    assert.equal(expiresOf(withExpires("4294967296")), 4294967295, "clamped to 2^32-1");
    assert.equal(expiresOf(withExpires("1".repeat(100))), 4294967295);
  });

  it("headers - expiresOf flags garbage as invalid", () => {
    for (const bad of ["", "-1", "abc", "60 s", "60, 70", "1.5", "Thu, 01 Dec 1994 16:00:00 GMT"]) {
      assert.equal(expiresOf(withExpires(bad)), "invalid", bad);
    }
  });

  it("headers - mediaTypes lists lower-case type/subtype without params", () => {
    assert.deepEqual(
      mediaTypes(
        'application/pidf+xml, Application/RLMI+XML;q=0.5 ,multipart/related;boundary="a,b"',
      ),
      ["application/pidf+xml", "application/rlmi+xml", "multipart/related"],
    );
    assert.deepEqual(mediaTypes("application / pidf+xml"), ["application/pidf+xml"]);
    assert.deepEqual(mediaTypes(undefined), []);
    assert.deepEqual(mediaTypes(""), []);
    assert.deepEqual(mediaTypes("text, /x, a/b/c, */*"), ["*/*"]);
  });
});

describe("responses", () => {
  it("headers - defaultReason covers RFC 3261, 3265/6665 and 3903 codes", () => {
    const table: Array<[number, string]> = [
      [100, "Trying"],
      [200, "OK"],
      [202, "Accepted"],
      [400, "Bad Request"],
      [404, "Not Found"],
      [405, "Method Not Allowed"],
      [412, "Conditional Request Failed"],
      [413, "Request Entity Too Large"],
      [415, "Unsupported Media Type"],
      [423, "Interval Too Brief"],
      [481, "Call/Transaction Does Not Exist"],
      [489, "Bad Event"],
      [500, "Server Internal Error"],
      [503, "Service Unavailable"],
      [505, "Version Not Supported"],
      [603, "Decline"],
      [299, "Success"],
      [499, "Client Error"],
      [599, "Server Error"],
    ];
    for (const [status, reason] of table)
      assert.equal(defaultReason(status), reason, String(status));
  });

  it("headers - makeResponse copies Via, From, To, Call-ID and CSeq only", () => {
    const request = subscribe();
    const response = makeResponse(request, 202);
    assert.equal(response.kind, "response");
    assert.equal(response.status, 202);
    assert.equal(response.reason, "Accepted");
    assert.equal(response.version, "2.0");
    assert.deepEqual(Object.keys(response.headers), ["via", "from", "to", "call-id", "cseq"]);
    assert.deepEqual(response.headers.via, request.headers.via);
    assert.deepEqual(response.headers.from, request.headers.from);
    assert.deepEqual(response.headers.to, request.headers.to);
    assert.equal(response.headers["call-id"], request.headers["call-id"]);
    assert.deepEqual(response.headers.cseq, request.headers.cseq);
    assert.equal(response.body.length, 0);
  });

  it("headers - makeResponse clones, so adding the To tag leaves the request alone", () => {
    const request = subscribe();
    const response = makeResponse(request, 200);
    response.headers.to.params.tag = randomToken();
    response.headers.via[0] = {
      ...response.headers.via[0],
      host: "x",
    } as (typeof response.headers.via)[0];
    (response.headers.via[1] as { params: Record<string, string | null> }).params.received =
      "192.0.2.1";
    assert.equal(request.headers.to.params.tag, undefined);
    assert.equal(request.headers.via[0]?.host, "192.0.2.10");
    assert.equal(request.headers.via[1]?.params.received, undefined);
  });

  it("headers - makeResponse adds extra headers, a body and its Content-Type", () => {
    const request = subscribe();
    const body = Buffer.from("<presence/>", "utf8");
    const response = makeResponse(request, 200, "Fine", {
      headers: { Expires: "600", contact: [{ uri: "sip:presence@192.0.2.1", params: {} }] },
      body,
      contentType: "application/pidf+xml",
    });
    assert.equal(response.reason, "Fine");
    assert.equal(response.headers.expires, "600");
    assert.deepEqual(response.headers.contact, [{ uri: "sip:presence@192.0.2.1", params: {} }]);
    assert.equal(response.headers["content-type"], "application/pidf+xml");
    const text = serializeMessage(response).toString("latin1");
    assert.equal(
      text,
      [
        "SIP/2.0 200 Fine",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa;rport",
        "Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKb",
        "From: Bob <sip:bob@example.com>;tag=f1",
        "To: <sip:alice@example.com>",
        "Call-ID: hdr-1@192.0.2.10",
        "CSeq: 7 SUBSCRIBE",
        "Expires: 600",
        "Contact: <sip:presence@192.0.2.1>",
        "Content-Type: application/pidf+xml",
        "Content-Length: 11",
        "",
        "<presence/>",
      ].join("\r\n"),
    );
  });
});
