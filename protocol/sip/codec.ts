// protocol/sip: the SIP message codec (RFC 3261 §7, §18.3, §25) between bytes and the message.ts model.
// Owns start-line and header parsing, required-header validation, canonical header names and serialisation.

import {
  formatNameAddr,
  formatVia,
  parseNameAddr,
  parseNameAddrList,
  parseUri,
  parseViaList,
} from "./headers.js";
import type { CSeq, NameAddr, SipHeaders, SipMessage, SipRequest, Via } from "./message.js";

/** A message that cannot be accepted; `reason` is a short ASCII phrase fit for a 400 response. */
export class SipParseError extends Error {
  override readonly name = "SipParseError";
  readonly reason: string;
  /** The request as far as it parsed, when Via, From, To, Call-ID and CSeq did, so a 400 can be sent. */
  readonly partial: SipRequest | undefined;

  constructor(reason: string, partial?: SipRequest) {
    super(`SIP parse error: ${reason}`);
    this.reason = reason;
    this.partial = partial;
  }
}

// ---------------------------------------------------------------------------------------------
// Header names
// ---------------------------------------------------------------------------------------------

/** RFC 3261 §7.3.3 and the IANA "Header Fields" registry compact forms. */
const COMPACT_FORMS: Record<string, string> = {
  a: "accept-contact",
  b: "referred-by",
  c: "content-type",
  d: "request-disposition",
  e: "content-encoding",
  f: "from",
  i: "call-id",
  j: "reject-contact",
  k: "supported",
  l: "content-length",
  m: "contact",
  n: "identity-info",
  o: "event",
  r: "refer-to",
  s: "subject",
  t: "to",
  u: "allow-events",
  v: "via",
  x: "session-expires",
  y: "identity",
};

/** Names whose registered spelling is not plain Title-Case (the `sip` package gets these wrong). */
const CANONICAL_NAMES = new Map<string, string>([
  ["call-id", "Call-ID"],
  ["cseq", "CSeq"],
  ["www-authenticate", "WWW-Authenticate"],
  ["sip-etag", "SIP-ETag"],
  ["sip-if-match", "SIP-If-Match"],
  ["mime-version", "MIME-Version"],
  ["content-id", "Content-ID"],
  ["session-id", "Session-ID"],
  ["min-se", "Min-SE"],
  ["rack", "RAck"],
  ["rseq", "RSeq"],
  ["p-dcs-osps", "P-DCS-OSPS"],
  ["p-dcs-billing-info", "P-DCS-Billing-Info"],
  ["p-dcs-laes", "P-DCS-LAES"],
  ["p-dcs-redirect", "P-DCS-Redirect"],
]);

const MAX_CACHED_NAMES = 512;

/** "sip-etag" → "SIP-ETag", "call-id" → "Call-ID", "cseq" → "CSeq"; unknown names → Title-Case. */
export function canonicalHeaderName(lowerName: string): string {
  const known = CANONICAL_NAMES.get(lowerName);
  if (known !== undefined) return known;
  const lower = lowerName.toLowerCase();
  const name = lower
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("-");
  // Bounded: names arrive from the network and must not grow the cache without limit.
  if (lower === lowerName && CANONICAL_NAMES.size < MAX_CACHED_NAMES)
    CANONICAL_NAMES.set(lower, name);
  return name;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

const TOKEN_CHARS = "A-Za-z0-9\\-.!%*_+`'~";
const REQUEST_LINE = new RegExp(`^([${TOKEN_CHARS}]+) (\\S+) SIP/(\\d+\\.\\d+)$`, "i");
/** Only to salvage the parts of a sloppy Request-Line so that a 400 can still be answered. */
const LOOSE_REQUEST_LINE = new RegExp(
  `^([${TOKEN_CHARS}]+)[ \\t]+(.*?)[ \\t]*SIP/(\\d+\\.\\d+)[ \\t]*$`,
  "i",
);
const STATUS_LINE = /^SIP\/(\d+\.\d+) (\d{3})(?: ([^\r\n]*))?$/i;
const HEADER_NAME = new RegExp(`^[${TOKEN_CHARS}]+$`);
const CSEQ = new RegExp(`^(\\d{1,10})[ \\t]+([${TOKEN_CHARS}]+)$`);
const CALL_ID = /^[\x21-\x7e]+$/;
const REQUEST_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"]+$/;
const MAX_CSEQ = 4294967295;

const REQUIRED = ["via", "from", "to", "call-id", "cseq"] as const;
/** Headers that may occur once only (a second one would make the message ambiguous). */
const SINGLE = new Set(["to", "from", "call-id", "cseq", "content-length", "max-forwards"]);
const HEADER_END = Buffer.from("\r\n\r\n", "latin1");
const EMPTY = Buffer.alloc(0);

function trimWs(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function setHeader(headers: Record<string, unknown>, name: string, value: unknown): void {
  if (name === "__proto__") {
    Object.defineProperty(headers, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    headers[name] = value;
  }
}

interface StartLine {
  request?: { method: string; uri: string; version: string };
  response?: { status: number; reason: string; version: string };
  /** Set when the line is malformed; `request` may still hold salvaged parts for a partial. */
  error?: string;
}

function parseStartLine(line: string): StartLine {
  const request = REQUEST_LINE.exec(line);
  if (request) {
    const [, method = "", uri = "", version = ""] = request;
    const parts = { method, uri, version };
    if (!REQUEST_URI.test(uri)) return { request: parts, error: "Malformed Request-URI" };
    const scheme = uri.slice(0, uri.indexOf(":")).toLowerCase();
    if (scheme === "sip" || scheme === "sips") {
      // RFC 4475 §3.1.2.11: escaped headers have no meaning in a Request-URI.
      const parsed = parseUri(uri);
      if (!parsed || Object.keys(parsed.headers).length > 0) {
        return { request: parts, error: "Malformed Request-URI" };
      }
    }
    return { request: parts };
  }
  const status = STATUS_LINE.exec(line);
  if (status) {
    const code = Number(status[2]);
    if (code < 100 || code > 699) return { error: "Malformed Status-Line" };
    return { response: { status: code, reason: status[3] ?? "", version: status[1] ?? "" } };
  }
  const loose = LOOSE_REQUEST_LINE.exec(line);
  if (loose) {
    const [, method = "", uri = "", version = ""] = loose;
    return { request: { method, uri, version }, error: "Malformed Request-Line" };
  }
  return { error: line.startsWith("SIP/") ? "Malformed Status-Line" : "Malformed Start-Line" };
}

/**
 * Splits the header section (after the start line) into unfolded [lowerName, value] pairs. A bad line is
 * skipped and reported, so that the other headers can still make a partial request for the 400.
 */
function headerLines(lines: string[]): { pairs: Array<[string, string]>; error?: string } {
  const pairs: Array<[string, string]> = [];
  let error: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? "";
    // A bare CR or LF is no line break (RFC 3261 §7): refuse it rather than store it and echo it later.
    if (line.includes("\r") || line.includes("\n")) {
      error ??= "Malformed header line";
      continue;
    }
    const first = line.charCodeAt(0);
    if (first === 32 || first === 9) {
      // RFC 3261 §7.3.1: a continuation line is equivalent to a single SP.
      const last = pairs[pairs.length - 1];
      if (last) last[1] = `${last[1]} ${trimWs(line)}`;
      else error ??= "Malformed header line";
      continue;
    }
    const colon = line.indexOf(":");
    const rawName = colon > 0 ? trimWs(line.slice(0, colon)) : "";
    if (!HEADER_NAME.test(rawName)) {
      error ??= "Malformed header line";
      continue;
    }
    let name = rawName.toLowerCase();
    if (name.length === 1) name = COMPACT_FORMS[name] ?? name;
    pairs.push([name, line.slice(colon + 1)]);
  }
  return error === undefined ? { pairs } : { pairs, error };
}

/** A request's line and the headers a span reads (transport/sip-span.ts), as parseMessage reads them. */
export interface RequestHead {
  method: string;
  uri: string;
  callId?: string;
  from?: NameAddr | undefined;
  to?: NameAddr | undefined;
}

/** First bytes of the header names a span reads: Call-ID (i), From (f), To (t), either case. */
const SPAN_HEADER_START = new Set([0x43, 0x63, 0x49, 0x69, 0x46, 0x66, 0x54, 0x74]);

/**
 * The request line, Call-ID, From and To of a request's head (its headers may be all there is),
 * read as `parseMessage` reads them — the first of each, folded lines joined, compact forms —
 * but leaving every other line as bytes: a span's attributes, read in the export worker.
 * Undefined when it starts with no request line.
 */
export function readRequestHead(data: Buffer): RequestHead | undefined {
  let start = 0;
  while (start < data.length && (data[start] === 13 || data[start] === 10)) start++;
  let end = data.indexOf(HEADER_END, start);
  if (end < 0) end = data.length;
  // A loop, not Buffer#indexOf: lines are short, and a native call per line costs more.
  const lineEnd = (from: number): number => {
    for (let at = from; at + 1 < end; at++) if (data[at] === 13 && data[at + 1] === 10) return at;
    return end;
  };
  let next = lineEnd(start);
  const line = data.toString("latin1", start, next);
  const request = REQUEST_LINE.exec(line) ?? LOOSE_REQUEST_LINE.exec(line);
  if (!request) return undefined;
  const head: RequestHead = { method: request[1] ?? "", uri: request[2] ?? "" };
  for (let at = next + 2; at < end; at = next + 2) {
    next = lineEnd(at);
    if (!SPAN_HEADER_START.has(data[at] ?? 0)) continue;
    let text = data.toString("latin1", at, next);
    // RFC 3261 §7.3.1: a continuation line is equivalent to a single SP.
    while (next < end && (data[next + 2] === 32 || data[next + 2] === 9)) {
      const after = lineEnd(next + 2);
      text = `${text} ${trimWs(data.toString("latin1", next + 2, after))}`;
      next = after;
    }
    const colon = text.indexOf(":");
    if (colon <= 0) continue;
    let name = trimWs(text.slice(0, colon)).toLowerCase();
    if (name.length === 1) name = COMPACT_FORMS[name] ?? name;
    const value = trimWs(text.slice(colon + 1));
    if (name === "call-id") head.callId ??= value;
    else if (name === "from") head.from ??= parseNameAddr(value);
    else if (name === "to") head.to ??= parseNameAddr(value);
  }
  return head;
}

/** Parses one whole message: a UDP datagram or a message cut out of a stream by StreamFramer. */
export function parseMessage(data: Buffer): SipMessage {
  let start = 0;
  // RFC 3261 §7.5: CRLFs before the start line are ignored (RFC 5626 keep-alives end up here too).
  while (start < data.length && (data[start] === 13 || data[start] === 10)) start++;
  const headEnd = data.indexOf(HEADER_END, start);
  if (headEnd < 0)
    throw new SipParseError(start === data.length ? "Empty message" : "Incomplete header section");
  const lines = data.toString("latin1", start, headEnd).split("\r\n");
  const startLine = parseStartLine(lines[0] ?? "");
  if (!startLine.request && !startLine.response)
    throw new SipParseError(startLine.error ?? "Malformed Start-Line");

  const { pairs, error: lineError } = headerLines(lines);
  const headers: Record<string, unknown> = {};
  let error = startLine.error ?? lineError;
  let contentLength: number | undefined;
  const seen = new Set<string>();
  for (const [name, rawValue] of pairs) {
    const value = trimWs(rawValue);
    if (SINGLE.has(name)) {
      if (seen.has(name)) {
        error ??= `Duplicate ${canonicalHeaderName(name)} header`;
        continue;
      }
      seen.add(name);
    }
    switch (name) {
      case "via": {
        const vias = parseViaList(value);
        if (!vias) error ??= "Malformed Via header";
        else {
          const existing = headers.via as Via[] | undefined;
          if (existing) existing.push(...vias);
          else headers.via = vias;
        }
        break;
      }
      case "to":
      case "from": {
        const parsed = parseNameAddr(value);
        if (!parsed) error ??= `Malformed ${canonicalHeaderName(name)} header`;
        else headers[name] = parsed;
        break;
      }
      case "contact":
      case "route":
      case "record-route": {
        let list: NameAddr[] | undefined;
        if (value === "*" && name === "contact") {
          list = startLine.request?.method === "REGISTER" ? [{ uri: "*", params: {} }] : undefined;
        } else {
          list = parseNameAddrList(value);
        }
        if (!list) error ??= `Malformed ${canonicalHeaderName(name)} header`;
        else {
          const existing = headers[name] as NameAddr[] | undefined;
          if (existing && (existing[0]?.uri === "*" || list[0]?.uri === "*")) {
            error ??= "Malformed Contact header";
          } else if (existing) existing.push(...list);
          else headers[name] = list;
        }
        break;
      }
      case "call-id":
        if (!CALL_ID.test(value)) error ??= "Malformed Call-ID header";
        else headers["call-id"] = value;
        break;
      case "cseq": {
        const m = CSEQ.exec(value);
        const seq = Number(m?.[1]);
        if (!m || seq > MAX_CSEQ) error ??= "Malformed CSeq header";
        else headers.cseq = { seq, method: m[2] ?? "" } satisfies CSeq;
        break;
      }
      case "content-length":
        // Not kept as a header: the body length is the truth, and serialisation recomputes it.
        if (!/^\d{1,10}$/.test(value)) error ??= "Malformed Content-Length header";
        else contentLength = Number(value);
        break;
      default: {
        const existing = headers[name];
        setHeader(headers, name, typeof existing === "string" ? `${existing}, ${value}` : value);
      }
    }
  }

  for (const name of REQUIRED) {
    if (headers[name] === undefined) error ??= `Missing ${canonicalHeaderName(name)}`;
  }
  const request = startLine.request;
  const cseq = headers.cseq as CSeq | undefined;
  if (request && cseq && cseq.method !== request.method)
    error ??= "CSeq method does not match Request-Line";

  const bodyStart = headEnd + 4;
  let bodyEnd = data.length;
  if (contentLength !== undefined) {
    if (bodyStart + contentLength > data.length) error ??= "Content-Length larger than body";
    else bodyEnd = bodyStart + contentLength;
  }

  const typed = headers as SipHeaders;
  if (error !== undefined) {
    const complete = request !== undefined && REQUIRED.every((name) => headers[name] !== undefined);
    throw new SipParseError(
      error,
      complete ? { kind: "request", ...request, headers: typed, body: EMPTY } : undefined,
    );
  }
  const body =
    bodyEnd > bodyStart ? Buffer.from(data.subarray(bodyStart, bodyEnd)) : Buffer.alloc(0);
  if (request) return { kind: "request", ...request, headers: typed, body };
  const response = startLine.response as NonNullable<StartLine["response"]>;
  return { kind: "response", ...response, headers: typed, body };
}

// ---------------------------------------------------------------------------------------------
// Serialisation
// ---------------------------------------------------------------------------------------------

function isNameAddr(value: unknown): value is NameAddr {
  return typeof value === "object" && value !== null && typeof (value as NameAddr).uri === "string";
}

function formatValue(name: string, value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (name === "cseq") {
    const cseq = value as CSeq;
    return `${cseq.seq} ${cseq.method}`;
  }
  if (Array.isArray(value) && value.every(isNameAddr)) return value.map(formatNameAddr).join(", ");
  if (isNameAddr(value)) return formatNameAddr(value);
  throw new TypeError(`SIP header ${name} has an unserialisable value`);
}

const FORBIDDEN_IN_LINE = /[\r\n]/;
const NOT_A_BYTE_STRING = /[\u0100-\uffff]/;

/**
 * Serialises a message: Via first, then the other headers in stored order, Content-Length (body bytes)
 * last. Throws TypeError when a value would break the framing (CR/LF) or is not a latin1 byte string.
 */
export function serializeMessage(message: SipMessage): Buffer {
  let head =
    message.kind === "request"
      ? `${message.method} ${message.uri} SIP/${message.version}\r\n`
      : `SIP/${message.version} ${message.status} ${message.reason}\r\n`;
  if (FORBIDDEN_IN_LINE.test(head.slice(0, -2)))
    throw new TypeError("SIP start line contains CR or LF");
  for (const via of message.headers.via) head += `Via: ${formatVia(via)}\r\n`;
  const headers = message.headers as Record<string, unknown>;
  for (const name in headers) {
    if (name === "via" || name === "content-length") continue;
    const value = headers[name];
    if (value === undefined) continue;
    const text = formatValue(name, value);
    if (FORBIDDEN_IN_LINE.test(text)) throw new TypeError(`SIP header ${name} contains CR or LF`);
    head += `${canonicalHeaderName(name)}: ${text}\r\n`;
  }
  head += `Content-Length: ${message.body.length}\r\n\r\n`;
  if (NOT_A_BYTE_STRING.test(head)) {
    throw new TypeError("SIP header values must be latin1 byte strings (encode UTF-8 text first)");
  }
  const out = Buffer.allocUnsafe(head.length + message.body.length);
  out.write(head, 0, "latin1");
  message.body.copy(out, head.length);
  return out;
}
