// test/unit/transport: a SIP span's attributes built from the message's head bytes (in the export worker)
// are those built from the parsed request on the event loop — bodies, compact headers and bad heads included.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMessage } from "../../../protocol/sip/codec.js";
import type { SipRequest } from "../../../protocol/sip/message.js";
import {
  isSipHead,
  sipHeadAttributes,
  sipHeadOf,
  sipRequestAttributes,
} from "../../../transport/sip-span.js";

const peer = { transport: "udp", address: "127.0.0.1", port: 5070 };

function message(lines: string[], body = ""): Buffer {
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n${body}`, "latin1");
}

const notify = message(
  [
    "NOTIFY sip:watcher@10.0.0.2:5070;transport=udp SIP/2.0",
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1",
    "Max-Forwards: 70",
    "f: <sip:Alice@Example.COM:5090;transport=tcp>;tag=n1",
    "t: <sip:watcher@10.0.0.2>;tag=w1",
    "i: call-1@10.0.0.2",
    "CSeq: 2 NOTIFY",
    "Event: presence",
    "Subscription-State: active;expires=600",
    "Content-Type: application/pidf+xml",
    "Content-Length: 11",
  ],
  "<presence/>",
);

const subscribe = message([
  "SUBSCRIBE sip:bob@example.com SIP/2.0",
  "Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-2",
  "From: <sip:watcher@10.0.0.2>;tag=w2",
  "To: <sip:bob@example.com>",
  "Call-ID: call-2@10.0.0.2",
  "CSeq: 1 SUBSCRIBE",
  "Event: presence",
  "Content-Length: 0",
]);

const folded = message([
  "PUBLISH sip:carol@example.com SIP/2.0",
  "Via: SIP/2.0/TCP 10.0.0.3:5070;branch=z9hG4bK-4",
  "CALL-ID:  call-4@10.0.0.3 ",
  "FROM: <sip:carol@example.com>;tag=p4",
  "TO:",
  "  <sip:Carol@Example.com:5080>",
  "Contact: <sip:carol@10.0.0.3:5070>",
  "CSeq: 7 PUBLISH",
  "Event: presence",
  "Content-Length: 0",
]);

describe("sip span - attributes from the message's head", () => {
  it("sip span - a head gives the request's own attributes: a NOTIFY with a body and compact headers, a SUBSCRIBE, a PUBLISH with a folded To", () => {
    for (const data of [notify, subscribe, folded]) {
      const head = sipHeadOf(data, peer);
      assert.ok(isSipHead(head));
      assert.equal(Buffer.from(head.sipHead).toString("latin1").endsWith("\r\n\r\n"), true);
      const request = parseMessage(data) as SipRequest;
      assert.deepEqual(sipHeadAttributes(head), sipRequestAttributes(request, peer));
    }
    assert.deepEqual(sipHeadAttributes(sipHeadOf(notify, peer)), {
      "sip.method": "NOTIFY",
      "sip.call_id": "call-1@10.0.0.2",
      "sip.request_uri": "sip:watcher@10.0.0.2:5070;transport=udp",
      "network.transport": "udp",
      "network.peer.address": "127.0.0.1",
      "network.peer.port": 5070,
      "presence.presentity": "sip:Alice@example.com",
    });
  });

  it("sip span - the head ends with the blank line: the body is not in it", () => {
    const head = sipHeadOf(notify, peer);
    assert.equal(head.sipHead.length, notify.length - "<presence/>".length);
  });

  it("sip span - a head the parser cannot read gives the peer; one with a bad header what it could read", () => {
    const garbage = sipHeadOf(Buffer.from("not sip at all\r\n\r\n"), peer);
    assert.deepEqual(sipHeadAttributes(garbage), {
      "network.transport": "udp",
      "network.peer.address": "127.0.0.1",
      "network.peer.port": 5070,
    });
    const badHeader = message([
      "SUBSCRIBE sip:bob@example.com SIP/2.0",
      "Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-3",
      "From: <sip:watcher@10.0.0.2>;tag=w3",
      "To: <sip:bob@example.com>",
      "Call-ID: call-3@10.0.0.2",
      "CSeq: 1 SUBSCRIBE",
      "Expires: soon",
    ]);
    const attributes = sipHeadAttributes(sipHeadOf(badHeader, peer));
    assert.equal(attributes["sip.call_id"], "call-3@10.0.0.2");
    assert.equal(attributes["presence.presentity"], "sip:bob@example.com");
  });
});
