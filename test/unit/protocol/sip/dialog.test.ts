// test/unit: the UAS dialog layer (RFC 3261 §12): creation, CSeq rules, target refresh, in-dialog requests.
// Raw SIP is written as arrays of lines joined with CRLF and parsed by the real codec.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMessage } from "../../../../protocol/sip/codec.js";
import {
  acceptInDialogRequest,
  buildInDialogRequest,
  createUasDialog,
  type Dialog,
  nextHop,
  requestDialogKey,
} from "../../../../protocol/sip/dialog.js";
import type { Peer, SipRequest } from "../../../../protocol/sip/message.js";

const peer: Peer = { transport: "udp", address: "127.0.0.1", port: 5070 };

function subscribe(extra: string[] = []): SipRequest {
  const message = parseMessage(
    Buffer.from(
      [
        "SUBSCRIBE sip:alice@example.com SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport",
        "Max-Forwards: 70",
        "From: <sip:bob@example.com>;tag=bobtag",
        "To: <sip:alice@example.com>",
        "Call-ID: call-1@127.0.0.1",
        "CSeq: 7 SUBSCRIBE",
        "Contact: <sip:bob@127.0.0.1:5070>",
        "Event: presence",
        ...extra,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      "latin1",
    ),
  );
  assert.equal(message.kind, "request");
  return message as SipRequest;
}

function dialogOf(request: SipRequest): Dialog {
  const dialog = createUasDialog(request, "ourtag", peer, "sip:n1@127.0.0.1:5060");
  assert.ok(!("status" in dialog));
  return dialog;
}

describe("dialog - UAS creation (RFC 3261 §12.1.1)", () => {
  it("dialog - takes ids, remote CSeq and remote target from the SUBSCRIBE", () => {
    const dialog = dialogOf(subscribe());
    assert.equal(dialog.callId, "call-1@127.0.0.1");
    assert.equal(dialog.remoteTag, "bobtag");
    assert.equal(dialog.localTag, "ourtag");
    assert.equal(dialog.remoteSeq, 7);
    assert.equal(dialog.localSeq, 0);
    assert.equal(dialog.remoteTarget, "sip:bob@127.0.0.1:5070");
    assert.equal(dialog.localUri, "sip:alice@example.com");
    assert.deepEqual(dialog.routeSet, []);
  });

  it("dialog - keeps the Record-Route set in order", () => {
    const dialog = dialogOf(
      subscribe(["Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>"]),
    );
    assert.deepEqual(
      dialog.routeSet.map((r) => r.uri),
      ["sip:p1.example.com;lr", "sip:p2.example.com;lr"],
    );
  });

  it("dialog - refuses a request without From tag or Contact", () => {
    const noTag = subscribe();
    noTag.headers.from = { uri: "sip:bob@example.com", params: {} };
    assert.deepEqual(createUasDialog(noTag, "t", peer, "sip:x@127.0.0.1"), {
      status: 400,
      reason: "Missing From tag",
    });
    const noContact = subscribe();
    delete noContact.headers.contact;
    assert.equal(
      (createUasDialog(noContact, "t", peer, "sip:x@127.0.0.1") as { status: number }).status,
      400,
    );
  });

  it("dialog - the in-dialog key uses our To tag and their From tag", () => {
    const request = subscribe();
    assert.equal(requestDialogKey(request), undefined);
    request.headers.to.params.tag = "ourtag";
    assert.equal(requestDialogKey(request), "call-1@127.0.0.1|ourtag|bobtag");
  });
});

describe("dialog - in-dialog requests (RFC 3261 §12.2)", () => {
  it("dialog - a lower or equal CSeq is out of order (500)", () => {
    const dialog = dialogOf(subscribe());
    assert.deepEqual(acceptInDialogRequest(dialog, { cseq: 7, contact: undefined }, true), {
      status: 500,
      reason: "CSeq out of order",
    });
  });

  it("dialog - a target refresh replaces the remote target", () => {
    const dialog = dialogOf(subscribe());
    const next = acceptInDialogRequest(
      dialog,
      { cseq: 8, contact: "sip:bob@127.0.0.2:6000" },
      true,
    );
    assert.ok(!("status" in next));
    assert.equal(next.remoteSeq, 8);
    assert.equal(next.remoteTarget, "sip:bob@127.0.0.2:6000");
  });

  it("dialog - NOTIFYs count our own CSeq up from 1 and swap From/To", () => {
    const dialog = dialogOf(subscribe());
    const first = buildInDialogRequest(dialog, "NOTIFY", { event: "presence" }, Buffer.alloc(0));
    const second = buildInDialogRequest(first.dialog, "NOTIFY", {}, Buffer.alloc(0));
    assert.equal(first.request.headers.cseq.seq, 1);
    assert.equal(second.request.headers.cseq.seq, 2);
    assert.equal(first.request.uri, "sip:bob@127.0.0.1:5070");
    assert.deepEqual(first.request.headers.from, {
      uri: "sip:alice@example.com",
      params: { tag: "ourtag" },
    });
    assert.deepEqual(first.request.headers.to, {
      uri: "sip:bob@example.com",
      params: { tag: "bobtag" },
    });
    assert.equal(first.request.headers.event, "presence");
  });

  it("dialog - loose routing puts the route set in Route and keeps the target as Request-URI", () => {
    const dialog = dialogOf(subscribe(["Record-Route: <sip:10.0.0.9:5080;lr>"]));
    const { request } = buildInDialogRequest(dialog, "NOTIFY", {}, Buffer.alloc(0));
    assert.equal(request.uri, "sip:bob@127.0.0.1:5070");
    assert.deepEqual(
      request.headers.route?.map((r) => r.uri),
      ["sip:10.0.0.9:5080;lr"],
    );
    assert.deepEqual(nextHop(dialog), { host: "10.0.0.9", port: 5080, transport: "udp" });
  });

  it("dialog - a strict router becomes the Request-URI and the target goes last", () => {
    const dialog = dialogOf(subscribe(["Record-Route: <sip:10.0.0.9:5080>"]));
    const { request } = buildInDialogRequest(dialog, "NOTIFY", {}, Buffer.alloc(0));
    assert.equal(request.uri, "sip:10.0.0.9:5080");
    assert.deepEqual(
      request.headers.route?.map((r) => r.uri),
      ["sip:bob@127.0.0.1:5070"],
    );
  });

  it("dialog - the next hop follows the transport parameter of the target", () => {
    const dialog = dialogOf(subscribe());
    assert.deepEqual(nextHop({ ...dialog, remoteTarget: "sip:bob@127.0.0.1:5071;transport=tcp" }), {
      host: "127.0.0.1",
      port: 5071,
      transport: "tcp",
    });
    assert.deepEqual(nextHop({ ...dialog, remoteTarget: "sip:bob@127.0.0.1" }), {
      host: "127.0.0.1",
      port: 5060,
      transport: "udp",
    });
  });
});
