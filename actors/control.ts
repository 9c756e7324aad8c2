// actors: control sessions between the primary and each server — real SIP dialogs (INVITE/200/ACK,
// INFO, SUBSCRIBE/NOTIFY, BYE) whose messages travel as actor mail instead of UDP (DESIGN.md §2).

import { parseMessage, serializeMessage } from "../protocol/sip/codec.js";
import { makeResponse, newBranch, randomToken } from "../protocol/sip/headers.js";
import type { SipMessage, SipRequest, SipResponse } from "../protocol/sip/message.js";
import type { Address } from "../transport/envelope.js";
import type { Router } from "../transport/router.js";

/** A SIP message as mail: its wire bytes, parsed again on arrival like any received message. */
export interface ControlMail {
  type: "control";
  raw: Buffer;
}

/** The answer to a control request (the ask's reply): the SIP response's wire bytes. */
export interface ControlReply {
  raw: Buffer;
}

/** Our own event package for the promoted server's copy of the presence data (paper, Fig. 5). */
export const SYNC_EVENT = "x-pres-sys";
export const SYNC_CONTENT_TYPE = "application/vnd.presence-cluster.snapshots+json";

export function toMail(message: SipMessage): ControlMail {
  return { type: "control", raw: serializeMessage(message) };
}

export function fromMail(raw: Buffer): SipMessage {
  return parseMessage(Buffer.from(raw));
}

/** One side of a control dialog; each side counts its own CSeq (RFC 3261 §12.2.1.1). */
export interface ControlDialog {
  callId: string;
  localTag: string;
  remoteTag: string | undefined;
  localUri: string;
  remoteUri: string;
  localSeq: number;
}

export function newControlDialog(localNode: string, remoteNode: string): ControlDialog {
  return {
    callId: `${randomToken(12)}@${localNode}`,
    localTag: randomToken(8),
    remoteTag: undefined,
    localUri: `sip:${localNode}@presence-cluster`,
    remoteUri: `sip:${remoteNode}@presence-cluster`,
    localSeq: 0,
  };
}

/** The answering side's view of a dialog opened by `request`. */
export function answeringDialog(request: SipRequest): ControlDialog {
  return {
    callId: request.headers["call-id"],
    localTag: randomToken(8),
    remoteTag: request.headers.from.params.tag ?? undefined,
    localUri: request.headers.to.uri,
    remoteUri: request.headers.from.uri,
    localSeq: 0,
  };
}

/**
 * The next request of the dialog from this side. The Via names the node and a transport token
 * of our own ("ACTOR"): the hop is actor mail, not UDP or TCP.
 */
export function controlRequest(
  dialog: ControlDialog,
  localNode: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer = Buffer.alloc(0),
): { request: SipRequest; dialog: ControlDialog } {
  const seq = method === "ACK" ? dialog.localSeq : dialog.localSeq + 1;
  const request: SipRequest = {
    kind: "request",
    method,
    uri: dialog.remoteUri,
    version: "2.0",
    headers: {
      via: [
        { version: "2.0", protocol: "ACTOR", host: localNode, params: { branch: newBranch() } },
      ],
      "max-forwards": "70",
      from: { uri: dialog.localUri, params: { tag: dialog.localTag } },
      to: {
        uri: dialog.remoteUri,
        params: dialog.remoteTag ? { tag: dialog.remoteTag } : {},
      },
      "call-id": dialog.callId,
      cseq: { seq, method: method === "ACK" ? "ACK" : method },
      contact: [{ uri: dialog.localUri, params: {} }],
      ...headers,
    },
    body,
  };
  return { request, dialog: { ...dialog, localSeq: seq } };
}

/** The response to a control request, with our tag on the To. */
export function controlResponse(
  request: SipRequest,
  dialog: ControlDialog | undefined,
  status: number,
  extra: { body?: Buffer; contentType?: string; headers?: Record<string, string> } = {},
): SipResponse {
  const response = makeResponse(request, status, undefined, {
    ...(extra.headers ? { headers: extra.headers } : {}),
    ...(extra.body ? { body: extra.body } : {}),
    ...(extra.contentType ? { contentType: extra.contentType } : {}),
  });
  if (dialog && !response.headers.to.params.tag) {
    response.headers.to = {
      ...response.headers.to,
      params: { ...response.headers.to.params, tag: dialog.localTag },
    };
  }
  return response;
}

/** Takes the peer's tag from the 2xx that established the dialog. */
export function established(dialog: ControlDialog, response: SipResponse): ControlDialog {
  return { ...dialog, remoteTag: response.headers.to.params.tag ?? dialog.remoteTag };
}

export function isResponse(message: SipMessage): message is SipResponse {
  return message.kind === "response";
}

/** Bytes of a CCMP document shown on its span (the documents are small; snapshots are not). */
const MAX_TRACED_BODY = 2048;

/**
 * Sends the next request of a control dialog as mail to `to`, in a span of its own (a trace of its
 * own outside one). The dialog with its CSeq moved on comes back at once (requests may overlap);
 * the parsed response when it arrives.
 */
export function sendControl(
  router: Router,
  to: Address,
  dialog: ControlDialog,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  timeoutMs: number,
): { dialog: ControlDialog; response: Promise<SipResponse> } {
  const built = controlRequest(dialog, router.nodeId, method, headers, body);
  const span = {
    name: `ccmp ${method}`,
    attributes: {
      "sip.method": method,
      "sip.call_id": dialog.callId,
      ...(body && body.length > 0
        ? { "ccmp.document": body.toString("utf8", 0, Math.min(body.length, MAX_TRACED_BODY)) }
        : {}),
    },
  };
  const response = router
    .ask<ControlReply>(to, toMail(built.request), timeoutMs, { span })
    .then(({ raw }) => {
      const message = fromMail(raw);
      if (message.kind !== "response") throw new Error("control answer is not a response");
      return message;
    });
  return { dialog: built.dialog, response };
}
