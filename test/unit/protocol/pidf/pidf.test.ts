import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  composePidf,
  neutralPidf,
  PIDF_CONTENT_TYPE,
  PIDF_NS,
  type PidfDocument,
  PidfError,
  parsePidf,
  serialisePidf,
  tupleIds,
} from "../../../../protocol/pidf/pidf.js";
import {
  buildXml,
  decodeXmlText,
  type NamespaceScope,
  namespaceScope,
  resolveElementName,
  type XmlElement,
} from "../../../../protocol/pidf/xml.js";

// Compiled into dist/test/unit/protocol/pidf/: the fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL("../../../../../test/fixtures/pidf/", import.meta.url));
const fixture = (name: string): Buffer => readFileSync(FIXTURES + name);

const RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid";
const DM_NS = "urn:ietf:params:xml:ns:pidf:data-model";

const pidf = (lines: readonly string[]): Buffer => Buffer.from(lines.join("\n"), "utf8");

function rejects(body: Buffer, code: PidfError["code"], reason: RegExp): void {
  assert.throws(
    () => parsePidf(body),
    (err: unknown) => {
      assert.ok(err instanceof PidfError, `expected PidfError, got ${String(err)}`);
      assert.equal(err.code, code);
      assert.match(err.reason, reason);
      assert.match(err.reason, /^[\x20-\x7e]{1,120}$/, "reason fits a SIP reason phrase");
      return true;
    },
  );
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

/** Every element of a document with its resolved name, in document order. */
function resolvedNames(root: XmlElement): string[] {
  const names: string[] = [];
  const visit = (element: XmlElement, outer: NamespaceScope | undefined): void => {
    const scope = namespaceScope(element, outer);
    const { namespace, localName } = resolveElementName(element.name, scope);
    names.push(`{${namespace}}${localName}`);
    for (const child of element.children) if (child.type === "element") visit(child, scope);
  };
  visit(root, undefined);
  return names;
}

const elementsXml = (doc: PidfDocument): string[] =>
  [...doc.tuples, ...doc.others].map((element) => buildXml([element.node]));

const FIXTURE_FILES = [
  "rfc3863-prefixed.xml",
  "rfc3863-extended.xml",
  "rpid-data-model.xml",
  "korean-note.xml",
  "many-tuples.xml",
];

describe("pidf parse", () => {
  test("pidf parse - constants", () => {
    assert.equal(PIDF_NS, "urn:ietf:params:xml:ns:pidf");
    assert.equal(PIDF_CONTENT_TYPE, "application/pidf+xml");
  });

  const expected = [
    ["rfc3863-prefixed.xml", "pres:someone@example.com", ["sg89ae"], []],
    ["rfc3863-extended.xml", "pres:someone@example.com", ["bs35r9", "eg92n8"], ["note"]],
    [
      "rpid-data-model.xml",
      "pres:someone@example.com",
      ["bs35r9", "ty4658"],
      ["note", "person", "device", "where"],
    ],
    ["korean-note.xml", "sip:minji@example.kr", ["a8098a"], ["note"]],
  ] as const;
  for (const [file, entity, ids, others] of expected) {
    test(`pidf parse - ${file}: entity, tuple ids, other elements`, () => {
      const doc = parsePidf(fixture(file));
      assert.equal(doc.entity, entity);
      assert.deepEqual(tupleIds(doc), ids);
      assert.deepEqual(
        doc.others.map((other) => other.localName),
        others,
      );
    });
  }

  test("pidf parse - a prefixed PIDF root is resolved through its declaration", () => {
    const doc = parsePidf(fixture("rfc3863-prefixed.xml"));
    assert.equal(doc.root.name, "impp:presence");
    assert.deepEqual({ ...doc.namespaces }, { impp: PIDF_NS });
  });

  test("pidf parse - data-model elements carry their ids and namespaces", () => {
    const doc = parsePidf(fixture("rpid-data-model.xml"));
    const [note, person, device, where] = doc.others;
    assert.equal(note?.namespace, PIDF_NS);
    assert.deepEqual([person?.namespace, person?.id], [DM_NS, "p1"]);
    assert.deepEqual([device?.namespace, device?.id], [DM_NS, "pc122"]);
    assert.equal(where?.namespace, "http://example.net/ns/made-up-geo");
    assert.equal(where?.id, undefined);
    assert.deepEqual([...(person?.inheritedPrefixes ?? [])].sort(), ["c", "dm", "rpid"]);
    assert.deepEqual(where?.inheritedPrefixes, []);
  });

  test("pidf parse - a 50 KB document with 100 tuples", () => {
    const body = fixture("many-tuples.xml");
    assert.ok(body.length > 45_000);
    const doc = parsePidf(body);
    assert.equal(doc.tuples.length, 100);
    assert.equal(doc.tuples[99]?.id, "line099");
    assert.equal(doc.others.length, 20);
  });

  for (const file of FIXTURE_FILES) {
    test(`pidf parse - ${file} re-serialises with the content bytes unchanged`, () => {
      // Only the layout inside the <presence> start tag may differ (attributes on one line).
      const afterStartTag = (text: string): string => {
        const start = /<(?:\w+:)?presence\b[^>]*>/.exec(text);
        assert.ok(start);
        return text.slice(start.index + start[0].length).trimEnd();
      };
      const body = fixture(file);
      const again = serialisePidf(parsePidf(body));
      assert.equal(afterStartTag(again.toString("utf8")), afterStartTag(body.toString("utf8")));
    });
  }

  test("pidf parse - the Korean note keeps its exact UTF-8 bytes through parse and compose", () => {
    const body = fixture("korean-note.xml");
    const note = Buffer.from(
      '<note xml:lang="ko">회의 중입니다. 오후 3시 이후에 연락 주세요 &#x1F4DE;</note>',
      "utf8",
    );
    assert.notEqual(body.indexOf(note), -1);
    const composed = composePidf("sip:minji@example.kr", [parsePidf(body)]);
    assert.notEqual(composed.indexOf(note), -1);
    const tupleNote = parsePidf(composed).tuples[0]?.node.children.find(
      (child): child is XmlElement => child.type === "element" && child.name === "note",
    );
    const text = tupleNote?.children[0];
    assert.equal(
      text?.type === "text" ? decodeXmlText(text.text) : undefined,
      "회의 중입니다. 오후 3시 이후에 연락 주세요 📞",
    );
  });
});

describe("pidf parse errors", () => {
  const head = '<?xml version="1.0" encoding="UTF-8"?>';
  const cases = [
    [
      "wrong root name",
      [head, `<presense xmlns="${PIDF_NS}" entity="e"/>`],
      "not-pidf",
      /^root element is not PIDF <presence>$/,
    ],
    ["presence in no namespace", [head, '<presence entity="e"/>'], "not-pidf", /not PIDF/],
    [
      "presence in another namespace",
      ['<p:presence xmlns:p="urn:other" entity="e"/>'],
      "not-pidf",
      /not PIDF/,
    ],
    ["missing entity", [`<presence xmlns="${PIDF_NS}"/>`], "invalid", /entity/],
    [
      "tuple without id",
      [`<presence xmlns="${PIDF_NS}" entity="e"><tuple><status/></tuple></presence>`],
      "invalid",
      /tuple without an id/,
    ],
    [
      "tuple without status",
      [
        `<presence xmlns="${PIDF_NS}" entity="e"><tuple id="t1"><contact>sip:a@b</contact></tuple></presence>`,
      ],
      "invalid",
      /tuple "t1" has no <status>/,
    ],
    [
      "status in another namespace",
      [
        `<presence xmlns="${PIDF_NS}" entity="e"><tuple id="t1"><x:status xmlns:x="urn:x"/></tuple></presence>`,
      ],
      "invalid",
      /has no <status>/,
    ],
    [
      "duplicate tuple ids",
      [
        `<presence xmlns="${PIDF_NS}" entity="e"><tuple id="a"><status/></tuple><tuple id="a"><status/></tuple></presence>`,
      ],
      "invalid",
      /duplicate tuple id "a"/,
    ],
    [
      "text inside presence",
      [`<presence xmlns="${PIDF_NS}" entity="e">hello</presence>`],
      "invalid",
      /text directly inside/,
    ],
    [
      "unbound prefix deep inside",
      [
        `<presence xmlns="${PIDF_NS}" entity="e"><tuple id="a"><status><q:x/></status></tuple></presence>`,
      ],
      "malformed",
      /unbound namespace prefix 'q'/,
    ],
    ["not XML", ["hello"], "malformed", /^malformed XML at line 1: /],
    [
      "mismatched tags",
      [head, `<presence xmlns="${PIDF_NS}" entity="e">`, "<tuple>", "</presence>"],
      "malformed",
      /^malformed XML at line 4: /,
    ],
    [
      "doctype",
      [head, '<!DOCTYPE p [<!ENTITY x "y">]>', `<presence xmlns="${PIDF_NS}" entity="&x;"/>`],
      "forbidden-dtd",
      /^DOCTYPE\/entity declarations are not allowed$/,
    ],
    [
      "Latin-1 declaration",
      ['<?xml version="1.0" encoding="ISO-8859-1"?>', `<presence xmlns="${PIDF_NS}" entity="e"/>`],
      "invalid",
      /only UTF-8/,
    ],
  ] as const;
  for (const [label, lines, code, reason] of cases) {
    test(`pidf parse errors - ${label} is ${code}`, () => rejects(pidf(lines), code, reason));
  }

  test("pidf parse errors - bytes that are not UTF-8 are malformed", () => {
    const body = Buffer.concat([
      Buffer.from(`<presence xmlns="${PIDF_NS}" entity="e"><note>`),
      Buffer.from([0xc3, 0x28]),
      Buffer.from("</note></presence>"),
    ]);
    rejects(body, "malformed", /not valid UTF-8/);
  });

  test("pidf parse errors - a long non-ASCII tuple id still gives a short ASCII reason", () => {
    const id = "회".repeat(200);
    rejects(
      pidf([
        `<presence xmlns="${PIDF_NS}" entity="e"><tuple id="${id}"><basic/></tuple></presence>`,
      ]),
      "invalid",
      /^tuple "\?/,
    );
  });
});

// Two publications of one presentity whose "r" prefixes mean different namespaces.
const docA = parsePidf(
  pidf([
    `<p:presence xmlns:p="${PIDF_NS}" xmlns:r="${RPID_NS}" xmlns:dm="${DM_NS}" entity="pres:alice@example.com">`,
    ' <p:tuple id="t1"><p:status><p:basic>open</p:basic></p:status></p:tuple>',
    ' <dm:person id="p1"><r:activities><r:busy/></r:activities><plain>no namespace</plain></dm:person>',
    " <p:note>from A</p:note>",
    "</p:presence>",
  ]),
);
const docB = parsePidf(
  pidf([
    `<presence xmlns="${PIDF_NS}" xmlns:r="urn:example:not-rpid" xmlns:dm="${DM_NS}" entity="sip:alice@example.com">`,
    ' <tuple id="t1"><status><basic>closed</basic></status><r:thing r:level="2"/></tuple>',
    ' <tuple id="t1-2"><status><basic>open</basic></status></tuple>',
    " <note>from B</note>",
    ' <dm:person id="p1"><r:thing/></dm:person>',
    "</presence>",
  ]),
);
deepFreeze(docA);
deepFreeze(docB);

describe("pidf compose", () => {
  test("pidf compose - one document round-trips: same tuples and elements", () => {
    for (const file of FIXTURE_FILES) {
      const doc = parsePidf(fixture(file));
      const again = parsePidf(composePidf(doc.entity, [doc]));
      assert.deepEqual(tupleIds(again), tupleIds(doc), file);
      assert.deepEqual(elementsXml(again).sort(), elementsXml(doc).sort(), file);
      assert.deepEqual(resolvedNames(again.root).sort(), resolvedNames(doc.root).sort(), file);
    }
  });

  test("pidf compose - the root is default-namespace PIDF with the given entity", () => {
    const text = composePidf('sip:a&b@example.com;x="y"', [docA]).toString("utf8");
    assert.ok(
      text.startsWith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf"',
      ),
    );
    assert.equal(parsePidf(Buffer.from(text)).entity, 'sip:a&b@example.com;x="y"');
  });

  test("pidf compose - tuples of every document first, then notes, then the other elements", () => {
    const composed = parsePidf(composePidf("sip:alice@example.com", [docA, docB]));
    assert.deepEqual(tupleIds(composed), ["t1", "t1-3", "t1-2"]);
    assert.deepEqual(
      composed.others.map((other) => `${other.localName}:${other.id ?? ""}`),
      ["note:", "note:", "person:p1", "person:p1-2"],
    );
  });

  test("pidf compose - colliding prefixes stay namespace-correct", () => {
    const composed = parsePidf(composePidf("sip:alice@example.com", [docA, docB]));
    const names = resolvedNames(composed.root);
    assert.ok(names.includes(`{${RPID_NS}}activities`));
    assert.ok(names.includes(`{${RPID_NS}}busy`));
    assert.ok(names.includes("{urn:example:not-rpid}thing"));
    assert.ok(names.includes("{}plain"), "an element in no namespace stays in no namespace");
    assert.ok(!names.includes(`{${RPID_NS}}thing`));
    assert.ok(!names.includes("{urn:example:not-rpid}busy"));
  });

  test("pidf compose - ids are made unique deterministically", () => {
    const first = composePidf("sip:alice@example.com", [docA, docB]);
    const second = composePidf("sip:alice@example.com", [docA, docB]);
    assert.ok(first.equals(second));
    const reversed = parsePidf(composePidf("sip:alice@example.com", [docB, docA]));
    assert.deepEqual(tupleIds(reversed), ["t1", "t1-2", "t1-3"]);
  });

  test("pidf compose - cached documents are not mutated", () => {
    const before = [serialisePidf(docA), serialisePidf(docB)];
    composePidf("sip:alice@example.com", [docA, docB, docA]);
    assert.ok(serialisePidf(docA).equals(before[0] as Buffer));
    assert.ok(serialisePidf(docB).equals(before[1] as Buffer));
    assert.equal(docB.tuples[0]?.node.attributes.id, "t1");
  });

  test("pidf compose - elements that need nothing new are shared, not copied", () => {
    const doc = parsePidf(fixture("many-tuples.xml"));
    const text = composePidf(doc.entity, [doc]).toString("utf8");
    for (const tuple of doc.tuples) assert.ok(text.includes(buildXml([tuple.node])));
  });

  test("pidf compose - the same 50 KB document twice gives 200 unique tuple ids", () => {
    const doc = parsePidf(fixture("many-tuples.xml"));
    const composed = parsePidf(composePidf(doc.entity, [doc, doc]));
    assert.equal(new Set(tupleIds(composed)).size, 200);
    assert.equal(composed.tuples[100]?.id, "line000-2");
  });

  test("pidf compose - neutral state is a presence without tuples", () => {
    const doc = parsePidf(neutralPidf("pres:bob@example.com"));
    assert.equal(doc.entity, "pres:bob@example.com");
    assert.deepEqual(tupleIds(doc), []);
    assert.deepEqual(doc.others, []);
    assert.equal(
      neutralPidf("pres:bob@example.com").toString("utf8"),
      '<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:bob@example.com"/>\n',
    );
  });
});

const XSD = `${FIXTURES}pidf.xsd`;
const noXmllint = existsSync("/usr/bin/xmllint") ? false : "xmllint is not installed";

function schemaValid(body: Buffer): boolean {
  try {
    execFileSync("/usr/bin/xmllint", ["--noout", "--nonet", "--schema", XSD, "-"], {
      input: body,
      stdio: ["pipe", "ignore", "ignore"],
    });
    return true;
  } catch {
    return false;
  }
}

describe("pidf schema", { skip: noXmllint }, () => {
  test("pidf schema - the validator rejects a tuple without status (the check is live)", () => {
    assert.equal(
      schemaValid(
        pidf([`<presence xmlns="${PIDF_NS}" entity="pres:a@b"><tuple id="x"/></presence>`]),
      ),
      false,
    );
  });

  test("pidf schema - every fixture is valid RFC 3863", () => {
    for (const file of FIXTURE_FILES) assert.ok(schemaValid(fixture(file)), file);
  });

  test("pidf schema - composed documents are valid RFC 3863", () => {
    const docs = FIXTURE_FILES.map((file) => parsePidf(fixture(file)));
    for (const doc of docs) assert.ok(schemaValid(composePidf(doc.entity, [doc])));
    assert.ok(schemaValid(composePidf("pres:someone@example.com", docs)));
    assert.ok(schemaValid(composePidf("pres:someone@example.com", [...docs].reverse())));
  });

  test("pidf schema - colliding prefixes and shared tuple ids still compose to valid RFC 3863", () => {
    assert.ok(schemaValid(composePidf("sip:alice@example.com", [docA, docB, docA])));
  });

  test("pidf schema - the neutral document is valid RFC 3863", () => {
    assert.ok(schemaValid(neutralPidf("pres:bob@example.com")));
  });
});
