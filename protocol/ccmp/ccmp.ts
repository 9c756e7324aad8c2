// protocol/ccmp: extended CCMP — RFC 6503 ccmpRequest/ccmpResponse carrying the paper's control elements.
// Owns the wire form of application/extd-ccmp bodies between presence servers (ccmp.xsd, extd-ccmp.xsd beside it).

/*
 * WHY CCMP. The paper reuses RFC 6503 (CCMP), normally HTTP-carried conference control, as the
 * control protocol between presence servers, run inside a SIP session whose bodies have
 * Content-Type application/extd-ccmp. Its own elements (Fig. 4) ride in RFC 6503's extension
 * message, so a message is a plain ccmpRequest/ccmpResponse and a CCMP tool can read it.
 *
 * THE FOUR MESSAGES (CCMP namespace prefix "ccmp", ours "ex", local CCMP elements unqualified as in
 * the RFC schema, the message type picked by xsi:type on the inner element as in RFC 6503's examples):
 *
 *   request ("extendedRequest")             response ("extendedResponse")
 *   <ccmp:ccmpRequest xmlns:ccmp=… xmlns:ex=… xmlns:xsi=…>
 *     <ccmpRequest xsi:type="ccmp:ccmp-extended-request-message-type">
 *       <confUserID>sip:primary@10.0.0.1</confUserID>  ← REQUIRED here (RFC 6503 §5.1 makes it
 *       <confObjID>…</confObjID>                         optional only for a user without an
 *       <operation>retrieve</operation>                  XCON-USERID joining a conference)
 *       <ccmp:extendedRequest>
 *         <extensionName>load-report</extensionName>
 *         <ex:pressvr-load>
 *           <ex:curr-load-level svr-id="s1">42.5</ex:curr-load-level>
 *         </ex:pressvr-load>
 *         <ex:pres-sys-users svr-id="s1" count="2"><ex:user>sip:a@b</ex:user>…</ex:pres-sys-users>
 *         <ex:redirection-usr-addr>sip:watcher@host</ex:redirection-usr-addr>
 *         <ex:svr-pool><ex:svr svr-id="p1" contact="sip:p1@127.0.0.1:5066"/></ex:svr-pool>
 *         <ex:actv-svr-nums>3</ex:actv-svr-nums>
 *         <ex:max-load>100</ex:max-load>
 *         <ex:min-load>20</ex:min-load>
 *       </ccmp:extendedRequest>
 *     </ccmpRequest>
 *   </ccmp:ccmpRequest>
 *
 *   A response is <ccmp:ccmpResponse><ccmpResponse xsi:type="ccmp:ccmp-extended-response-message-type">
 *   with confUserID, confObjID?, operation?, response-code, response-string?, version?, then
 *   <ccmp:extendedResponse> holding the same content as extendedRequest.
 *
 *   optionsRequest: xsi:type "ccmp:ccmp-options-request-message-type" with only <confUserID> (RFC 6503
 *   gives it no body element). optionsResponse: xsi:type "ccmp:ccmp-options-response-message-type",
 *   <confUserID>, <response-code>, then
 *     <ccmp:optionsResponse><ex:extended-messages><ex:name>load-report</ex:name>…</ex:extended-messages>
 *   Why not RFC 6503's own <options>: its options-type requires a <standard-message-list> with at
 *   least one standard conference message (we implement none) and its <extended-message-list> holds
 *   a single <extended-message>, whose <schema-def> is mandatory. The optionsResponse wildcard is
 *   the RFC's place for anything else. A received <options> is accepted and skipped.
 *
 * EXTENSION NAMES (extensionName; EXTENSIONS, what an optionsResponse advertises). Conventions for the
 * handlers, not codec rules: any element may ride on any extension, the handler checks what it needs.
 *   session        primary → a server, in the INVITE that opens the control session: the system's
 *                  settings (<max-load>, <min-load>, <actv-svr-nums>, <svr-pool>).
 *   ready          a promoted server → the primary, once it holds the presence data: take watchers.
 *   drained        a draining server → the primary: its watchers and presentities are gone; BYE me.
 *   load-report    request from the primary (operation retrieve): report your load. The response
 *                  carries <pressvr-load> with the server's <curr-load-level> and its
 *                  <pres-sys-users> (count, and AORs when asked). A server may push the same unasked
 *                  as a request with operation update.
 *   redirect-user  primary → the least-loaded server: <redirection-usr-addr> names the watcher that
 *                  server is to take; it answers 200 and sends the watcher the SIP 3xx itself.
 *   server-pool    primary → servers: the system's settings and state, <svr-pool>,
 *                  <actv-svr-nums>, <max-load>, <min-load> (and <pressvr-load> of all servers);
 *                  operation retrieve asks the primary for them.
 *   promote        primary → a pool server being added (every running server above <max-load>):
 *                  <svr-pool> lists it with its contact, <actv-svr-nums> is the count after the
 *                  addition; the added server then SUBSCRIBEs to the primary for the system's data.
 *   drain          primary → a server to take out of service (load under <min-load>): stop taking
 *                  users; <pres-sys-users> names the users to hand over (none: all of them).
 *
 * RESPONSE CODES (RFC 6503 §5.4; CCMP_RESPONSE_CODES): the codec itself only produces 400 badRequest
 * (malformed XML, a DTD, wrong root or namespace, schema-invalid content, a value out of range, a
 * CCMP message kind other than the four above). Handlers answer with the others.
 *
 * VALUES. Levels and thresholds are decimals from 0 to below 10^12 with at most six places: at most
 * 18 digits, all that XML Schema guarantees for xs:decimal (libxml2, for one, refuses the 30-digit
 * expansion of a small double). encodeCcmp rounds them to six places, so a level that is a whole
 * number of millionths comes back exactly and a finer one comes back rounded. Counts are
 * xs:nonNegativeInteger up to 2^53-1. Server ids and AORs are tokens without whitespace.
 * confUserID, confObjID, response-string and extension names are xs:string, kept exactly (any XML
 * character, "\r" included). Every document encodeCcmp writes validates against extd-ccmp.xsd and
 * decodes back equal (levels as said); encodeCcmp throws CcmpError(400) rather than write anything
 * else. The other lossy corner: an empty presSysUsers list, or an empty users list, is written as
 * absence (the XML has no place for "a list of none").
 *
 * DECODING POLICY. Strict on what the schemas say (sequence order, required elements, types,
 * attributes) and on what they cannot say: a request names its message with xsi:type and carries a
 * <confUserID> (the bare base type is schema-valid but says nothing); each single-valued element
 * at most once; one <pres-sys-users> per server; none of our elements unknown, or outside the
 * extended message (the RFC wildcards are lax, so a validator lets those pass). Ignored:
 * <subject> and <conference-password> (the SIP session authenticates peers), and elements of other
 * namespaces in the RFC's wildcard slots.
 */

import {
  buildXml,
  decodeXmlAttribute,
  decodeXmlText,
  escapeXmlAttribute,
  escapeXmlText,
  type NamespaceScope,
  namespaceScope,
  parseXml,
  resolveAttributeName,
  resolveElementName,
  safeReason,
  type XmlElement,
  XmlError,
  type XmlNode,
} from "../pidf/xml.js";

export const CCMP_NS = "urn:ietf:params:xml:ns:xcon-ccmp";
export const EXTD_NS = "urn:presence-cluster:params:xml:ns:extd-ccmp";
export const EXTD_CCMP_CONTENT_TYPE = "application/extd-ccmp";
const XSI_NS = "http://www.w3.org/2001/XMLSchema-instance";

/** RFC 6503 §5.4 response codes this project uses (the registry has more), keyed by default response string. */
export const CCMP_RESPONSE_CODES = {
  success: 200,
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  objectNotFound: 404,
  serverInternalError: 500,
  notImplemented: 501,
} as const;

/** The extension names this server supports, in the order an optionsResponse lists them. */
export const EXTENSIONS: readonly string[] = Object.freeze([
  "session",
  "load-report",
  "redirect-user",
  "server-pool",
  "promote",
  "ready",
  "drain",
  "drained",
]);

export type CcmpOperation = "retrieve" | "create" | "update" | "delete";

export interface ServerLoad {
  svrId: string;
  level: number;
}

export interface PoolServer {
  svrId: string;
  contact: string;
}

export interface ServerUsers {
  svrId: string;
  users?: string[];
  count?: number;
}

/** The paper's control elements; every field optional, present ones are encoded. */
export interface ExtdElements {
  pressvrLoad?: ServerLoad[];
  presSysUsers?: ServerUsers[];
  redirectionUsrAddr?: string;
  svrPool?: PoolServer[];
  actvSvrNums?: number;
  maxLoad?: number;
  minLoad?: number;
}

export interface CcmpRequest {
  kind: "request";
  confUserID: string;
  confObjID?: string;
  operation?: CcmpOperation;
  extension: string;
  elements: ExtdElements;
}

export interface CcmpResponse {
  kind: "response";
  confUserID: string;
  confObjID?: string;
  operation?: CcmpOperation;
  responseCode: number;
  responseString?: string;
  version?: number;
  extension: string;
  elements: ExtdElements;
}

export interface CcmpOptionsRequest {
  kind: "options-request";
  confUserID: string;
}

export interface CcmpOptionsResponse {
  kind: "options-response";
  confUserID: string;
  responseCode: number;
  extensions: string[];
}

export type CcmpMessage = CcmpRequest | CcmpResponse | CcmpOptionsRequest | CcmpOptionsResponse;

/** What the decoder had read of a message before it failed: lets errorResponse answer in kind. */
export interface CcmpErrorContext {
  readonly kind?: CcmpMessage["kind"];
  readonly confUserID?: string;
  readonly extension?: string;
}

/**
 * A message the codec refuses. `responseCode` is the RFC 6503 code to answer with (400 badRequest
 * for anything malformed); `reason` is printable ASCII, at most 120 characters (fits a SIP reason
 * phrase and a response-string). Retrying the same bytes cannot help.
 */
export class CcmpError extends Error {
  override readonly name = "CcmpError";
  readonly responseCode: number;
  readonly reason: string;
  readonly context: CcmpErrorContext;

  constructor(
    responseCode: number,
    reason: string,
    options?: { cause?: unknown; context?: CcmpErrorContext },
  ) {
    const safe = safeReason(reason);
    super(safe, options?.cause === undefined ? undefined : { cause: options.cause });
    this.responseCode = responseCode;
    this.reason = safe;
    this.context = options?.context ?? {};
  }
}

const BAD_REQUEST = CCMP_RESPONSE_CODES.badRequest;

function invalid(reason: string): CcmpError {
  return new CcmpError(BAD_REQUEST, reason);
}

/**
 * The response to send back for a request that failed to decode: an extendedResponse (or an
 * optionsResponse, for an optionsRequest) with the error's code, its reason as response-string,
 * and the confUserID and extension name the request had, when they could be read.
 */
export function errorResponse(error: CcmpError, confUserID?: string): CcmpMessage {
  const user = confUserID ?? error.context.confUserID ?? "";
  if (error.context.kind === "options-request") {
    return {
      kind: "options-response",
      confUserID: user,
      responseCode: error.responseCode,
      extensions: [],
    };
  }
  return {
    kind: "response",
    confUserID: user,
    responseCode: error.responseCode,
    responseString: error.reason,
    extension: error.context.extension ?? "",
    elements: {},
  };
}

// ---------------------------------------------------------------------------------------------
// Encoding

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
const OPERATIONS: readonly string[] = ["retrieve", "create", "update", "delete"];
const REQUEST_TYPE = "ccmp-extended-request-message-type";
const RESPONSE_TYPE = "ccmp-extended-response-message-type";
const OPTIONS_REQUEST_TYPE = "ccmp-options-request-message-type";
const OPTIONS_RESPONSE_TYPE = "ccmp-options-response-message-type";

/** UTF-8 XML with declaration. Throws CcmpError(400) for a value the schemas do not allow. */
export function encodeCcmp(message: CcmpMessage): Buffer {
  const root = indent(messageDocument(message), 0);
  return Buffer.from(`${XML_DECLARATION}${buildXml([root])}\n`, "utf8");
}

function messageDocument(message: CcmpMessage): XmlElement {
  if (typeof message !== "object" || message === null) {
    throw invalid("cannot encode: not a message");
  }
  const fields = [textElement("confUserID", xmlString(message.confUserID, "confUserID"))];
  switch (message.kind) {
    case "request":
      optionalFields(fields, message);
      fields.push(extendedBody("ccmp:extendedRequest", message));
      return document("ccmpRequest", REQUEST_TYPE, fields);
    case "options-request":
      return document("ccmpRequest", OPTIONS_REQUEST_TYPE, fields);
    case "response":
      optionalFields(fields, message);
      fields.push(textElement("response-code", responseCodeLexical(message.responseCode)));
      if (message.responseString !== undefined) {
        fields.push(
          textElement("response-string", xmlString(message.responseString, "response-string")),
        );
      }
      if (message.version !== undefined) {
        fields.push(textElement("version", integerLexical(message.version, 1, "version")));
      }
      fields.push(extendedBody("ccmp:extendedResponse", message));
      return document("ccmpResponse", RESPONSE_TYPE, fields);
    case "options-response": {
      fields.push(textElement("response-code", responseCodeLexical(message.responseCode)));
      if (!Array.isArray(message.extensions)) {
        throw invalid("cannot encode: extensions is not a list");
      }
      const names = message.extensions.map((name) =>
        textElement("ex:name", xmlString(name, "extension name")),
      );
      fields.push(
        element("ccmp:optionsResponse", {}, [element("ex:extended-messages", {}, names)]),
      );
      return document("ccmpResponse", OPTIONS_RESPONSE_TYPE, fields);
    }
    default:
      throw invalid("cannot encode: unknown message kind");
  }
}

function document(
  root: "ccmpRequest" | "ccmpResponse",
  type: string,
  fields: XmlNode[],
): XmlElement {
  const attributes = { "xmlns:ccmp": CCMP_NS, "xmlns:ex": EXTD_NS, "xmlns:xsi": XSI_NS };
  // The inner element is local to the RFC schema, hence unqualified; xsi:type picks the message.
  const inner = element(root, { "xsi:type": `ccmp:${type}` }, fields);
  return element(`ccmp:${root}`, attributes, [inner]);
}

function optionalFields(fields: XmlNode[], message: CcmpRequest | CcmpResponse): void {
  if (message.confObjID !== undefined) {
    fields.push(textElement("confObjID", xmlString(message.confObjID, "confObjID")));
  }
  if (message.operation !== undefined) {
    if (!OPERATIONS.includes(message.operation)) {
      throw invalid(`cannot encode: operation must be one of ${OPERATIONS.join(", ")}`);
    }
    fields.push(textElement("operation", message.operation));
  }
}

function extendedBody(name: string, message: CcmpRequest | CcmpResponse): XmlElement {
  const children = [textElement("extensionName", xmlString(message.extension, "extensionName"))];
  if (typeof message.elements !== "object" || message.elements === null) {
    throw invalid("cannot encode: elements is not an object");
  }
  children.push(...extdElements(message.elements));
  return element(name, {}, children);
}

function extdElements(elements: ExtdElements): XmlElement[] {
  const out: XmlElement[] = [];
  const { pressvrLoad, presSysUsers, svrPool } = elements;
  if (pressvrLoad !== undefined) {
    const ids = new Set<string>();
    const levels = list(pressvrLoad, "pressvrLoad").map(({ svrId, level }) =>
      textElement("ex:curr-load-level", decimalLexical(level, "curr-load-level"), {
        "svr-id": uniqueId(ids, svrId, "pressvr-load"),
      }),
    );
    out.push(element("ex:pressvr-load", {}, levels));
  }
  if (presSysUsers !== undefined) {
    const ids = new Set<string>();
    for (const { svrId, users, count } of list(presSysUsers, "presSysUsers")) {
      const attributes: Record<string, string> = {
        "svr-id": uniqueId(ids, svrId, "pres-sys-users"),
      };
      if (count !== undefined) attributes.count = integerLexical(count, 0, "pres-sys-users count");
      const children = list(users ?? [], "users").map((user) =>
        textElement("ex:user", tokenText(user, "user")),
      );
      out.push(element("ex:pres-sys-users", attributes, children));
    }
  }
  if (elements.redirectionUsrAddr !== undefined) {
    const address = tokenText(elements.redirectionUsrAddr, "redirection-usr-addr");
    out.push(textElement("ex:redirection-usr-addr", address));
  }
  if (svrPool !== undefined) {
    const ids = new Set<string>();
    const servers = list(svrPool, "svrPool").map(({ svrId, contact }) =>
      element("ex:svr", {
        "svr-id": uniqueId(ids, svrId, "svr-pool"),
        contact: escapeXmlAttribute(token(contact, "svr contact")),
      }),
    );
    out.push(element("ex:svr-pool", {}, servers));
  }
  if (elements.actvSvrNums !== undefined) {
    out.push(
      textElement("ex:actv-svr-nums", integerLexical(elements.actvSvrNums, 0, "actv-svr-nums")),
    );
  }
  if (elements.maxLoad !== undefined) {
    out.push(textElement("ex:max-load", decimalLexical(elements.maxLoad, "max-load")));
  }
  if (elements.minLoad !== undefined) {
    out.push(textElement("ex:min-load", decimalLexical(elements.minLoad, "min-load")));
  }
  return out;
}

function list<T>(value: readonly T[], what: string): readonly T[] {
  if (!Array.isArray(value)) throw invalid(`cannot encode: ${what} is not a list`);
  return value;
}

function uniqueId(seen: Set<string>, svrId: string, where: string): string {
  const id = token(svrId, `${where} svr-id`);
  if (seen.has(id)) throw invalid(`cannot encode: svr-id "${id}" twice in ${where}`);
  seen.add(id);
  return escapeXmlAttribute(id);
}

// Outside the XML 1.0 Char production: no escape can carry these.
const NON_XML_CHAR = /[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;
// XML Schema's whitespace (\s in its patterns) is these four, not JavaScript's \s.
const XML_SPACE = /[\t\n\r ]/;

/** Escaped element text for an xs:string value. */
function xmlString(value: unknown, what: string): string {
  if (typeof value !== "string") throw invalid(`cannot encode: ${what} is not a string`);
  if (NON_XML_CHAR.test(value)) throw invalid(`cannot encode: ${what} has a non-XML character`);
  // A literal CR would come back as LF (XML 1.0 §2.11): a reference keeps it.
  return escapeXmlText(value).replaceAll("\r", "&#13;");
}

function token(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "" || XML_SPACE.test(value)) {
    throw invalid(`cannot encode: ${what} must be a non-empty string without whitespace`);
  }
  if (NON_XML_CHAR.test(value)) throw invalid(`cannot encode: ${what} has a non-XML character`);
  return value;
}

function tokenText(value: unknown, what: string): string {
  return escapeXmlText(token(value, what));
}

function integerLexical(value: unknown, min: number, what: string): string {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`cannot encode: ${what} must be an integer >= ${min}`);
  }
  return String(value);
}

function responseCodeLexical(value: unknown): string {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 999) {
    throw invalid("cannot encode: response-code must be an integer from 1 to 999");
  }
  // RFC 6503's response-codeType is a positiveInteger written as exactly three digits.
  return String(value).padStart(3, "0");
}

const MAX_LOAD = 1e12;
const LOAD_DECIMALS = 6;

/**
 * A load-type lexical. The shortest decimal that reads back as the same number when it has six
 * places or fewer (and no exponent, which below 10^12 means below 10^-6 only), else the number
 * rounded to six places: a whole number of millionths comes back exactly, anything finer rounded.
 */
function decimalLexical(value: unknown, what: string): string {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value >= MAX_LOAD) {
    throw invalid(`cannot encode: ${what} must be a number from 0 to below 10^12`);
  }
  const shortest = String(value);
  if (/^[0-9]+(?:\.[0-9]{1,6})?$/.test(shortest)) return shortest;
  return value.toFixed(LOAD_DECIMALS).replace(/\.?0+$/, "");
}

function element(
  name: string,
  attributes: Record<string, string>,
  children: XmlNode[] = [],
): XmlElement {
  return { type: "element", name, attributes, children };
}

function textElement(
  name: string,
  text: string,
  attributes: Record<string, string> = {},
): XmlElement {
  return element(name, attributes, text === "" ? [] : [{ type: "text", text }]);
}

// Element-only content gets one element per line: CCMP bodies are read in SIP traces.
function indent(node: XmlElement, depth: number): XmlElement {
  if (node.children.length === 0 || node.children.some((child) => child.type !== "element")) {
    return node;
  }
  const pad = `\n${"  ".repeat(depth + 1)}`;
  const children: XmlNode[] = [];
  for (const child of node.children) {
    children.push({ type: "text", text: pad }, indent(child as XmlElement, depth + 1));
  }
  children.push({ type: "text", text: `\n${"  ".repeat(depth)}` });
  return { ...node, children };
}

// ---------------------------------------------------------------------------------------------
// Decoding

const utf8 = new TextDecoder("utf-8", { fatal: true });
const ENCODING = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']/;

/** Parses an application/extd-ccmp body. Throws CcmpError, and nothing else. */
export function decodeCcmp(body: Buffer): CcmpMessage {
  const context: Context = {};
  try {
    return readDocument(body, context);
  } catch (err) {
    const code = err instanceof CcmpError ? err.responseCode : BAD_REQUEST;
    const reason =
      err instanceof CcmpError || err instanceof XmlError
        ? err.reason
        : `malformed CCMP message: ${err instanceof Error ? err.message : String(err)}`;
    throw new CcmpError(code, reason, { cause: err, context: { ...context } });
  }
}

/** An element with its namespace scope and resolved name. */
interface Element {
  readonly node: XmlElement;
  readonly scope: NamespaceScope;
  readonly namespace: string;
  readonly localName: string;
}

function open(node: XmlElement, parent?: NamespaceScope): Element {
  const scope = namespaceScope(node, parent);
  const { namespace, localName } = resolveElementName(node.name, scope);
  return { node, scope, namespace, localName };
}

type Context = { -readonly [K in keyof CcmpErrorContext]: CcmpErrorContext[K] };

function readDocument(body: Buffer, context: Context): CcmpMessage {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw invalid("body is not valid UTF-8");
  }
  const encoding = ENCODING.exec(text)?.[1]?.toLowerCase();
  if (encoding !== undefined && encoding !== "utf-8" && encoding !== "us-ascii") {
    throw invalid(`only UTF-8 CCMP bodies are supported, not ${encoding}`);
  }
  const rootNode = parseXml(text).find((node): node is XmlElement => node.type === "element");
  if (rootNode === undefined) throw invalid("malformed XML: no root element");
  const root = open(rootNode);
  const isRequest = root.localName === "ccmpRequest";
  if (!isRequest && root.localName !== "ccmpResponse") {
    throw invalid(`root <${root.node.name}> is not a CCMP ccmpRequest or ccmpResponse`);
  }
  if (root.namespace !== CCMP_NS) {
    throw invalid(
      `root <${root.node.name}> is not in the CCMP namespace: ${root.namespace || "none"}`,
    );
  }
  readAttributes(root, [], "xsi");
  const [inner, ...rest] = elementChildren(root);
  if (inner === undefined || rest.length > 0) {
    throw invalid(`<${root.node.name}> must hold exactly one <${root.localName}>`);
  }
  if (inner.namespace !== "" || inner.localName !== root.localName) {
    throw invalid(
      `<${root.node.name}> must hold an unqualified <${root.localName}>, not <${inner.node.name}>`,
    );
  }
  const type = messageType(inner);
  if (isRequest) {
    if (type === REQUEST_TYPE) return readRequest(inner, context);
    if (type === OPTIONS_REQUEST_TYPE) return readOptionsRequest(inner, context);
  } else {
    if (type === RESPONSE_TYPE) return readResponse(inner, context);
    if (type === OPTIONS_RESPONSE_TYPE) return readOptionsResponse(inner, context);
  }
  throw invalid(`CCMP message type ${type} is not supported in a ${root.localName}`);
}

/** The xsi:type of the inner element, which names the RFC 6503 message (a local name in CCMP_NS). */
function messageType(inner: Element): string {
  let raw: string | undefined;
  for (const name in inner.node.attributes) {
    const { namespace, localName } = resolveAttributeName(name, inner.scope);
    if (namespace === XSI_NS && localName === "type") raw = inner.node.attributes[name];
  }
  if (raw === undefined) {
    throw invalid(`<${inner.localName}> has no xsi:type naming its CCMP message type`);
  }
  const value = decodeXmlAttribute(raw).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  const { namespace, localName } = resolveElementName(value, inner.scope);
  if (namespace !== CCMP_NS) throw invalid(`xsi:type "${value}" is not a CCMP message type`);
  return localName;
}

function readRequest(inner: Element, context: Context): CcmpRequest {
  context.kind = "request";
  const { fields, body } = readSequence(inner, REQUEST_FIELDS, "extendedRequest");
  const confUserID = requiredText(inner, fields, "confUserID");
  context.confUserID = confUserID;
  const message: CcmpRequest = { kind: "request", confUserID, extension: "", elements: {} };
  readOptionalFields(message, fields);
  readExtendedBody(message, body, context);
  return message;
}

function readOptionsRequest(inner: Element, context: Context): CcmpOptionsRequest {
  context.kind = "options-request";
  const { fields } = readSequence(inner, REQUEST_FIELDS, undefined);
  const confUserID = requiredText(inner, fields, "confUserID");
  context.confUserID = confUserID;
  return { kind: "options-request", confUserID };
}

function readResponse(inner: Element, context: Context): CcmpResponse {
  context.kind = "response";
  const { fields, body } = readSequence(inner, RESPONSE_FIELDS, "extendedResponse");
  const confUserID = requiredText(inner, fields, "confUserID");
  context.confUserID = confUserID;
  const message: CcmpResponse = {
    kind: "response",
    confUserID,
    responseCode: readResponseCode(inner, fields),
    extension: "",
    elements: {},
  };
  readOptionalFields(message, fields);
  const responseString = fields.get("response-string");
  if (responseString !== undefined) message.responseString = fieldText(responseString);
  const version = fields.get("version");
  if (version !== undefined) message.version = readInteger(fieldText(version), 1, version);
  readExtendedBody(message, body, context);
  return message;
}

function readOptionsResponse(inner: Element, context: Context): CcmpOptionsResponse {
  context.kind = "options-response";
  const { fields, body } = readSequence(inner, RESPONSE_FIELDS, "optionsResponse");
  const confUserID = requiredText(inner, fields, "confUserID");
  context.confUserID = confUserID;
  const responseCode = readResponseCode(inner, fields);
  readAttributes(body, [], "any");
  const extensions: string[] = [];
  let seen = false;
  for (const [index, child] of elementChildren(body).entries()) {
    if (child.namespace === "" && child.localName === "options" && index === 0) {
      checkSubtree(child);
    } else if (child.namespace === EXTD_NS && child.localName === "extended-messages") {
      if (seen) throw invalid(`<${child.node.name}> appears twice`);
      seen = true;
      readAttributes(child, [], "none");
      for (const name of elementChildren(child)) {
        expect(name, EXTD_NS, "name", child);
        extensions.push(leafText(name));
      }
    } else {
      checkWildcard(child, body);
    }
  }
  return { kind: "options-response", confUserID, responseCode, extensions };
}

// RFC 6503 ccmp-request-message-type and ccmp-response-message-type: their sequences, in order.
const REQUEST_FIELDS = ["subject", "confUserID", "confObjID", "operation", "conference-password"];
const RESPONSE_FIELDS = [
  "confUserID",
  "confObjID",
  "operation",
  "response-code",
  "response-string",
  "version",
];

/**
 * Walks the inner element as its schema type does: the base fields (unqualified, in order, each at
 * most once), then the xs:any ##other wildcard, then the message's own CCMP element, last.
 */
function readSequence(
  inner: Element,
  order: readonly string[],
  bodyName: string | undefined,
): { fields: Map<string, Element>; body: Element } {
  readAttributes(inner, [], "any");
  const fields = new Map<string, Element>();
  let last = -1;
  let inWildcard = false;
  let body: Element | undefined;
  for (const child of elementChildren(inner)) {
    if (body !== undefined) throw invalid(`<${child.node.name}> after <${body.node.name}>`);
    if (child.namespace === "") {
      const index = order.indexOf(child.localName);
      if (index === -1) throw invalid(`unexpected <${child.node.name}> in <${inner.localName}>`);
      if (index <= last || inWildcard) {
        throw invalid(`<${child.localName}> is repeated or out of order in <${inner.localName}>`);
      }
      last = index;
      fields.set(child.localName, child);
    } else if (child.namespace === CCMP_NS && child.localName === bodyName) {
      body = child;
    } else {
      checkWildcard(child, inner);
      inWildcard = true;
    }
  }
  if (bodyName !== undefined && body === undefined) {
    throw invalid(`<${inner.localName}> has no <${bodyName}>`);
  }
  for (const ignored of ["subject", "conference-password"]) {
    const field = fields.get(ignored);
    if (field !== undefined) checkSubtree(field);
  }
  return { fields, body: body ?? inner };
}

function readOptionalFields(
  message: CcmpRequest | CcmpResponse,
  fields: Map<string, Element>,
): void {
  const confObjID = fields.get("confObjID");
  if (confObjID !== undefined) message.confObjID = fieldText(confObjID);
  const operation = fields.get("operation");
  if (operation !== undefined) {
    // xs:token: whitespace collapsed before the enumeration applies.
    const value = fieldText(operation)
      .replace(/[\t\n\r ]+/g, " ")
      .trim();
    if (!OPERATIONS.includes(value)) {
      throw invalid(`<operation> must be one of ${OPERATIONS.join(", ")}, not ${quote(value)}`);
    }
    message.operation = value as CcmpOperation;
  }
}

function readResponseCode(inner: Element, fields: Map<string, Element>): number {
  const field = fields.get("response-code");
  if (field === undefined) throw invalid(`<${inner.localName}> has no <response-code>`);
  const value = trimSpace(fieldText(field));
  if (!/^[0-9]{3}$/.test(value) || value === "000") {
    throw invalid(`<response-code> must be three digits, not ${quote(value)}`);
  }
  return Number(value);
}

function requiredText(inner: Element, fields: Map<string, Element>, name: string): string {
  const field = fields.get(name);
  if (field === undefined) throw invalid(`<${inner.localName}> has no <${name}>`);
  return fieldText(field);
}

function readExtendedBody(
  message: CcmpRequest | CcmpResponse,
  body: Element,
  context: Context,
): void {
  readAttributes(body, [], "xsi");
  const [name, ...rest] = elementChildren(body);
  if (name === undefined || name.namespace !== "" || name.localName !== "extensionName") {
    throw invalid(`<${body.node.name}> must start with <extensionName>`);
  }
  message.extension = fieldText(name);
  context.extension = message.extension;
  message.elements = readElements(rest, body);
}

function readElements(children: readonly Element[], parent: Element): ExtdElements {
  const out: ExtdElements = {};
  const seen = new Set<string>();
  const presSysUsers: ServerUsers[] = [];
  const userServers = new Set<string>();
  for (const child of children) {
    if (child.namespace !== EXTD_NS) {
      checkWildcard(child, parent);
      continue;
    }
    if (child.localName !== "pres-sys-users") {
      if (seen.has(child.localName)) throw invalid(`<${child.node.name}> appears twice`);
      seen.add(child.localName);
    }
    switch (child.localName) {
      case "pressvr-load":
        out.pressvrLoad = readLoads(child);
        break;
      case "pres-sys-users": {
        const users = readUsers(child);
        if (userServers.has(users.svrId)) {
          throw invalid(`two <${child.node.name}> for svr-id ${quote(users.svrId)}`);
        }
        userServers.add(users.svrId);
        presSysUsers.push(users);
        break;
      }
      case "redirection-usr-addr":
        out.redirectionUsrAddr = readToken(leafText(child), child);
        break;
      case "svr-pool":
        out.svrPool = readPool(child);
        break;
      case "actv-svr-nums":
        out.actvSvrNums = readInteger(leafText(child), 0, child);
        break;
      case "max-load":
        out.maxLoad = readDecimal(leafText(child), child);
        break;
      case "min-load":
        out.minLoad = readDecimal(leafText(child), child);
        break;
      default:
        throw invalid(`unknown element <${child.node.name}> in the extd-ccmp namespace`);
    }
  }
  if (presSysUsers.length > 0) out.presSysUsers = presSysUsers;
  return out;
}

function readLoads(parent: Element): ServerLoad[] {
  readAttributes(parent, [], "none");
  const ids = new Set<string>();
  return elementChildren(parent).map((child) => {
    expect(child, EXTD_NS, "curr-load-level", parent);
    const svrId = readId(child, ids);
    return { svrId, level: readDecimal(simpleText(child), child) };
  });
}

function readUsers(parent: Element): ServerUsers {
  const attributes = readAttributes(parent, ["svr-id", "count"], "none");
  const result: ServerUsers = { svrId: readId(parent, new Set(), attributes) };
  if (attributes.count !== undefined) {
    result.count = readInteger(attributes.count, 0, parent, "count");
  }
  const users = elementChildren(parent).map((child) => {
    expect(child, EXTD_NS, "user", parent);
    return readToken(leafText(child), child);
  });
  if (users.length > 0) result.users = users;
  return result;
}

function readPool(parent: Element): PoolServer[] {
  readAttributes(parent, [], "none");
  const ids = new Set<string>();
  return elementChildren(parent).map((child) => {
    expect(child, EXTD_NS, "svr", parent);
    const attributes = readAttributes(child, ["svr-id", "contact"], "none");
    // svr-type has empty content: not even whitespace.
    if (child.node.children.some((node) => node.type !== "comment")) {
      throw invalid(`<${child.node.name}> must be empty`);
    }
    const svrId = readId(child, ids, attributes);
    if (attributes.contact === undefined) throw invalid(`<${child.node.name}> has no contact`);
    return { svrId, contact: readToken(attributes.contact, child, "contact") };
  });
}

function readId(
  child: Element,
  seen: Set<string>,
  attributes = readAttributes(child, ["svr-id"], "none"),
): string {
  const raw = attributes["svr-id"];
  if (raw === undefined) throw invalid(`<${child.node.name}> has no svr-id`);
  const id = readToken(raw, child, "svr-id");
  if (seen.has(id)) throw invalid(`svr-id ${quote(id)} appears twice`);
  seen.add(id);
  return id;
}

// ----- values

function trimSpace(value: string): string {
  return value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
}

/** xs:token with pattern \S+: surrounding whitespace collapses away, none may remain inside. */
function readToken(raw: string, where: Element, attribute?: string): string {
  const value = trimSpace(raw);
  if (value === "" || XML_SPACE.test(value)) {
    throw invalid(
      `${label(where, attribute)} must be non-empty without whitespace, not ${quote(value)}`,
    );
  }
  return value;
}

const DECIMAL = /^[+-]?(?:[0-9]+(?:\.([0-9]*))?|\.([0-9]+))$/;

/** A load-type value: xs:decimal, 0 <= value < 10^12, at most six decimals (trailing zeros aside). */
function readDecimal(raw: string, where: Element): number {
  const value = trimSpace(raw);
  const match = DECIMAL.exec(value);
  if (match === null) throw invalid(`${label(where)} is not a decimal: ${quote(value)}`);
  const number = Number(value);
  if (number < 0) throw invalid(`${label(where)} is negative: ${quote(value)}`);
  if (number >= MAX_LOAD) throw invalid(`${label(where)} must be below 10^12: ${quote(value)}`);
  const fraction = (match[1] ?? match[2] ?? "").replace(/0+$/, "");
  if (fraction.length > LOAD_DECIMALS) {
    throw invalid(`${label(where)} has more than ${LOAD_DECIMALS} decimals: ${quote(value)}`);
  }
  // "-0" is a valid xs:decimal equal to 0; +0 keeps round trips exact.
  return number + 0;
}

function readInteger(raw: string, min: number, where: Element, attribute?: string): number {
  const value = trimSpace(raw);
  if (!/^[+-]?[0-9]+$/.test(value)) {
    throw invalid(`${label(where, attribute)} is not an integer: ${quote(value)}`);
  }
  const number = Number(value) + 0;
  if (number < min) throw invalid(`${label(where, attribute)} must be >= ${min}: ${quote(value)}`);
  if (!Number.isSafeInteger(number)) throw invalid(`${label(where, attribute)} is too large`);
  return number;
}

function label(where: Element, attribute?: string): string {
  return attribute === undefined ? `<${where.node.name}>` : `${attribute} of <${where.node.name}>`;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 24 ? `${value.slice(0, 24)}...` : value);
}

// ----- structure

/** Element children; comments pass, text must be whitespace (element-only content). */
function elementChildren(parent: Element): Element[] {
  const out: Element[] = [];
  for (const child of parent.node.children) {
    if (child.type === "element") out.push(open(child, parent.scope));
    else if (child.type !== "comment" && !/^[\t\n\r ]*$/.test(child.text)) {
      throw invalid(`text is not allowed directly inside <${parent.node.name}>`);
    }
  }
  return out;
}

/** The text of a simple-content element (references resolved, CDATA included, comments skipped). */
function simpleText(parent: Element): string {
  let text = "";
  for (const child of parent.node.children) {
    if (child.type === "text") text += decodeXmlText(child.text);
    else if (child.type === "cdata") text += child.text;
    else if (child.type === "element") {
      throw invalid(`<${parent.node.name}> must hold text, not <${child.name}>`);
    }
  }
  return text;
}

/** simpleText of one of our elements, which take no attributes. */
function leafText(parent: Element): string {
  readAttributes(parent, [], "none");
  return simpleText(parent);
}

/** simpleText of an RFC 6503 simple-typed element: no attributes but XML Schema instance ones. */
function fieldText(parent: Element): string {
  readAttributes(parent, [], "xsi");
  return simpleText(parent);
}

function expect(child: Element, namespace: string, localName: string, parent: Element): void {
  if (child.namespace !== namespace || child.localName !== localName) {
    throw invalid(`unexpected <${child.node.name}> in <${parent.node.name}>`);
  }
}

/**
 * Decoded values of the allowed unqualified attributes. Namespace declarations always pass;
 * otherwise `others` says what a schema type admits: "any" (xs:anyAttribute), "xsi" (the XML
 * Schema instance attributes every element may carry), "none".
 */
function readAttributes(
  element: Element,
  allowed: readonly string[],
  others: "any" | "xsi" | "none",
): Record<string, string> {
  const values: Record<string, string> = Object.create(null);
  for (const name in element.node.attributes) {
    const { namespace, localName } = resolveAttributeName(name, element.scope);
    if (name === "xmlns" || name.startsWith("xmlns:")) continue;
    if (namespace === "" && allowed.includes(localName)) {
      values[localName] = decodeXmlAttribute(element.node.attributes[name] as string);
    } else if (!(others === "any" || (others === "xsi" && namespace === XSI_NS))) {
      throw invalid(`unexpected attribute ${name} on <${element.node.name}>`);
    }
  }
  return values;
}

/**
 * An element in an RFC 6503 xs:any namespace="##other" slot: other namespaces are skipped (after
 * checking their names resolve); ours is misplaced there, CCMP's or none is not allowed at all.
 */
function checkWildcard(child: Element, parent: Element): void {
  if (child.namespace === EXTD_NS) {
    throw invalid(`<${child.node.name}> is misplaced in <${parent.node.name}>`);
  }
  if (child.namespace === "" || child.namespace === CCMP_NS) {
    throw invalid(`unexpected <${child.node.name}> in <${parent.node.name}>`);
  }
  checkSubtree(child);
}

/** A skipped subtree must still be namespace-well-formed: every prefix bound. */
function checkSubtree(parent: Element): void {
  for (const name in parent.node.attributes) resolveAttributeName(name, parent.scope);
  for (const child of parent.node.children) {
    if (child.type === "element") checkSubtree(open(child, parent.scope));
  }
}
