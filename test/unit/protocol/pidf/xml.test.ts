import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  buildXml,
  decodeXmlAttribute,
  decodeXmlText,
  escapeXmlAttribute,
  escapeXmlText,
  namespaceScope,
  parseXml,
  resolveAttributeName,
  resolveElementName,
  safeReason,
  type XmlElement,
  XmlError,
  type XmlNode,
} from "../../../../protocol/pidf/xml.js";

function rootOf(nodes: readonly XmlNode[]): XmlElement {
  const root = nodes.find((node): node is XmlElement => node.type === "element");
  assert.ok(root, "document has a root element");
  return root;
}

function childElements(element: XmlElement): XmlElement[] {
  return element.children.filter((node): node is XmlElement => node.type === "element");
}

function rejects(text: string, code: XmlError["code"], reason: RegExp): void {
  assert.throws(
    () => parseXml(text),
    (err: unknown) => {
      assert.ok(err instanceof XmlError, `expected XmlError, got ${String(err)}`);
      assert.equal(err.code, code);
      assert.match(err.reason, reason);
      assert.match(err.reason, /^[\x20-\x7e]{1,120}$/, "reason is one short ASCII line");
      return true;
    },
  );
}

describe("xml round trip", () => {
  const exact = [
    ["entities", "<a>x &amp; y &lt; z &gt; w &quot;q&quot; &apos;s&apos; &#233; &#x1F600;</a>"],
    ["attribute entities", '<a href="http://e.com/?a=1&amp;b=2" title="&lt;&quot;&#10;"/>'],
    ["bare quote characters", `<a t="it's">"quoted" 'single'</a>`],
    ["cdata", "<a><![CDATA[<not-a-tag> & ]] ]]><b/></a>"],
    ["comments", "<!-- before --><a><!-- inside --><b/></a><!-- after -->"],
    ["whitespace", "<a>\n  <b>  x  </b>\t\n</a>"],
    ["utf-8 text", '<note xml:lang="ko">회의 중입니다</note>'],
    ["namespaced names", '<p:a xmlns:p="urn:x" p:attr="1"><p:b/></p:a>'],
    [
      "prototype member names",
      '<constructor toString="1"><__proto__ hasOwnProperty="x"/></constructor>',
    ],
  ] as const;
  for (const [label, text] of exact) {
    test(`xml round trip - ${label} is reproduced exactly`, () => {
      assert.equal(buildXml(parseXml(text)), text);
    });
  }

  test("xml round trip - the declaration and processing instructions are dropped", () => {
    const nodes = parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<a><?pi data?>x</a>');
    assert.equal(buildXml(nodes), "<a>x</a>");
  });

  test("xml round trip - CRLF line ends come back as LF (XML 1.0 section 2.11)", () => {
    assert.equal(buildXml(parseXml("<a>\r\n x\r\n</a>")), "<a>\n x\n</a>");
  });

  test("xml round trip - empty elements are written self-closed", () => {
    assert.equal(buildXml(parseXml("<a><b></b></a>")), "<a><b/></a>");
  });

  test("xml round trip - a '\"' inside a single-quoted attribute is escaped, same value", () => {
    const text = buildXml(parseXml(`<a t='say "hi"'/>`));
    assert.equal(text, '<a t="say &quot;hi&quot;"/>');
    assert.equal(decodeXmlAttribute(rootOf(parseXml(text)).attributes.t ?? ""), 'say "hi"');
  });

  test("xml round trip - attributes keep their order and raw values", () => {
    const root = rootOf(parseXml(`<a z="1" a='&amp;' m="x"/>`));
    assert.deepEqual(Object.entries(root.attributes), [
      ["z", "1"],
      ["a", "&amp;"],
      ["m", "x"],
    ]);
  });
});

describe("xml security", () => {
  const billionLaughs = [
    '<?xml version="1.0"?>',
    "<!DOCTYPE lolz [",
    ' <!ENTITY lol "lol">',
    ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">',
    ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">',
    "]>",
    "<lolz>&lol3;</lolz>",
  ].join("\n");
  const cases = [
    ["billion laughs", billionLaughs],
    ["external entity", '<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>'],
    ["external DTD", '<!DOCTYPE presence SYSTEM "http://attacker.example/x.dtd"><presence/>'],
    ["bare doctype", "<!DOCTYPE a><a/>"],
    ["lower-case doctype", "<!doctype a><a/>"],
  ] as const;
  for (const [label, text] of cases) {
    test(`xml security - ${label} is refused before parsing`, () => {
      rejects(text, "forbidden-dtd", /^DOCTYPE\/entity declarations are not allowed$/);
    });
  }
});

describe("xml well-formedness", () => {
  const cases = [
    ["mismatched tag", "<a>\n  <b>\n</c></a>", /^malformed XML at line 3: /],
    ["empty input", "", /^malformed XML at line 1: /],
    ["boolean attribute", "<a b/>", /^malformed XML at line 1: /],
    ["repeated attribute", '<a x="1" x="2"/>', /^malformed XML at line 1: /],
    ["two root elements", "<a/><b/>", /exactly one root element/],
    ["text before the root", "x<a/>", /^malformed XML at line 1: /],
    ["text after the root", "<a/>x", /text after the root element/],
    ["undefined entity", "<a>&nbsp;</a>", /undefined entity &nbsp;/],
    ["empty character reference", "<a>&#x;</a>", /bad '&' reference/],
    ["bare '&' in an attribute", "<a x='a & b'/>", /bad '&' reference/],
    ["reference to a control character", "<a>&#1;</a>", /non-XML character/],
    ["'<' in an attribute", "<a x='<'/>", /'<' in attribute/],
    ["control character", "<a>\u0001</a>", /character not allowed/],
    ["lone surrogate", "<a>\ud800</a>", /character not allowed/],
    ["'--' in a comment", "<a><!-- a -- b --></a>", /'--' inside a comment/],
    ["']]>' in text", "<a>]]></a>", /']]>' in text/],
    ["too deeply nested", `<a>${"<b>".repeat(150)}${"</b>".repeat(150)}</a>`, /^malformed XML: /],
  ] as const;
  for (const [label, text, reason] of cases) {
    test(`xml well-formedness - ${label} is malformed`, () => rejects(text, "malformed", reason));
  }

  test("xml well-formedness - non-ASCII in a library message becomes a safe reason", () => {
    rejects("<회의>\n</회의의>", "malformed", /^malformed XML at line 2: .*\?/);
  });
});

describe("xml values", () => {
  test("xml values - text decoding resolves references and normalises line ends", () => {
    assert.equal(decodeXmlText("a &amp; b &lt;&gt; &#233;&#x1F600;\r\nz\r"), "a & b <> é😀\nz\n");
  });

  test("xml values - attribute decoding turns literal whitespace into spaces", () => {
    assert.equal(decodeXmlAttribute("a\tb\r\nc&#10;d&quot;"), 'a b c\nd"');
  });

  test("xml values - escaping then decoding gives the value back", () => {
    const value = "x < y & \"z\" > 'w'\tend\n";
    assert.equal(decodeXmlText(escapeXmlText(value)), value);
    assert.equal(decodeXmlAttribute(escapeXmlAttribute(value)), value);
    const root = rootOf(
      parseXml(`<a v="${escapeXmlAttribute(value)}">${escapeXmlText(value)}</a>`),
    );
    assert.equal(decodeXmlAttribute(root.attributes.v ?? ""), value);
  });

  test("xml values - safeReason keeps one printable ASCII line of at most 120 characters", () => {
    assert.equal(safeReason("bad\r\nthing 한국"), "bad?thing ?");
    const long = safeReason("x".repeat(500));
    assert.equal(long.length, 120);
    assert.ok(long.endsWith("..."));
  });
});

describe("xml namespaces", () => {
  const doc = [
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:rpid" entity="e">',
    '<r:mood xml:lang="en" r:attr="1" plain="2"><r:happy/></r:mood>',
    '<ext xmlns="urn:ext" xmlns:r="urn:other"><r:x/><y/></ext>',
    '<z xmlns=""/>',
    "</presence>",
  ].join("");
  const root = rootOf(parseXml(doc));
  const rootScope = namespaceScope(root);
  const [mood, ext, z] = childElements(root);
  assert.ok(mood && ext && z);

  test("xml namespaces - default and prefixed element names resolve", () => {
    assert.deepEqual(resolveElementName(root.name, rootScope), {
      namespace: "urn:ietf:params:xml:ns:pidf",
      localName: "presence",
    });
    const moodScope = namespaceScope(mood, rootScope);
    assert.deepEqual(resolveElementName(mood.name, moodScope), {
      namespace: "urn:rpid",
      localName: "mood",
    });
  });

  test("xml namespaces - nested declarations override the outer ones", () => {
    const extScope = namespaceScope(ext, rootScope);
    const [x, y] = childElements(ext);
    assert.ok(x && y);
    assert.equal(resolveElementName(ext.name, extScope).namespace, "urn:ext");
    assert.equal(resolveElementName(x.name, namespaceScope(x, extScope)).namespace, "urn:other");
    assert.equal(resolveElementName(y.name, namespaceScope(y, extScope)).namespace, "urn:ext");
    // The outer scope is not touched by the inner declarations.
    assert.equal(rootScope.r, "urn:rpid");
  });

  test('xml namespaces - xmlns="" undeclares the default namespace', () => {
    assert.deepEqual(resolveElementName(z.name, namespaceScope(z, rootScope)), {
      namespace: "",
      localName: "z",
    });
  });

  test("xml namespaces - attributes: unprefixed in no namespace, xml: always bound", () => {
    const scope = namespaceScope(mood, rootScope);
    assert.deepEqual(resolveAttributeName("plain", scope), { namespace: "", localName: "plain" });
    assert.deepEqual(resolveAttributeName("r:attr", scope), {
      namespace: "urn:rpid",
      localName: "attr",
    });
    assert.equal(
      resolveAttributeName("xml:lang", scope).namespace,
      "http://www.w3.org/XML/1998/namespace",
    );
  });

  const bad = [
    ["unbound prefix", "<a><q:b/></a>", /unbound namespace prefix 'q'/],
    ["two colons", '<a:b:c xmlns:a="urn:a"/>', /bad qualified name/],
    ["empty prefix", "<:a/>", /bad qualified name/],
    ["local part starting with a digit", '<a:1b xmlns:a="urn:a"/>', /bad qualified name/],
    ["prefix starting with a digit", '<a xmlns:1x="urn:a"/>', /bad namespace prefix/],
    ["undeclared prefix binding", '<a xmlns:p=""/>', /empty namespace/],
    ["rebinding xml", '<a xmlns:xml="urn:not-xml"/>', /reserved prefix/],
  ] as const;
  for (const [label, text, reason] of bad) {
    test(`xml namespaces - ${label} is malformed`, () => {
      assert.throws(
        () => {
          const top = rootOf(parseXml(text));
          const scope = namespaceScope(top);
          resolveElementName(top.name, scope);
          for (const child of childElements(top)) {
            resolveElementName(child.name, namespaceScope(child, scope));
          }
        },
        (err: unknown) =>
          err instanceof XmlError && err.code === "malformed" && reason.test(err.reason),
      );
    });
  }
});
