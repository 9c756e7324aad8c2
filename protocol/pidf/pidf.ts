// protocol/pidf: PIDF (RFC 3863) bodies — parse a publication, compose a presentity's publications.
// Owns what "the same document" means: unknown elements, namespaces and text bytes all survive.

import {
  buildXml,
  decodeXmlAttribute,
  escapeXmlAttribute,
  type NamespaceScope,
  namespaceDeclarations,
  namespaceScope,
  parseXml,
  resolveAttributeName,
  resolveElementName,
  safeReason,
  splitQName,
  type XmlElement,
  XmlError,
  type XmlNode,
} from "./xml.js";

export const PIDF_NS = "urn:ietf:params:xml:ns:pidf";
export const PIDF_CONTENT_TYPE = "application/pidf+xml";
/** RFC 4479: dm:person and dm:device carry an xs:ID that shares the document's ID space with tuples. */
export const DATA_MODEL_NS = "urn:ietf:params:xml:ns:pidf:data-model";

export type PidfErrorCode = "malformed" | "forbidden-dtd" | "not-pidf" | "invalid";

/** A body the server refuses; `reason` is printable ASCII, at most 120 characters (a SIP reason phrase). */
export class PidfError extends Error {
  override readonly name = "PidfError";
  readonly code: PidfErrorCode;
  readonly reason: string;

  constructor(code: PidfErrorCode, reason: string, options?: { cause?: unknown }) {
    const safe = safeReason(reason);
    super(safe, options);
    this.code = code;
    this.reason = safe;
  }
}

/** One top-level child of `<presence>`, kept as parsed (never mutated: documents are cached). */
export interface PidfElement {
  readonly node: XmlElement;
  readonly namespace: string;
  readonly localName: string;
  /**
   * Prefixes ("" = the default namespace) whose bindings this subtree takes from `<presence>`:
   * what must be re-declared when the element moves under another root.
   */
  readonly inheritedPrefixes: readonly string[];
  /** The element's xs:ID (tuple, dm:person, dm:device), decoded. */
  readonly id?: string;
}

export interface PidfTuple extends PidfElement {
  readonly id: string;
}

/** A parsed PIDF body. Plain data; `root` is the `<presence>` element exactly as received. */
export interface PidfDocument {
  /** The `entity` attribute, decoded. */
  readonly entity: string;
  /** Namespace bindings declared on `<presence>` (decoded URIs; "" = default namespace). */
  readonly namespaces: Readonly<Record<string, string>>;
  readonly tuples: readonly PidfTuple[];
  /** Every other top-level element (notes, dm:person, dm:device, extensions), in document order. */
  readonly others: readonly PidfElement[];
  readonly root: XmlElement;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
const ENCODING = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']/;

/** Parses a PIDF body (UTF-8 bytes). Throws `PidfError`. */
export function parsePidf(body: Buffer): PidfDocument {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch (err) {
    throw new PidfError("malformed", "body is not valid UTF-8", { cause: err });
  }
  const encoding = ENCODING.exec(text)?.[1]?.toLowerCase();
  if (encoding !== undefined && encoding !== "utf-8" && encoding !== "us-ascii") {
    throw new PidfError("invalid", "only UTF-8 PIDF bodies are supported");
  }
  let nodes: XmlNode[];
  try {
    nodes = parseXml(text);
  } catch (err) {
    throw asPidfError(err);
  }
  const root = nodes.find((node): node is XmlElement => node.type === "element");
  if (root === undefined) throw new PidfError("malformed", "malformed XML: no root element");
  try {
    return readPresence(root);
  } catch (err) {
    throw asPidfError(err);
  }
}

function asPidfError(err: unknown): unknown {
  return err instanceof XmlError ? new PidfError(err.code, err.reason, { cause: err }) : err;
}

function readPresence(root: XmlElement): PidfDocument {
  const scope = namespaceScope(root);
  const rootName = resolveElementName(root.name, scope);
  if (rootName.namespace !== PIDF_NS || rootName.localName !== "presence") {
    throw new PidfError("not-pidf", "root element is not PIDF <presence>");
  }
  const entity = attribute(root, "entity");
  if (entity === undefined || entity.trim() === "") {
    throw new PidfError("invalid", "<presence> has no entity attribute");
  }
  // An unbound prefix anywhere, the root's attributes included, makes the body malformed.
  for (const name in root.attributes) resolveAttributeName(name, scope);
  const namespaces = namespaceDeclarations(root) ?? (Object.create(null) as Record<string, string>);

  const tuples: PidfTuple[] = [];
  const others: PidfElement[] = [];
  const tupleIds = new Set<string>();
  for (const child of root.children) {
    if (child.type === "comment") continue;
    if (child.type !== "element") {
      if (child.text.trim() === "") continue;
      throw new PidfError("invalid", "text directly inside <presence>");
    }
    const name = resolveElementName(child.name, namespaceScope(child, scope));
    const inheritedPrefixes = inheritedBy(child, scope);
    if (name.namespace === PIDF_NS && name.localName === "tuple") {
      const id = readTupleId(child, tupleIds);
      if (!hasChild(child, scope, PIDF_NS, "status")) {
        throw new PidfError("invalid", `tuple "${id}" has no <status>`);
      }
      tuples.push({ node: child, ...name, inheritedPrefixes, id });
    } else {
      const id = name.namespace === DATA_MODEL_NS ? attribute(child, "id") : undefined;
      others.push(
        id === undefined
          ? { node: child, ...name, inheritedPrefixes }
          : { node: child, ...name, inheritedPrefixes, id },
      );
    }
  }
  return { entity, namespaces, tuples, others, root };
}

function readTupleId(tuple: XmlElement, seen: Set<string>): string {
  const id = attribute(tuple, "id");
  if (id === undefined || id === "") throw new PidfError("invalid", "tuple without an id");
  if (seen.has(id)) throw new PidfError("invalid", `duplicate tuple id "${id}"`);
  seen.add(id);
  return id;
}

function attribute(element: XmlElement, name: string): string | undefined {
  const raw = element.attributes[name];
  return raw === undefined ? undefined : decodeXmlAttribute(raw);
}

function hasChild(
  parent: XmlElement,
  outer: NamespaceScope,
  namespace: string,
  localName: string,
): boolean {
  const scope = namespaceScope(parent, outer);
  return parent.children.some((child) => {
    if (child.type !== "element") return false;
    const name = resolveElementName(child.name, namespaceScope(child, scope));
    return name.namespace === namespace && name.localName === localName;
  });
}

/**
 * The prefixes a subtree resolves through `<presence>`'s bindings rather than its own. Also
 * checks every element and attribute name in it is namespace-well-formed (bound prefixes).
 */
function inheritedBy(element: XmlElement, rootScope: NamespaceScope): string[] {
  const inherited = new Set<string>();
  collectInherited(element, undefined, rootScope, inherited);
  return [...inherited];
}

function collectInherited(
  element: XmlElement,
  outer: NamespaceScope | undefined,
  rootScope: NamespaceScope,
  inherited: Set<string>,
): void {
  // Only bindings declared inside the subtree: undefined until its first declaration.
  const declared = namespaceDeclarations(element);
  const local: NamespaceScope | undefined =
    declared === undefined ? outer : Object.assign(Object.create(outer ?? null), declared);
  const use = (prefix: string): void => {
    if (prefix === "xml" || (local !== undefined && prefix in local)) return;
    if (prefix !== "" && rootScope[prefix] === undefined) {
      throw new PidfError("malformed", `malformed XML: unbound namespace prefix '${prefix}'`);
    }
    inherited.add(prefix);
  };
  use(splitQName(element.name)[0]);
  for (const name in element.attributes) {
    const [prefix] = splitQName(name);
    if (prefix !== "" && prefix !== "xmlns") use(prefix);
  }
  for (const child of element.children) {
    if (child.type === "element") collectInherited(child, local, rootScope, inherited);
  }
}

/** The ids of a document's tuples, in document order. */
export function tupleIds(doc: PidfDocument): string[] {
  return doc.tuples.map((tuple) => tuple.id);
}

/** A document re-serialised on its own, as received (minus prolog comments and PIs). */
export function serialisePidf(doc: PidfDocument): Buffer {
  return Buffer.from(XML_DECLARATION + buildXml([doc.root]), "utf8");
}

/** The neutral state (RFC 3856, RFC 3863): a `<presence>` with no tuples. */
export function neutralPidf(entity: string): Buffer {
  return composePidf(entity, []);
}

/**
 * One `<presence>` for `entity` holding every tuple of every document (documents in the order
 * given), then their notes, then their other elements — the order RFC 3863's schema requires.
 * Elements are shared, not copied; one whose prefixes would resolve differently under the new
 * root, or whose id is already taken, is replaced by a shallow copy with its own declarations
 * or a suffixed id (`id-2`, `id-3`, … — deterministic for the same inputs).
 */
export function composePidf(entity: string, docs: readonly PidfDocument[]): Buffer {
  const rootBindings = sharedBindings(docs);
  const ids = new IdAllocator(docs);
  const tuples: XmlElement[] = [];
  const notes: XmlElement[] = [];
  const rest: XmlElement[] = [];
  for (const doc of docs) {
    for (const tuple of doc.tuples) tuples.push(place(tuple, doc, rootBindings, ids));
  }
  for (const doc of docs) {
    for (const other of doc.others) {
      const isNote = other.namespace === PIDF_NS && other.localName === "note";
      (isNote ? notes : rest).push(place(other, doc, rootBindings, ids));
    }
  }
  let out = `${XML_DECLARATION}<presence xmlns="${PIDF_NS}"`;
  for (const [prefix, uri] of rootBindings) {
    if (prefix !== "") out += ` xmlns:${prefix}="${escapeXmlAttribute(uri)}"`;
  }
  out += ` entity="${escapeXmlAttribute(entity)}"`;
  const children = tuples.concat(notes, rest);
  if (children.length === 0) return Buffer.from(`${out}/>\n`, "utf8");
  out += ">\n";
  for (const child of children) out += `${buildXml([child])}\n`;
  return Buffer.from(`${out}</presence>\n`, "utf8");
}

// Prefixes every document binds the same way go on the composed root; a prefix documents bind
// differently (doc 1's "r" is RPID, doc 2's "r" something else) is declared per element instead.
function sharedBindings(docs: readonly PidfDocument[]): Map<string, string> {
  const bindings = new Map<string, string>([["", PIDF_NS]]);
  const conflicting = new Set<string>();
  for (const doc of docs) {
    for (const element of allElements(doc)) {
      for (const prefix of element.inheritedPrefixes) {
        if (prefix === "" || conflicting.has(prefix)) continue;
        const uri = doc.namespaces[prefix] as string;
        const known = bindings.get(prefix);
        if (known === undefined) bindings.set(prefix, uri);
        else if (known !== uri) {
          bindings.delete(prefix);
          conflicting.add(prefix);
        }
      }
    }
  }
  return bindings;
}

function allElements(doc: PidfDocument): readonly PidfElement[] {
  return doc.tuples.length === 0
    ? doc.others
    : (doc.tuples as readonly PidfElement[]).concat(doc.others);
}

function place(
  element: PidfElement,
  doc: PidfDocument,
  rootBindings: ReadonlyMap<string, string>,
  ids: IdAllocator,
): XmlElement {
  let declarations: Record<string, string> | undefined;
  for (const prefix of element.inheritedPrefixes) {
    const uri = doc.namespaces[prefix] ?? "";
    if (rootBindings.get(prefix) === uri) continue;
    declarations ??= Object.create(null) as Record<string, string>;
    declarations[prefix === "" ? "xmlns" : `xmlns:${prefix}`] = escapeXmlAttribute(uri);
  }
  const id = element.id === undefined ? undefined : ids.claim(element.id);
  if (declarations === undefined && id === element.id) return element.node;
  const attributes: Record<string, string> = declarations ?? Object.create(null);
  for (const name in element.node.attributes) {
    attributes[name] =
      name === "id" && id !== element.id
        ? escapeXmlAttribute(id as string)
        : (element.node.attributes[name] as string);
  }
  return { type: "element", name: element.node.name, attributes, children: element.node.children };
}

// RFC 3863: tuple ids are unique in a document; RFC 4479 person and device ids share that space.
class IdAllocator {
  readonly #taken = new Set<string>();
  readonly #claimed = new Set<string>();

  constructor(docs: readonly PidfDocument[]) {
    for (const doc of docs) {
      for (const element of allElements(doc))
        if (element.id !== undefined) this.#taken.add(element.id);
    }
  }

  claim(id: string): string {
    let unique = id;
    // A suffixed id never takes one that a later element owns originally.
    for (let n = 2; this.#claimed.has(unique) || (unique !== id && this.#taken.has(unique)); n++) {
      unique = `${id}-${n}`;
    }
    this.#claimed.add(unique);
    return unique;
  }
}
