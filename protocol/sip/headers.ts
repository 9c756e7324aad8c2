// protocol/sip: header-level grammar of RFC 3261 §25 (params, name-addr, Via, SIP URIs), random tokens and
// response building. Pure functions over latin1 byte strings; codec.ts calls the structured parsers here.

import { randomBytes, randomFillSync } from "node:crypto";
import type { NameAddr, SipHeaders, SipMessage, SipRequest, SipResponse, Via } from "./message.js";

// ---------------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1)
// ---------------------------------------------------------------------------------------------

const TOKEN = 1;
const WS = 2;
const HOST = 4;
/** Unquoted gen-value: token or host (IPv6 references and raw IPv6 in `received` need ":[]"). */
const PARAM_VALUE = 8;

const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  const alnum = /[A-Za-z0-9]/.test(ch);
  if (alnum || "-.!%*_+`'~".includes(ch)) CLASS[c] = (CLASS[c] ?? 0) | TOKEN | PARAM_VALUE;
  if (alnum || "-._".includes(ch)) CLASS[c] = (CLASS[c] ?? 0) | HOST;
  if (":[]".includes(ch)) CLASS[c] = (CLASS[c] ?? 0) | PARAM_VALUE;
}
CLASS[32] = WS;
CLASS[9] = WS;

function is(s: string, i: number, kind: number): boolean {
  const c = s.charCodeAt(i);
  return c < 256 && ((CLASS[c] as number) & kind) !== 0;
}

function skipWs(s: string, i: number): number {
  let c = s.charCodeAt(i);
  while (c === 32 || c === 9) c = s.charCodeAt(++i);
  return i;
}

function scan(s: string, i: number, kind: number): number {
  let c = s.charCodeAt(i);
  while (c < 256 && ((CLASS[c] as number) & kind) !== 0) c = s.charCodeAt(++i);
  return i;
}

/** Index just past the closing quote of the quoted-string opening at `i`, or -1 when unterminated. */
function scanQuoted(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 34) return j + 1;
    if (c === 92) j++;
  }
  return -1;
}

/** Contents of a quoted-string (quotes included in `raw`) with quoted-pairs resolved. */
function unquote(raw: string): string {
  const inner = raw.slice(1, -1);
  return inner.includes("\\") ? inner.replace(/\\([\s\S])/g, "$1") : inner;
}

function quote(value: string): string {
  // quoted-pair covers every octet but CR and LF, which a header value can never carry.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these control octets are exactly what needs escaping
  return `"${value.replace(/["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, "\\$&")}"`;
}

function isToken(value: string): boolean {
  return value.length > 0 && scan(value, 0, TOKEN) === value.length;
}

/** Own-property write that also works for a parameter literally named `__proto__`. */
function put<T>(record: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__") {
    Object.defineProperty(record, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    record[key] = value;
  }
}

// ---------------------------------------------------------------------------------------------
// Random tokens
// ---------------------------------------------------------------------------------------------

/**
 * Random bytes are drawn from the CSPRNG 4 KiB at a time and each used once: one
 * `randomBytes` call per token was 7% of a watcher call's CPU (two tags, branches, ETags).
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let poolAt = POOL_BYTES;

/** Crypto-random base64url token ([A-Za-z0-9_-]), for tags, Call-IDs, ETags and branches. */
export function randomToken(bytes = 12): string {
  if (bytes > POOL_BYTES / 8) return randomBytes(bytes).toString("base64url");
  if (poolAt + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const token = pool.toString("base64url", poolAt, poolAt + bytes);
  poolAt += bytes;
  return token;
}

/** An RFC 3261 §8.1.1.7 branch: the magic cookie plus 96 random bits (`sip` uses 6 random digits). */
export function newBranch(): string {
  return `z9hG4bK${randomToken()}`;
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/**
 * Scans `*( SEMI generic-param )` from `i` into `params` (names lower-cased, quoted values unquoted).
 * Returns the index of the first character that is not part of a parameter, or -1 on a malformed one.
 */
function scanParams(s: string, i: number, params: Record<string, string | null>): number {
  for (;;) {
    let j = skipWs(s, i);
    if (s.charCodeAt(j) !== 59) return j;
    j = skipWs(s, j + 1);
    const nameEnd = scan(s, j, TOKEN);
    if (nameEnd === j) return -1;
    const name = s.slice(j, nameEnd).toLowerCase();
    j = skipWs(s, nameEnd);
    let value: string | null = null;
    if (s.charCodeAt(j) === 61) {
      j = skipWs(s, j + 1);
      if (s.charCodeAt(j) === 34) {
        const end = scanQuoted(s, j);
        if (end < 0) return -1;
        value = unquote(s.slice(j, end));
        j = end;
      } else {
        const end = scan(s, j, PARAM_VALUE);
        if (end === j) return -1;
        value = s.slice(j, end);
        j = end;
      }
    } else {
      j = nameEnd;
    }
    if (!Object.hasOwn(params, name)) put(params, name, value);
    i = j;
  }
}

/**
 * Splits `value;name=v;flag` (Event, Subscription-State, Content-Type…). Names are lower-cased,
 * quoted values unquoted; a malformed tail is read leniently rather than rejected.
 */
export function parseParams(value: string): {
  value: string;
  params: Record<string, string | null>;
} {
  const semi = value.indexOf(";");
  if (semi < 0) return { value: value.trim(), params: {} };
  const params: Record<string, string | null> = {};
  const end = scanParams(value, semi, params);
  if (end === value.length) return { value: value.slice(0, semi).trim(), params };
  const lenient: Record<string, string | null> = {};
  for (const part of value.slice(semi + 1).split(";")) {
    const eq = part.indexOf("=");
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === "" || Object.hasOwn(lenient, name)) continue;
    const raw = eq < 0 ? null : part.slice(eq + 1).trim();
    put(lenient, name, raw !== null && raw.length >= 2 && raw.startsWith('"') ? unquote(raw) : raw);
  }
  return { value: value.slice(0, semi).trim(), params: lenient };
}

/** `;name=value;flag`, quoting values that are neither token nor host. */
export function formatParams(params: Record<string, string | null>): string {
  let out = "";
  for (const name in params) {
    const value = params[name];
    if (value === undefined) continue;
    if (value === null) out += `;${name}`;
    else if (value.length > 0 && scan(value, 0, PARAM_VALUE) === value.length)
      out += `;${name}=${value}`;
    else out += `;${name}=${quote(value)}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// name-addr / addr-spec (To, From, Contact, Route, Record-Route)
// ---------------------------------------------------------------------------------------------

const URI_SHAPE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s"<>]+$/;

function parseNameAddrAt(s: string, i: number): { value: NameAddr; end: number } | undefined {
  let j = skipWs(s, i);
  let name: string | undefined;
  let bracketed = false;
  if (s.charCodeAt(j) === 34) {
    const end = scanQuoted(s, j);
    if (end < 0) return undefined;
    name = unquote(s.slice(j, end));
    j = skipWs(s, end);
    if (s.charCodeAt(j) !== 60) return undefined;
    bracketed = true;
  } else {
    let k = j;
    while (is(s, k, TOKEN | WS)) k++;
    if (s.charCodeAt(k) === 60) {
      const display = s
        .slice(j, k)
        .trim()
        .replace(/[ \t]+/g, " ");
      if (display !== "") name = display;
      j = k;
      bracketed = true;
    }
  }
  let uri: string;
  if (bracketed) {
    const close = s.indexOf(">", j + 1);
    if (close < 0) return undefined;
    uri = s.slice(j + 1, close);
    j = close + 1;
  } else {
    // RFC 3261 §20.10: an addr-spec outside <> cannot hold ";", "," or "?" — they belong to the header.
    let k = j;
    for (; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c === 59 || c === 44 || c === 32 || c === 9) break;
    }
    uri = s.slice(j, k);
    if (uri.includes("?")) return undefined;
    j = k;
  }
  if (!URI_SHAPE.test(uri)) return undefined;
  const params: Record<string, string | null> = {};
  const end = scanParams(s, j, params);
  if (end < 0) return undefined;
  const value: NameAddr = name === undefined ? { uri, params } : { name, uri, params };
  return { value, end };
}

/** One name-addr or addr-spec with its header params (To, From); undefined when malformed. */
export function parseNameAddr(value: string): NameAddr | undefined {
  const r = parseNameAddrAt(value, 0);
  if (!r || skipWs(value, r.end) !== value.length) return undefined;
  return r.value;
}

/** A comma-separated list of name-addrs (Contact, Route, Record-Route); undefined when malformed. */
export function parseNameAddrList(value: string): NameAddr[] | undefined {
  const out: NameAddr[] = [];
  let i = 0;
  for (;;) {
    const r = parseNameAddrAt(value, i);
    if (!r) return undefined;
    out.push(r.value);
    const j = skipWs(value, r.end);
    if (j === value.length) return out;
    if (value.charCodeAt(j) !== 44) return undefined;
    i = j + 1;
  }
}

/** `"Display" <sip:a@b>;tag=x`; the display name is quoted unless it is a plain token sequence. */
export function formatNameAddr(value: NameAddr): string {
  // A REGISTER's `Contact: *` travels as the single entry { uri: "*" }.
  if (value.uri === "*") return "*";
  let out = "";
  if (value.name !== undefined && value.name !== "") {
    const plain = value.name.split(" ").every(isToken);
    out = `${plain ? value.name : quote(value.name)} `;
  }
  return `${out}<${value.uri}>${formatParams(value.params)}`;
}

// ---------------------------------------------------------------------------------------------
// Via
// ---------------------------------------------------------------------------------------------

const IPV6_REFERENCE = /^\[[0-9A-Fa-f:.]+\]$/;

/** Parses a Via header value (one or more comma-separated via-parms), top first; undefined when malformed. */
export function parseViaList(value: string): Via[] | undefined {
  const out: Via[] = [];
  let i = 0;
  for (;;) {
    let j = skipWs(value, i);
    let k = scan(value, j, TOKEN);
    if (value.slice(j, k).toUpperCase() !== "SIP") return undefined;
    j = skipWs(value, k);
    if (value.charCodeAt(j) !== 47) return undefined;
    j = skipWs(value, j + 1);
    k = scan(value, j, TOKEN);
    if (k === j) return undefined;
    const version = value.slice(j, k);
    j = skipWs(value, k);
    if (value.charCodeAt(j) !== 47) return undefined;
    j = skipWs(value, j + 1);
    k = scan(value, j, TOKEN);
    if (k === j) return undefined;
    const protocol = value.slice(j, k).toUpperCase();
    j = skipWs(value, k);
    if (j === k) return undefined;
    let host: string;
    if (value.charCodeAt(j) === 91) {
      k = value.indexOf("]", j);
      if (k < 0) return undefined;
      host = value.slice(j, k + 1);
      if (!IPV6_REFERENCE.test(host)) return undefined;
      k++;
    } else {
      k = scan(value, j, HOST);
      if (k === j) return undefined;
      host = value.slice(j, k);
    }
    j = skipWs(value, k);
    let port: number | undefined;
    if (value.charCodeAt(j) === 58) {
      j = skipWs(value, j + 1);
      k = j;
      while (
        k < value.length &&
        k - j < 6 &&
        value.charCodeAt(k) >= 48 &&
        value.charCodeAt(k) <= 57
      )
        k++;
      port = Number(value.slice(j, k));
      if (k === j || port > 65535) return undefined;
      j = k;
    }
    const params: Record<string, string | null> = {};
    j = scanParams(value, j, params);
    if (j < 0) return undefined;
    out.push(
      port === undefined
        ? { version, protocol, host, params }
        : { version, protocol, host, port, params },
    );
    j = skipWs(value, j);
    if (j === value.length) return out;
    if (value.charCodeAt(j) !== 44) return undefined;
    i = j + 1;
  }
}

/** `SIP/2.0/UDP host:port;branch=…` (one via-parm). */
export function formatVia(via: Via): string {
  const port = via.port === undefined ? "" : `:${via.port}`;
  return `SIP/${via.version}/${via.protocol} ${via.host}${port}${formatParams(via.params)}`;
}

// ---------------------------------------------------------------------------------------------
// SIP URIs (RFC 3261 §19.1)
// ---------------------------------------------------------------------------------------------

export interface SipUri {
  scheme: "sip" | "sips";
  /** The userinfo before "@" (a deprecated password stays in it, after ":"). */
  user?: string;
  /** As written; IPv6 references keep their brackets. */
  host: string;
  port?: number;
  /** URI parameters, names lower-cased. */
  params: Record<string, string | null>;
  headers: Record<string, string>;
}

const URI_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?)$/;
const URI_USERINFO = /^[^\s"<>@[\]]+$/;

/** Parses a sip:/sips: URI; undefined for other schemes or malformed ones. */
export function parseUri(uri: string): SipUri | undefined {
  const colon = uri.indexOf(":");
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme !== "sip" && scheme !== "sips") return undefined;
  let rest = uri.slice(colon + 1);
  let user: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    if (!URI_USERINFO.test(user)) return undefined;
    rest = rest.slice(at + 1);
  }
  let headersPart: string | undefined;
  const question = rest.indexOf("?");
  if (question >= 0) {
    headersPart = rest.slice(question + 1);
    rest = rest.slice(0, question);
  }
  const parts = rest.split(";");
  const hostPort = parts[0] ?? "";
  let host = hostPort;
  let port: number | undefined;
  const portColon = hostPort.lastIndexOf(":");
  if (portColon >= 0 && portColon > hostPort.lastIndexOf("]")) {
    const digits = hostPort.slice(portColon + 1);
    if (!/^\d{1,5}$/.test(digits) || Number(digits) > 65535) return undefined;
    port = Number(digits);
    host = hostPort.slice(0, portColon);
  }
  if (!URI_HOST.test(host)) return undefined;
  const params: Record<string, string | null> = {};
  for (let p = 1; p < parts.length; p++) {
    const part = parts[p] ?? "";
    const eq = part.indexOf("=");
    const name = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    if (name === "" || /[\s"<>]/.test(part)) return undefined;
    if (!Object.hasOwn(params, name)) put(params, name, eq < 0 ? null : part.slice(eq + 1));
  }
  const headers: Record<string, string> = {};
  if (headersPart !== undefined) {
    for (const pair of headersPart.split("&")) {
      const eq = pair.indexOf("=");
      if (eq <= 0 || /[\s"<>]/.test(pair)) return undefined;
      put(headers, pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  const out: SipUri = { scheme, host, params, headers };
  if (user !== undefined) out.user = user;
  if (port !== undefined) out.port = port;
  return out;
}

export function formatUri(uri: SipUri): string {
  let out = `${uri.scheme}:`;
  if (uri.user !== undefined) out += `${uri.user}@`;
  out += uri.host;
  if (uri.port !== undefined) out += `:${uri.port}`;
  for (const name in uri.params) {
    const value = uri.params[name];
    if (value === undefined) continue;
    out += value === null ? `;${name}` : `;${name}=${value}`;
  }
  const headers = Object.entries(uri.headers);
  if (headers.length > 0) out += `?${headers.map(([name, value]) => `${name}=${value}`).join("&")}`;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Header value helpers
// ---------------------------------------------------------------------------------------------

const MAX_DELTA_SECONDS = 4294967295;

/**
 * The Expires header as delta-seconds: undefined when absent, "invalid" when not 1*DIGIT.
 * Values beyond 2^32-1 are clamped to it (RFC 4475 §3.1.2.4 allows treating them so).
 */
export function expiresOf(message: SipMessage): number | undefined | "invalid" {
  const raw = message.headers.expires;
  if (raw === undefined) return undefined;
  if (typeof raw !== "string") return "invalid";
  const value = raw.trim();
  if (!/^\d+$/.test(value)) return "invalid";
  return value.length > 10 ? MAX_DELTA_SECONDS : Math.min(Number(value), MAX_DELTA_SECONDS);
}

/** Accept / Content-Type values → lower-case "type/subtype" list, params dropped, malformed entries skipped. */
export function mediaTypes(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  // Commas inside quoted parameter values (e.g. a multipart boundary) do not separate entries.
  for (const entry of value.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
    const semi = entry.indexOf(";");
    const type = (semi < 0 ? entry : entry.slice(0, semi)).replace(/[ \t]+/g, "").toLowerCase();
    const slash = type.indexOf("/");
    if (slash > 0 && isToken(type.slice(0, slash)) && isToken(type.slice(slash + 1)))
      out.push(type);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

const REASONS: Record<number, string> = {
  100: "Trying",
  180: "Ringing",
  181: "Call Is Being Forwarded",
  182: "Queued",
  183: "Session Progress",
  199: "Early Dialog Terminated",
  200: "OK",
  202: "Accepted",
  204: "No Notification",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Moved Temporarily",
  305: "Use Proxy",
  380: "Alternative Service",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  410: "Gone",
  412: "Conditional Request Failed",
  413: "Request Entity Too Large",
  414: "Request-URI Too Long",
  415: "Unsupported Media Type",
  416: "Unsupported URI Scheme",
  417: "Unknown Resource-Priority",
  420: "Bad Extension",
  421: "Extension Required",
  422: "Session Interval Too Small",
  423: "Interval Too Brief",
  429: "Provide Referrer Identity",
  430: "Flow Failed",
  433: "Anonymity Disallowed",
  439: "First Hop Lacks Outbound Support",
  470: "Consent Needed",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  482: "Loop Detected",
  483: "Too Many Hops",
  484: "Address Incomplete",
  485: "Ambiguous",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  489: "Bad Event",
  491: "Request Pending",
  493: "Undecipherable",
  494: "Security Agreement Required",
  500: "Server Internal Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Server Time-out",
  505: "Version Not Supported",
  513: "Message Too Large",
  580: "Precondition Failure",
  600: "Busy Everywhere",
  603: "Decline",
  604: "Does Not Exist Anywhere",
  606: "Not Acceptable",
  607: "Unwanted",
};

const CLASS_REASONS = [
  "Unknown",
  "Provisional",
  "Success",
  "Redirection",
  "Client Error",
  "Server Error",
  "Global Failure",
];

/** Reason phrase for a status code (RFC 3261 §21, RFC 3265/6665, RFC 3903 and friends); the class name otherwise. */
export function defaultReason(status: number): string {
  return REASONS[status] ?? CLASS_REASONS[Math.floor(status / 100)] ?? "Unknown";
}

function cloneNameAddr(value: NameAddr): NameAddr {
  return { ...value, params: { ...value.params } };
}

/**
 * A response to `request` (RFC 3261 §8.2.6.2): copies Via, From, To, Call-ID and CSeq (cloned, so adding the
 * To tag never touches the request). `extra.headers` keys are header names (any case); `contentType` sets
 * Content-Type. Record-Route copying for dialog-creating responses is left to the dialog layer.
 */
export function makeResponse(
  request: SipRequest,
  status: number,
  reason?: string,
  extra?: { headers?: Record<string, string | NameAddr[]>; body?: Buffer; contentType?: string },
): SipResponse {
  const source = request.headers;
  const headers: SipHeaders = {
    via: source.via.map((via) => ({ ...via, params: { ...via.params } })),
    from: cloneNameAddr(source.from),
    to: cloneNameAddr(source.to),
    "call-id": source["call-id"],
    cseq: { ...source.cseq },
  };
  if (extra?.headers) {
    for (const [name, value] of Object.entries(extra.headers)) {
      put(
        headers,
        name.toLowerCase(),
        typeof value === "string" ? value : value.map(cloneNameAddr),
      );
    }
  }
  if (extra?.contentType !== undefined) headers["content-type"] = extra.contentType;
  return {
    kind: "response",
    status,
    reason: reason ?? defaultReason(status),
    version: "2.0",
    headers,
    body: extra?.body ?? Buffer.alloc(0),
  };
}
