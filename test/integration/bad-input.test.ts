// test/integration: hostile input end to end - RFC 4475 invalid messages, truncated and oversized
// messages, random bytes and XML attacks, all while a SIPp watcher stays subscribed; the node must stay
// up, reject what it must, and keep notifying the watcher.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cluster,
  lastEtag,
  notifies,
  pidf,
  type SipTraceMessage,
  scene,
  sendDatagrams,
  sendStream,
  transports,
  tupleIds,
  waitForSubscriptions,
} from "./harness.js";

const maxBodyBytes = 8192;

const isNotify = (message: SipTraceMessage): boolean =>
  message.direction === "received" && message.method === "NOTIFY";

function sip(...lines: string[]): Buffer {
  return Buffer.from(lines.join("\r\n"), "utf8");
}

const sdp = [
  "v=0",
  "o=mhandley 29739 7272939 IN IP4 192.0.2.3",
  "s=-",
  "c=IN IP4 192.0.2.3",
  "t=0 0",
];
const sdpBody = `${sdp.join("\r\n")}\r\n`;

/** Invalid messages after RFC 4475 section 3.1.2, each named by its RFC tag. */
const torture: ReadonlyArray<readonly [string, Buffer]> = [
  [
    "badinv01: extraneous header field separators",
    sip(
      "INVITE sip:user@example.com SIP/2.0",
      "To: sip:j.user@example.com",
      "From: sip:caller@example.net;tag=134161461246",
      "Max-Forwards: 7",
      "Call-ID: badinv01.0ha0isndaksdjasdf3234nas",
      "CSeq: 8 INVITE",
      "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
      'Contact: "Joe" <sip:joe@example.org>;;;;',
      `Content-Length: ${sdpBody.length}`,
      "Content-Type: application/sdp",
      "",
      sdpBody,
    ),
  ],
  [
    "clerr: Content-Length larger than the message",
    sip(
      "INVITE sip:user@example.com SIP/2.0",
      "Max-Forwards: 80",
      "To: sip:j.user@example.com",
      "From: sip:caller@example.net;tag=93942939o2",
      "Contact: <sip:caller@hungry.example.net>",
      "Call-ID: clerr.0ha0isndaksdjweiafasdk3",
      "CSeq: 8 INVITE",
      "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523",
      "Content-Type: application/sdp",
      "Content-Length: 9999",
      "",
      sdpBody,
    ),
  ],
  [
    "ncl: negative Content-Length",
    sip(
      "INVITE sip:user@example.com SIP/2.0",
      "Max-Forwards: 254",
      "To: sip:j.user@example.com",
      "From: sip:caller@example.net;tag=32394234",
      "Call-ID: ncl.0ha0isndaksdj2193423r542w35",
      "CSeq: 0 INVITE",
      "Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw",
      "Contact: <sip:caller@example53.example.net>",
      "Content-Type: application/sdp",
      "Content-Length: -999",
      "",
      sdpBody,
    ),
  ],
  [
    "scalar02: overlarge scalar values",
    sip(
      "REGISTER sip:example.com SIP/2.0",
      "Via: SIP/2.0/UDP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129",
      "To: <sip:user@example.com>",
      "From: <sip:other@example.net>;tag=3485976",
      "Max-Forwards: 300",
      "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
      "CSeq: 36893488147419103232 REGISTER",
      "Contact: <sip:user@host129.example.com>;expires=280297596632815",
      "Expires: 1000000000000000000000000000000000000000000000000",
      "Content-Length: 0",
      "",
      "",
    ),
  ],
  [
    "quotbal: unterminated quoted string in a display name",
    sip(
      "INVITE sip:user@example.com SIP/2.0",
      'To: "Mr. J. User <sip:j.user@example.com>',
      "From: sip:caller@example.net;tag=93334",
      "Max-Forwards: 10",
      "Call-ID: quotbal.aksdj",
      "Contact: <sip:caller@host59.example.net>",
      "CSeq: 8 INVITE",
      "Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234",
      "Content-Type: application/sdp",
      `Content-Length: ${sdpBody.length}`,
      "",
      sdpBody,
    ),
  ],
  [
    "ltgtruri: Request-URI in angle brackets",
    sip(
      "INVITE <sip:user@example.com> SIP/2.0",
      "To: sip:user@example.com",
      "From: sip:caller@example.net;tag=39291",
      "Max-Forwards: 23",
      "Call-ID: ltgtruri.1@192.0.2.5",
      "CSeq: 1 INVITE",
      "Via: SIP/2.0/UDP 192.0.2.5",
      "Contact: <sip:caller@host5.example.net>",
      "Content-Type: application/sdp",
      `Content-Length: ${sdpBody.length}`,
      "",
      sdpBody,
    ),
  ],
  [
    "badvers: unknown protocol version",
    sip(
      "OPTIONS sip:t.watson@example.org SIP/7.0",
      "Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",
      "Max-Forwards:     70",
      "From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe",
      "To:      T. Watson <sip:t.watson@example.org>",
      "Call-ID: badvers.31417@c.example.com",
      "CSeq:    1 OPTIONS",
      "l: 0",
      "",
      "",
    ),
  ],
  [
    "mismatch01: start line and CSeq method differ",
    sip(
      "OPTIONS sip:user@example.com SIP/2.0",
      "To: sip:j.user@example.com",
      "From: sip:caller@example.net;tag=34525",
      "Max-Forwards: 6",
      "Call-ID: mismatch01.dj0234sxdfl3",
      "CSeq: 8 INVITE",
      "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
      "l: 0",
      "",
      "",
    ),
  ],
  [
    "bigcode: overlarge response code",
    sip(
      "SIP/2.0 4294967301 better not break the receiver",
      "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
      "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3",
      "CSeq: 3882340 OPTIONS",
      "From: <sip:user@example.com>;tag=2366sdfn",
      "To: <sip:user@example.edu>;tag=klsdjf",
      "Content-Length: 0",
      "",
      "",
    ),
  ],
];

function truncated(port: number): Buffer[] {
  const whole = sip(
    `PUBLISH sip:victim@127.0.0.1:${port} SIP/2.0`,
    "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKtruncated1",
    "Max-Forwards: 70",
    "From: <sip:victim@127.0.0.1>;tag=cut",
    "To: <sip:victim@127.0.0.1>",
    "Call-ID: truncated-1@127.0.0.1",
    "CSeq: 1 PUBLISH",
    "Event: presence",
    "Content-Type: application/pidf+xml",
    "Content-Length: 200",
    "",
    "<presence",
  );
  return [
    whole,
    whole.subarray(0, 40),
    whole.subarray(0, whole.indexOf("CSeq") + 6),
    Buffer.from("SUBSCRIBE sip:"),
    Buffer.from("\r\n\r\n"),
    Buffer.alloc(0),
  ];
}

/** A deterministic byte generator (mulberry32), so a failing run can be replayed from its seed. */
function randomBytes(seed: number, count: number): Buffer {
  let state = seed >>> 0;
  const bytes = Buffer.alloc(count);
  for (let index = 0; index < count; index++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    bytes[index] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return bytes;
}

/** An OPTIONS padded with one huge header to `size` bytes. */
function oversized(port: number, size: number): Buffer {
  const head = sip(
    `OPTIONS sip:victim@127.0.0.1:${port} SIP/2.0`,
    "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKoversized",
    "Max-Forwards: 70",
    "From: <sip:x@127.0.0.1>;tag=big",
    "To: <sip:victim@127.0.0.1>",
    "Call-ID: oversized@127.0.0.1",
    "CSeq: 1 OPTIONS",
    "X-Padding: ",
  );
  const tailBytes = Buffer.from("\r\nContent-Length: 0\r\n\r\n");
  const padding = Buffer.alloc(size - head.length - tailBytes.length, "a");
  return Buffer.concat([head, padding, tailBytes]);
}

const billionLaughs = (user: string): string =>
  [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    "<!DOCTYPE presence [",
    '  <!ENTITY lol "lol">',
    ...Array.from(
      { length: 9 },
      (_, level) =>
        `  <!ENTITY lol${level + 1} "${`&lol${level === 0 ? "" : level};`.repeat(10)}">`,
    ),
    "]>",
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${user}@127.0.0.1">`,
    '  <tuple id="laughs"><status><basic>open</basic></status><note>&lol9;</note></tuple>',
    "</presence>",
  ].join("\n");

const externalEntity = (user: string): string =>
  [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    '<!DOCTYPE presence [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>',
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${user}@127.0.0.1">`,
    '  <tuple id="xxe"><status><basic>open</basic></status><note>&secret;</note></tuple>',
    "</presence>",
  ].join("\n");

describe("bad input", { timeout: 120_000 }, () => {
  for (const transport of transports) {
    it(
      `bad input - the node survives hostile input and keeps notifying its watcher (${transport})`,
      scene("bad-input", async ({ startNode, startSipp, runSipp }, t) => {
        const node = await startNode({ args: ["--max-body-bytes", String(maxBodyBytes)] });
        const user = "victim";
        const watcher = await startSipp({
          scenario: "watcher.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600, notifies: 2 },
        });
        await watcher.waitForMessage(isNotify, "the first NOTIFY", { nodes: [node] });
        await waitForSubscriptions(node, 1);

        const seed = Date.now() >>> 0;
        t.diagnostic(`random bytes seed ${seed}`);
        const noise = Array.from({ length: 30 }, (_, index) =>
          randomBytes(seed + index, 1 + ((seed + index * 7919) % 1400)),
        );
        const sipNoise = noise.map((bytes) =>
          Buffer.concat([Buffer.from("SUBSCRIBE sip:"), bytes]),
        );
        // One IPv4 UDP datagram carries at most 65507 bytes: the 70 KB message goes over TCP.
        const largestDatagram = oversized(node.sipPort, 65_507);
        const seventyKilobytes = oversized(node.sipPort, 70 * 1024);

        await sendDatagrams(node.sipPort, [
          ...torture.map(([, message]) => message),
          ...truncated(node.sipPort),
          largestDatagram,
          ...noise,
          ...sipNoise,
        ]);
        for (const [name, message] of torture) {
          await sendStream(node.sipPort, message, 1000).catch((error: unknown) => {
            throw new Error(`TCP ${name}: ${String(error)}`);
          });
        }
        for (const message of [
          ...truncated(node.sipPort),
          seventyKilobytes,
          noise[0] ?? Buffer.alloc(1),
        ]) {
          await sendStream(node.sipPort, message, 1000);
        }
        assert.ok(node.alive(), "the node survives raw garbage");

        for (const [kind, body] of [
          ["billion laughs", billionLaughs(user)],
          ["external entity", externalEntity(user)],
        ] as const) {
          const result = await runSipp({
            scenario: "publish-400.xml",
            transport,
            target: node.sip,
            service: user,
            files: { "body.pidf": body },
          });
          assert.equal(result.code, 0, `${kind} gets 400\n${result.describe()}`);
        }
        const tooLarge = pidf(user, [
          { id: "huge", basic: "open", note: "z".repeat(maxBodyBytes) },
        ]);
        const rejected = await runSipp({
          scenario: "publish-413.xml",
          transport,
          target: node.sip,
          service: user,
          files: { "body.pidf": tooLarge },
        });
        assert.equal(rejected.code, 0, rejected.describe());

        assert.ok(node.alive(), "the node survives the XML attacks");
        const options = await runSipp({
          scenario: "options.xml",
          transport,
          target: node.sip,
          service: user,
        });
        assert.equal(options.code, 0, options.describe());
        const view = await cluster(node);
        assert.equal(view.subscriptions, 1, "the watcher is still subscribed");
        assert.equal(view.publications, 0, "nothing hostile was stored");

        const published = await runSipp({
          scenario: "publish.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { expires: 600 },
          files: { "body.pidf": pidf(user, [{ id: "fine", basic: "open", note: "still here" }]) },
        });
        assert.equal(published.code, 0, published.describe());
        const fresh = await watcher.waitForMessage(isNotify, "the NOTIFY for the new PUBLISH", {
          count: 2,
          nodes: [node],
        });
        assert.deepEqual(tupleIds(fresh.body), ["fine"]);
        assert.doesNotMatch(fresh.body.toString(), /lol|root:/);

        const removal = await runSipp({
          scenario: "publish-refresh.xml",
          transport,
          target: node.sip,
          service: user,
          vars: { etag: lastEtag(published.trace), expires: 0 },
        });
        assert.equal(removal.code, 0, removal.describe());
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        assert.equal(notifies(result.trace).length, 5, "no NOTIFY from the rejected input");
        await waitForSubscriptions(node, 0);
      }),
    );
  }
});
