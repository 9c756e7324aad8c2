// protocol/sip: the SIP message model every layer shares (plain data, no I/O).
// Header values are byte strings (latin1, one char per octet) so they round-trip exactly; bodies are Buffers.

/** A name-addr or addr-spec header value (To, From, Contact, Route, Record-Route). */
export interface NameAddr {
  name?: string;
  uri: string;
  params: Record<string, string | null>;
}

export interface Via {
  version: string;
  protocol: string;
  host: string;
  port?: number;
  params: Record<string, string | null>;
}

export interface CSeq {
  seq: number;
  method: string;
}

/**
 * Headers keyed by lower-case long-form name. The structured ones are parsed;
 * every other header is kept as its raw value (several occurrences joined by ", ").
 */
export interface SipHeaders {
  via: Via[];
  to: NameAddr;
  from: NameAddr;
  "call-id": string;
  cseq: CSeq;
  contact?: NameAddr[];
  route?: NameAddr[];
  "record-route"?: NameAddr[];
  [name: string]: unknown;
}

export interface SipRequest {
  kind: "request";
  method: string;
  uri: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export interface SipResponse {
  kind: "response";
  status: number;
  reason: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

export type TransportName = "udp" | "tcp";

/** Where a message came from or goes to; `connectionId` pins a TCP connection when one exists. */
export interface Peer {
  transport: TransportName;
  address: string;
  port: number;
  connectionId?: string;
}

/** A generic (string-valued) header, or undefined when absent. */
export function headerValue(message: SipMessage, name: string): string | undefined {
  const value = message.headers[name.toLowerCase()];
  return typeof value === "string" ? value : undefined;
}
