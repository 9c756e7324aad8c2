// protocol/pidf: the XML front end of the codecs — hardened fast-xml-parser, serialiser, namespaces.
// Owns the XML rules: no DTDs, the well-formedness checks the library skips, lossless text.

import { XMLParser, XMLValidator } from "fast-xml-parser";

/**
 * Text and attribute values are kept exactly as written in the source (entity and character
 * references undecoded), so `buildXml(parseXml(x))` reproduces them byte for byte (except that
 * line ends come back as LF, as XML 1.0 §2.11 requires of every parser). Decode with
 * `decodeXmlText` / `decodeXmlAttribute` where a value is interpreted; escape with
 * `escapeXmlText` / `escapeXmlAttribute` where one is created.
 */
export type XmlNode = XmlElement | XmlText | XmlCdata | XmlComment;

export interface XmlElement {
  readonly type: "element";
  /** The qualified name as written (`tuple`, `rpid:mood`). */
  readonly name: string;
  /** Raw attribute values by qualified name, in source order (null-prototype object). */
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlNode[];
}

export interface XmlText {
  readonly type: "text";
  readonly text: string;
}

export interface XmlCdata {
  readonly type: "cdata";
  readonly text: string;
}

export interface XmlComment {
  readonly type: "comment";
  readonly text: string;
}

export type XmlErrorCode = "malformed" | "forbidden-dtd";

/** A document the codecs refuse. `reason` is short printable ASCII, safe as a SIP reason phrase. */
export class XmlError extends Error {
  override readonly name = "XmlError";
  readonly code: XmlErrorCode;
  readonly reason: string;

  constructor(code: XmlErrorCode, reason: string, options?: { cause?: unknown }) {
    const safe = safeReason(reason);
    super(safe, options);
    this.code = code;
    this.reason = safe;
  }
}

const MAX_REASON = 120;

/** Printable ASCII only, one line, at most 120 characters: fits a SIP reason phrase. */
export function safeReason(text: string): string {
  const flat = text
    .replace(/[^\x20-\x7e]+/g, "?")
    .replace(/ {2,}/g, " ")
    .trim();
  return flat.length <= MAX_REASON ? flat : `${flat.slice(0, MAX_REASON - 3)}...`;
}

export const XML_NS = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS = "http://www.w3.org/2000/xmlns/";

// fast-xml-parser refuses or renames element and attribute names that collide with
// Object.prototype members; a marker byte that cannot occur in an XML name keeps them intact.
const PROTOTYPE_NAMES = new Set(
  Object.getOwnPropertyNames(Object.prototype).concat(["prototype", "constructor"]),
);
const NAME_MARKER = "\u0001";
const protectName = (name: string): string =>
  PROTOTYPE_NAMES.has(name) ? NAME_MARKER + name : name;
const unprotectName = (name: string): string =>
  name.charCodeAt(0) === 1 ? name.slice(NAME_MARKER.length) : name;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  allowBooleanAttributes: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // References stay undecoded: nothing is expanded, and values round-trip exactly.
  processEntities: false,
  htmlEntities: false,
  cdataPropName: "#cdata",
  commentPropName: "#comment",
  ignorePiTags: true,
  ignoreDeclaration: true,
  // Callbacks get plain names, not paths: measurably faster on large documents.
  jPath: false,
  transformTagName: protectName,
  transformAttributeName: protectName,
});

const DTD = /<!(?:DOCTYPE|ENTITY)/i;
// Anything outside the XML 1.0 Char production (controls, lone surrogates, U+FFFE/U+FFFF).
const NON_XML_CHAR = /[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;
const REFERENCE = /&(?:([A-Za-z_][\w.-]*)|#([0-9]+)|#x([0-9A-Fa-f]+));/y;
const PREDEFINED: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
});

/**
 * Parses a whole document into its top-level nodes (exactly one of them an element; the XML
 * declaration and processing instructions are dropped, comments and CDATA are kept).
 * Throws `XmlError`: `forbidden-dtd` for any DOCTYPE/ENTITY declaration, `malformed` otherwise.
 */
export function parseXml(text: string): XmlNode[] {
  // Refused before the parser sees them: no entity expansion (billion laughs), no external entities.
  if (DTD.test(text)) {
    throw new XmlError("forbidden-dtd", "DOCTYPE/entity declarations are not allowed");
  }
  if (NON_XML_CHAR.test(text)) {
    throw new XmlError("malformed", "malformed XML: character not allowed in XML");
  }
  const verdict = XMLValidator.validate(text);
  if (verdict !== true) {
    const { line, msg } = verdict.err;
    throw new XmlError("malformed", `malformed XML at line ${line}: ${msg}`);
  }
  let raw: unknown[];
  try {
    raw = parser.parse(text) as unknown[];
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new XmlError("malformed", `malformed XML: ${message}`, { cause: err });
  }
  const nodes: XmlNode[] = [];
  convertInto(nodes, raw);
  checkProlog(nodes, text);
  return nodes;
}

// The validator accepts several roots and stray text after the root; XML does not.
function checkProlog(nodes: readonly XmlNode[], text: string): void {
  let elements = 0;
  for (const node of nodes) {
    if (node.type === "element") elements++;
    else if (node.type !== "comment" && node.text.trim() !== "") {
      throw new XmlError("malformed", "malformed XML: text outside the root element");
    }
  }
  if (elements !== 1) {
    throw new XmlError("malformed", "malformed XML: expected exactly one root element");
  }
  if (text.slice(text.lastIndexOf(">") + 1).trim() !== "") {
    throw new XmlError("malformed", "malformed XML: text after the root element");
  }
}

type RawNode = Record<string, unknown>;

function convertInto(out: XmlNode[], rawNodes: readonly unknown[]): void {
  for (const item of rawNodes) {
    const node = item as RawNode;
    for (const key in node) {
      if (key === ":@") continue;
      const value = node[key];
      if (key === "#text") out.push(textNode(value as string));
      else if (key === "#cdata") out.push({ type: "cdata", text: innerText(value) });
      else if (key === "#comment") out.push(commentNode(innerText(value)));
      else if (key.charCodeAt(0) !== 63 /* "?" */) {
        out.push(elementNode(unprotectName(key), value as unknown[], node[":@"] as RawNode));
      }
      break;
    }
  }
}

function innerText(children: unknown): string {
  const first = (children as RawNode[])[0];
  return first === undefined ? "" : String(first["#text"] ?? "");
}

function textNode(text: string): XmlText {
  if (text.includes("]]>")) throw new XmlError("malformed", "malformed XML: ']]>' in text");
  checkReferences(text);
  return { type: "text", text };
}

function commentNode(text: string): XmlComment {
  if (text.includes("--") || text.endsWith("-")) {
    throw new XmlError("malformed", "malformed XML: '--' inside a comment");
  }
  return { type: "comment", text };
}

function elementNode(name: string, rawChildren: unknown[], rawAttributes?: RawNode): XmlElement {
  const attributes: Record<string, string> = Object.create(null);
  if (rawAttributes !== undefined) {
    for (const key in rawAttributes) {
      const value = String(rawAttributes[key]);
      if (value.includes("<")) throw new XmlError("malformed", "malformed XML: '<' in attribute");
      checkReferences(value);
      attributes[unprotectName(key)] = value;
    }
  }
  const children: XmlNode[] = [];
  convertInto(children, rawChildren);
  return { type: "element", name, attributes, children };
}

// Without a DTD only the five predefined entities and character references exist.
function checkReferences(raw: string): void {
  let at = raw.indexOf("&");
  while (at !== -1) {
    REFERENCE.lastIndex = at;
    const match = REFERENCE.exec(raw);
    if (match === null) throw new XmlError("malformed", "malformed XML: bad '&' reference");
    const [, entity, decimal, hex] = match;
    if (entity !== undefined && PREDEFINED[entity] === undefined) {
      throw new XmlError("malformed", `malformed XML: undefined entity &${entity};`);
    }
    if (
      entity === undefined &&
      !isXmlChar(Number.parseInt(decimal ?? hex ?? "", decimal ? 10 : 16))
    ) {
      throw new XmlError("malformed", "malformed XML: character reference to a non-XML character");
    }
    at = raw.indexOf("&", REFERENCE.lastIndex);
  }
}

/** Whether XML 1.0 can carry the code point (§2.2 Char), escaped or not. */
export function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Serialises nodes; raw values are written as stored (attributes in double quotes). */
export function buildXml(nodes: readonly XmlNode[]): string {
  let out = "";
  for (const node of nodes) out += buildNode(node);
  return out;
}

function buildNode(node: XmlNode): string {
  switch (node.type) {
    case "text":
      return node.text;
    case "cdata":
      return `<![CDATA[${node.text}]]>`;
    case "comment":
      return `<!--${node.text}-->`;
    case "element":
      return buildElement(node);
  }
}

function buildElement(element: XmlElement): string {
  let out = `<${element.name}`;
  const { attributes } = element;
  for (const name in attributes) {
    const value = attributes[name] as string;
    // A value that came from a single-quoted attribute may hold a bare '"'.
    out += ` ${name}="${value.includes('"') ? value.replaceAll('"', "&quot;") : value}"`;
  }
  if (element.children.length === 0) return `${out}/>`;
  out += ">";
  for (const child of element.children) out += buildNode(child);
  return `${out}</${element.name}>`;
}

/** Decodes a raw text value: references resolved, line ends normalised to LF. */
export function decodeXmlText(raw: string): string {
  if (!raw.includes("&") && !raw.includes("\r")) return raw;
  return raw.replace(/\r\n?|&([^;]+);/g, (match, ref: string | undefined) =>
    ref === undefined ? "\n" : resolveReference(match, ref),
  );
}

/** Decodes a raw attribute value: literal whitespace becomes a space (XML 1.0 §3.3.3), references resolved. */
export function decodeXmlAttribute(raw: string): string {
  if (!/[&\t\n\r]/.test(raw)) return raw;
  return raw.replace(/\r\n|[\t\n\r]|&([^;]+);/g, (match, ref: string | undefined) =>
    ref === undefined ? " " : resolveReference(match, ref),
  );
}

function resolveReference(match: string, ref: string): string {
  if (ref.charCodeAt(0) === 35 /* "#" */) {
    const hex = ref.charCodeAt(1) === 120; /* "x" */
    return String.fromCodePoint(Number.parseInt(ref.slice(hex ? 2 : 1), hex ? 16 : 10));
  }
  return PREDEFINED[ref] ?? match;
}

/** Escapes a string for use as element content. */
export function escapeXmlText(value: string): string {
  return value.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

const ATTRIBUTE_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  '"': "&quot;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;",
};

/** Escapes a string for use as a double-quoted attribute value (whitespace survives normalisation). */
export function escapeXmlAttribute(value: string): string {
  return value.replace(/[&<"\t\n\r]/g, (c) => ATTRIBUTE_ESCAPES[c] ?? c);
}

/**
 * In-scope namespace bindings: prefix → namespace URI, "" for the default namespace (an empty
 * URI means "no namespace"). A nested scope inherits its parent's bindings through the prototype
 * chain, so opening an element costs nothing unless it declares namespaces.
 */
export type NamespaceScope = Readonly<Record<string, string>>;

export interface QName {
  readonly namespace: string;
  readonly localName: string;
}

const ROOT_SCOPE: NamespaceScope = Object.freeze(
  Object.assign(Object.create(null) as Record<string, string>, { xml: XML_NS }),
);

/** The namespace declarations an element makes itself (decoded URIs), or undefined if none. */
export function namespaceDeclarations(element: XmlElement): Record<string, string> | undefined {
  let declared: Record<string, string> | undefined;
  for (const name in element.attributes) {
    if (!name.startsWith("xmlns")) continue;
    let prefix: string;
    if (name.length === 5) prefix = "";
    else if (name.charCodeAt(5) === 58 /* ":" */) prefix = name.slice(6);
    else continue;
    const uri = decodeXmlAttribute(element.attributes[name] as string);
    checkDeclaration(prefix, uri);
    declared ??= Object.create(null) as Record<string, string>;
    declared[prefix] = uri;
  }
  return declared;
}

function checkDeclaration(prefix: string, uri: string): void {
  if (prefix === "") {
    if (uri === XML_NS || uri === XMLNS_NS) throw reserved(prefix);
    return;
  }
  if (!isNcNamePart(prefix)) throw new XmlError("malformed", "malformed XML: bad namespace prefix");
  // XML 1.0 namespaces cannot undeclare a prefix.
  if (uri === "") throw new XmlError("malformed", `malformed XML: empty namespace for '${prefix}'`);
  if (
    prefix === "xmlns" ||
    (prefix === "xml" ? uri !== XML_NS : uri === XML_NS || uri === XMLNS_NS)
  ) {
    throw reserved(prefix);
  }
}

function reserved(prefix: string): XmlError {
  return new XmlError("malformed", `malformed XML: reserved prefix or namespace '${prefix}'`);
}

/** The scope inside `element`: its parent's bindings plus its own declarations. */
export function namespaceScope(
  element: XmlElement,
  parent: NamespaceScope = ROOT_SCOPE,
): NamespaceScope {
  const declared = namespaceDeclarations(element);
  return declared === undefined ? parent : Object.assign(Object.create(parent), declared);
}

/** Splits a qualified name into prefix ("" if none) and local part; throws on a bad QName. */
export function splitQName(name: string): [prefix: string, localName: string] {
  const colon = name.indexOf(":");
  if (colon === -1) return ["", name];
  const prefix = name.slice(0, colon);
  const localName = name.slice(colon + 1);
  if (!isNcNamePart(prefix) || !isNcNamePart(localName)) {
    throw new XmlError("malformed", `malformed XML: bad qualified name '${name}'`);
  }
  return [prefix, localName];
}

/** Resolves an element name: unprefixed names take the default namespace. */
export function resolveElementName(name: string, scope: NamespaceScope): QName {
  const [prefix, localName] = splitQName(name);
  const namespace = scope[prefix];
  if (namespace === undefined && prefix !== "") throw unbound(prefix);
  return { namespace: namespace ?? "", localName };
}

/** Resolves an attribute name: unprefixed attributes are in no namespace. */
export function resolveAttributeName(name: string, scope: NamespaceScope): QName {
  const [prefix, localName] = splitQName(name);
  if (prefix === "") return { namespace: name === "xmlns" ? XMLNS_NS : "", localName };
  if (prefix === "xmlns") return { namespace: XMLNS_NS, localName };
  const namespace = scope[prefix];
  if (namespace === undefined) throw unbound(prefix);
  return { namespace, localName };
}

function unbound(prefix: string): XmlError {
  return new XmlError("malformed", `malformed XML: unbound namespace prefix '${prefix}'`);
}

// Names reach here after the validator's XML Name check, which treats ':' as a name character:
// each part of a QName is then an NCName unless it is empty or starts with a non-start character.
function isNcNamePart(part: string): boolean {
  if (part === "" || part.includes(":")) return false;
  const first = part.charCodeAt(0);
  const nameCharOnly =
    first === 0x2d ||
    first === 0x2e ||
    (first >= 0x30 && first <= 0x39) ||
    first === 0xb7 ||
    (first >= 0x300 && first <= 0x36f) ||
    first === 0x203f ||
    first === 0x2040;
  return !nameCharOnly;
}
