// transport: a SIP transaction span's own attributes — built from the request, or handed to the export as
// the message's head bytes and built there (the span worker), by the same function either way.

import { presentityOf } from "../protocol/presence/presentity.js";
import { readRequestHead } from "../protocol/sip/codec.js";
import type { SipRequest } from "../protocol/sip/message.js";
import type { SpanAttributes } from "./tracing.js";

/** Where a SIP message came from or went. */
export interface SipPeer {
  transport: string;
  address: string;
  port: number;
}

/**
 * A SIP span's attributes as the event loop hands them to the export: the head of the message
 * (start line and headers, as received or sent) and its peer. On the event loop `sipHead` is a
 * view of the message's own bytes (never changed once sent or received); the export copies it
 * into the buffer it hands to its worker, which makes attributes of it (`sipHeadAttributes`).
 */
export interface SipHead extends SipPeer {
  sipHead: Uint8Array;
}

export function isSipHead(part: object): part is SipHead {
  return (part as Partial<SipHead>).sipHead instanceof Uint8Array;
}

const HEADER_END = Buffer.from("\r\n\r\n");

/** The head of a message's bytes (up to and with the blank line; all of them without one). */
export function sipHeadOf(data: Buffer, peer: SipPeer): SipHead {
  const end = data.indexOf(HEADER_END);
  return {
    sipHead: data.subarray(0, end < 0 ? data.length : end + 4),
    transport: peer.transport,
    address: peer.address,
    port: peer.port,
  };
}

/**
 * The attributes of a SIP transaction span: method, Call-ID, Request-URI, the peer and the
 * presentity (the To of a SUBSCRIBE or PUBLISH — in a dialog their Request-URI is our Contact —
 * the notifier of a NOTIFY).
 */
export function sipRequestAttributes(request: SipRequest, peer: SipPeer): SpanAttributes {
  return attributesOf(
    request.method,
    request.headers["call-id"],
    request.uri,
    request.headers.from.uri,
    request.headers.to.uri,
    peer,
  );
}

function attributesOf(
  rawMethod: string,
  callId: string | undefined,
  uri: string,
  from: string | undefined,
  to: string | undefined,
  peer: SipPeer,
): SpanAttributes {
  const method = rawMethod.toUpperCase();
  const attributes: SpanAttributes = { "sip.method": method };
  if (callId !== undefined) attributes["sip.call_id"] = callId;
  attributes["sip.request_uri"] = uri;
  attributes["network.transport"] = peer.transport;
  attributes["network.peer.address"] = peer.address;
  attributes["network.peer.port"] = peer.port;
  const aor =
    method === "NOTIFY" ? from : method === "SUBSCRIBE" || method === "PUBLISH" ? to : undefined;
  const presentity = aor === undefined ? undefined : presentityOf(aor);
  if (presentity) attributes["presence.presentity"] = presentity;
  return attributes;
}

/**
 * The same attributes from a message's head, its request line and headers read as the endpoint
 * reads them (only those the attributes need); a head with no request line gives the peer only.
 */
export function sipHeadAttributes(head: SipHead): SpanAttributes {
  const peer = { transport: head.transport, address: head.address, port: head.port };
  const data = Buffer.from(head.sipHead.buffer, head.sipHead.byteOffset, head.sipHead.byteLength);
  const request = readRequestHead(data);
  if (!request) {
    return {
      "network.transport": peer.transport,
      "network.peer.address": peer.address,
      "network.peer.port": peer.port,
    };
  }
  return attributesOf(
    request.method,
    request.callId,
    request.uri,
    request.from?.uri,
    request.to?.uri,
    peer,
  );
}
