// protocol/sip: the UAS side of a SIP dialog (RFC 3261 §12) as plain data, no I/O.
// Owns dialog identity, CSeq in both directions, remote target, route set, and building in-dialog requests.

import { parseUri } from "./headers.js";
import type { NameAddr, Peer, SipRequest, TransportName } from "./message.js";

export interface Dialog {
  callId: string;
  localTag: string;
  remoteTag: string;
  /** Our URI: the To of the dialog-creating request. */
  localUri: string;
  /** The peer's URI: the From of the dialog-creating request. */
  remoteUri: string;
  /** CSeq of the last request we sent (RFC 3261 §12.1.1: the UAS local sequence starts empty). */
  localSeq: number;
  /** CSeq of the last request received from the peer. */
  remoteSeq: number;
  /** The peer's Contact URI, replaced by every target refresh request. */
  remoteTarget: string;
  /** Record-Route values in request order (§12.1.1: a UAS keeps them as they appear). */
  routeSet: NameAddr[];
  /** The flow the dialog was created over, reused for in-dialog requests while it is open. */
  peer: Peer;
  /** Our Contact, sent in every request and response of the dialog. */
  localContact: string;
}

export type DialogError = { status: 400; reason: string };

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}|${localTag}|${remoteTag}`;
}

/** The key an in-dialog request names (its To tag is our local tag). */
export function requestDialogKey(request: SipRequest): string | undefined {
  const localTag = request.headers.to.params.tag;
  const remoteTag = request.headers.from.params.tag;
  if (!localTag || !remoteTag) return undefined;
  return dialogKey(request.headers["call-id"], localTag, remoteTag);
}

/**
 * RFC 3261 §12.1.1: the UAS creates the dialog from the request that established it.
 * A dialog needs a From tag and exactly one Contact with a SIP URI (RFC 6665 §4.1.2.1 for SUBSCRIBE).
 */
export function createUasDialog(
  request: SipRequest,
  localTag: string,
  peer: Peer,
  localContact: string,
): Dialog | DialogError {
  const remoteTag = request.headers.from.params.tag;
  if (!remoteTag) return { status: 400, reason: "Missing From tag" };
  const contact = request.headers.contact;
  if (contact?.length !== 1 || !contact[0]) {
    return { status: 400, reason: "Exactly one Contact required" };
  }
  if (!parseUri(contact[0].uri)) return { status: 400, reason: "Bad Contact URI" };
  return {
    callId: request.headers["call-id"],
    localTag,
    remoteTag,
    localUri: request.headers.to.uri,
    remoteUri: request.headers.from.uri,
    localSeq: 0,
    remoteSeq: request.headers.cseq.seq,
    remoteTarget: contact[0].uri,
    routeSet: [...(request.headers["record-route"] ?? [])],
    peer,
    localContact,
  };
}

/**
 * RFC 3261 §12.2.2: "If the remote sequence number was not empty, but the sequence number of
 * the request is lower than the remote sequence number, the request is out of order and MUST
 * be rejected with a 500 (Server Internal Error) response." A target refresh also replaces the
 * remote target with the request's Contact.
 */
export function acceptInDialogRequest(
  dialog: Dialog,
  request: { cseq: number; contact: string | undefined },
  targetRefresh: boolean,
): Dialog | { status: 500 | 400; reason: string } {
  if (request.cseq <= dialog.remoteSeq) return { status: 500, reason: "CSeq out of order" };
  let remoteTarget = dialog.remoteTarget;
  if (targetRefresh && request.contact !== undefined) {
    if (!parseUri(request.contact)) return { status: 400, reason: "Bad Contact URI" };
    remoteTarget = request.contact;
  }
  return { ...dialog, remoteSeq: request.cseq, remoteTarget };
}

/**
 * RFC 3261 §12.2.1.1: builds the next request of the dialog. With a loose-routing first route
 * the Request-URI is the remote target and the route set goes in Route; with a strict router
 * the first route becomes the Request-URI and the remote target is appended.
 */
export function buildInDialogRequest(
  dialog: Dialog,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
): { request: SipRequest; dialog: Dialog } {
  const seq = dialog.localSeq + 1;
  let uri = dialog.remoteTarget;
  let route = dialog.routeSet.map((r) => ({ ...r, params: { ...r.params } }));
  const first = route[0];
  if (first && parseUri(first.uri)?.params.lr === undefined) {
    uri = first.uri;
    route = [...route.slice(1), { uri: dialog.remoteTarget, params: {} }];
  }
  const request: SipRequest = {
    kind: "request",
    method,
    uri,
    version: "2.0",
    headers: {
      via: [],
      "max-forwards": "70",
      to: { uri: dialog.remoteUri, params: { tag: dialog.remoteTag } },
      from: { uri: dialog.localUri, params: { tag: dialog.localTag } },
      "call-id": dialog.callId,
      cseq: { seq, method },
      contact: [{ uri: dialog.localContact, params: {} }],
      ...(route.length > 0 ? { route } : {}),
      ...headers,
    },
    body,
  };
  return { request, dialog: { ...dialog, localSeq: seq } };
}

/**
 * Where the next in-dialog request goes: the first route when there is one, else the remote
 * target. Over TCP the dialog's own connection is preferred while it is open (the peer may only
 * listen on it, as SIPp and many NATed clients do): the caller pins `dialog.peer.connectionId`.
 * A host that is not an IP literal is left for the caller to resolve.
 */
export function nextHop(dialog: Dialog): { host: string; port: number; transport: TransportName } {
  const first = dialog.routeSet[0];
  const target = parseUri(first ? first.uri : dialog.remoteTarget);
  const transportParam = target?.params.transport?.toLowerCase();
  const transport: TransportName =
    transportParam === "tcp" || transportParam === "udp" ? transportParam : dialog.peer.transport;
  return {
    host: target?.host ?? dialog.peer.address,
    port: target?.port ?? 5060,
    transport,
  };
}
