// test/unit/protocol/ccmp: the extended CCMP codec — round trips, wire form, schema validity, refusals.
// Schema checks run xmllint against protocol/ccmp/extd-ccmp.xsd (which imports ccmp.xsd), offline.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  CCMP_NS,
  CCMP_RESPONSE_CODES,
  CcmpError,
  type CcmpMessage,
  type CcmpRequest,
  type CcmpResponse,
  decodeCcmp,
  EXTD_CCMP_CONTENT_TYPE,
  EXTD_NS,
  EXTENSIONS,
  type ExtdElements,
  encodeCcmp,
  errorResponse,
} from "../../../../protocol/ccmp/ccmp.js";

// Compiled into dist/test/unit/protocol/ccmp/: schemas and fixtures stay in the source tree.
const ROOT = new URL("../../../../../", import.meta.url);
const SCHEMA = fileURLToPath(new URL("protocol/ccmp/extd-ccmp.xsd", ROOT));
const FIXTURES = fileURLToPath(new URL("test/fixtures/ccmp/", ROOT));
const fixture = (name: string): Buffer => readFileSync(`${FIXTURES}${name}`);

const ALL_ELEMENTS: ExtdElements = {
  pressvrLoad: [
    { svrId: "s1", level: 42.5 },
    { svrId: "s2", level: 0 },
    { svrId: "s3", level: 100 },
  ],
  presSysUsers: [
    { svrId: "s1", users: ["sip:alice@example.com", "sip:bob@example.com"], count: 2 },
    { svrId: "s2", count: 0 },
    { svrId: "s3", users: ["sips:carol@example.com"] },
  ],
  redirectionUsrAddr: "sip:watcher@host",
  svrPool: [
    { svrId: "p1", contact: "sip:p1@127.0.0.1:5066" },
    { svrId: "p2", contact: "sip:p2@127.0.0.1:5068;transport=tcp" },
  ],
  actvSvrNums: 3,
  maxLoad: 100,
  minLoad: 20,
};

const MESSAGES: Readonly<Record<string, CcmpMessage>> = {
  "full request": {
    kind: "request",
    confUserID: "sip:primary@10.0.0.1",
    confObjID: "xcon:cluster@example.com",
    operation: "update",
    extension: "load-report",
    elements: ALL_ELEMENTS,
  },
  "minimal request": {
    kind: "request",
    confUserID: "sip:primary@10.0.0.1",
    extension: "drain",
    elements: {},
  },
  "full response": {
    kind: "response",
    confUserID: "sip:s1@10.0.0.2",
    confObjID: "xcon:cluster@example.com",
    operation: "retrieve",
    responseCode: 200,
    responseString: "success",
    version: 12,
    extension: "load-report",
    elements: ALL_ELEMENTS,
  },
  "minimal response": {
    kind: "response",
    confUserID: "sip:s1@10.0.0.2",
    responseCode: 404,
    extension: "promote",
    elements: {},
  },
  "options request": { kind: "options-request", confUserID: "sip:s1@10.0.0.2" },
  "options response": {
    kind: "options-response",
    confUserID: "sip:primary@10.0.0.1",
    responseCode: 200,
    extensions: [...EXTENSIONS],
  },
  "empty options response": {
    kind: "options-response",
    confUserID: "sip:primary@10.0.0.1",
    responseCode: 200,
    extensions: [],
  },
};

const SPECIAL = `a&b<c>d"e'f]]>g\r\nh\ti &amp; &#13; 한글 😀 `;
const SPECIAL_TOKEN = `sip:x&y<z>"'@h]]>;a=&amp;`;

function roundTrip(message: CcmpMessage): CcmpMessage {
  return decodeCcmp(encodeCcmp(message));
}

/** Runs `run` and returns the CcmpError it throws; fails on anything else. */
function refusal(run: () => unknown): CcmpError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof CcmpError, `not a CcmpError: ${String(err)}`);
    const error = err;
    assert.match(error.reason, /^[\x20-\x7e]{1,120}$/, "reason is short printable ASCII");
    return error;
  }
  assert.fail("expected a CcmpError");
}

const xml = (lines: readonly string[]): Buffer => Buffer.from(lines.join("\n"), "utf8");

/** A request document with `content` inside <ccmp:extendedRequest> after the extensionName. */
function request(content: readonly string[], head = ["<confUserID>sip:p@h</confUserID>"]): Buffer {
  return xml([
    `<ccmp:ccmpRequest xmlns:ccmp="${CCMP_NS}" xmlns:ex="${EXTD_NS}"`,
    '    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
    '  <ccmpRequest xsi:type="ccmp:ccmp-extended-request-message-type">',
    ...head,
    "    <ccmp:extendedRequest>",
    "      <extensionName>load-report</extensionName>",
    ...content,
    "    </ccmp:extendedRequest>",
    "  </ccmpRequest>",
    "</ccmp:ccmpRequest>",
  ]);
}

describe("ccmp codec", () => {
  test("ccmp - constants name the namespaces and content type of the paper's extension", () => {
    assert.equal(CCMP_NS, "urn:ietf:params:xml:ns:xcon-ccmp");
    assert.equal(EXTD_NS, "urn:presence-cluster:params:xml:ns:extd-ccmp");
    assert.equal(EXTD_CCMP_CONTENT_TYPE, "application/extd-ccmp");
    assert.deepEqual(
      [...EXTENSIONS],
      [
        "session",
        "load-report",
        "redirect-user",
        "server-pool",
        "promote",
        "ready",
        "drain",
        "drained",
      ],
    );
    assert.equal(CCMP_RESPONSE_CODES.success, 200);
    assert.equal(CCMP_RESPONSE_CODES.badRequest, 400);
  });

  for (const [name, message] of Object.entries(MESSAGES)) {
    test(`ccmp - ${name} round-trips`, () => {
      assert.deepEqual(roundTrip(message), message);
    });
  }

  test("ccmp - XML-special characters, CR, tabs and non-ASCII survive in every string field", () => {
    const response: CcmpMessage = {
      kind: "response",
      confUserID: SPECIAL,
      confObjID: `obj ${SPECIAL}`,
      responseCode: 200,
      responseString: SPECIAL,
      extension: SPECIAL,
      elements: {
        pressvrLoad: [{ svrId: SPECIAL_TOKEN, level: 1 }],
        presSysUsers: [{ svrId: SPECIAL_TOKEN, users: [SPECIAL_TOKEN, "sip:한글@例え.jp"] }],
        redirectionUsrAddr: SPECIAL_TOKEN,
        svrPool: [{ svrId: SPECIAL_TOKEN, contact: SPECIAL_TOKEN }],
      },
    };
    assert.deepEqual(roundTrip(response), response);
    const options: CcmpMessage = {
      kind: "options-response",
      confUserID: SPECIAL,
      responseCode: 200,
      extensions: [SPECIAL, ""],
    };
    assert.deepEqual(roundTrip(options), options);
    assert.deepEqual(roundTrip({ kind: "options-request", confUserID: "" }), {
      kind: "options-request",
      confUserID: "",
    });
  });

  test("ccmp - a request is written as RFC 6503 extendedRequest with the paper's elements", () => {
    const body = encodeCcmp({
      kind: "request",
      confUserID: "sip:primary@10.0.0.1",
      operation: "update",
      extension: "load-report",
      elements: { pressvrLoad: [{ svrId: "s1", level: 42.5 }], maxLoad: 100 },
    });
    assert.equal(
      body.toString("utf8"),
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        `<ccmp:ccmpRequest xmlns:ccmp="${CCMP_NS}" xmlns:ex="${EXTD_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`,
        '  <ccmpRequest xsi:type="ccmp:ccmp-extended-request-message-type">',
        "    <confUserID>sip:primary@10.0.0.1</confUserID>",
        "    <operation>update</operation>",
        "    <ccmp:extendedRequest>",
        "      <extensionName>load-report</extensionName>",
        "      <ex:pressvr-load>",
        '        <ex:curr-load-level svr-id="s1">42.5</ex:curr-load-level>',
        "      </ex:pressvr-load>",
        "      <ex:max-load>100</ex:max-load>",
        "    </ccmp:extendedRequest>",
        "  </ccmpRequest>",
        "</ccmp:ccmpRequest>",
        "",
      ].join("\n"),
    );
  });

  test("ccmp - levels travel to six decimal places without exponent, exact on that grid", () => {
    const loads = (levels: readonly number[]): CcmpMessage =>
      withElements({ pressvrLoad: levels.map((level, i) => ({ svrId: `s${i}`, level })) });
    const exact = [0, 0.000001, 42.5, 123456.789, 999999999999.999, 4e9 + 0.123457, 1e11];
    const text = encodeCcmp(loads(exact)).toString("utf8");
    assert.doesNotMatch(text, /\d[eE][+-]?\d/);
    for (const lexical of [">0<", ">0.000001<", ">42.5<", ">999999999999.999<", ">100000000000<"]) {
      assert.ok(text.includes(lexical), lexical);
    }
    assert.deepEqual(decodeCcmp(Buffer.from(text)), loads(exact));
    // Finer than a millionth is rounded, the usual floating-point residue included.
    assert.deepEqual(
      roundTrip(loads([0.1 + 0.2, 1.5e-7, 5e-324, 2 / 3])),
      loads([0.3, 0, 0, 0.666667]),
    );
  });

  test("ccmp - hand-written documents decode by namespace, not by prefix", () => {
    assert.deepEqual(decodeCcmp(fixture("redirect-user-request.xml")), {
      kind: "request",
      confUserID: "sip:primary@10.0.0.1;transport=tcp",
      confObjID: "xcon:cluster-1@example.com",
      operation: "create",
      extension: "redirect-user",
      elements: { redirectionUsrAddr: "sip:watcher@example.com" },
    });
    assert.deepEqual(decodeCcmp(fixture("load-report-response.xml")), {
      kind: "response",
      confUserID: "sip:s1@10.0.0.2:5070",
      operation: "retrieve",
      responseCode: 200,
      responseString: "success",
      version: 7,
      extension: "load-report",
      elements: {
        pressvrLoad: [{ svrId: "s1", level: 42.5 }],
        presSysUsers: [
          {
            svrId: "s1",
            count: 3,
            users: ["sip:alice@example.com", "sip:bob@example.com", "sip:carol@example.com"],
          },
        ],
        actvSvrNums: 2,
        maxLoad: 100,
        minLoad: 0.5,
      },
    });
    assert.deepEqual(decodeCcmp(fixture("options-response-rfc.xml")), {
      kind: "options-response",
      confUserID: "sip:primary@10.0.0.1",
      responseCode: 200,
      extensions: ["load-report", "redirect-user"],
    });
  });

  test("ccmp - a UTF-8 byte order mark and an explicit UTF-8 declaration are accepted", () => {
    const body = encodeCcmp(MESSAGES["options request"] as CcmpMessage);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    assert.deepEqual(decodeCcmp(bom), MESSAGES["options request"]);
  });

  test("ccmp - empty user lists are written as absence (a lossy corner)", () => {
    const message: CcmpMessage = {
      kind: "request",
      confUserID: "u",
      extension: "drain",
      elements: { presSysUsers: [{ svrId: "s1", users: [], count: 0 }] },
    };
    assert.deepEqual(roundTrip(message), {
      ...message,
      elements: { presSysUsers: [{ svrId: "s1", count: 0 }] },
    });
    assert.deepEqual(roundTrip({ ...message, elements: { presSysUsers: [] } }), {
      ...message,
      elements: {},
    });
  });

  const badValues: ReadonlyArray<[string, CcmpMessage, RegExp]> = [
    ["a negative load", withElements({ pressvrLoad: [{ svrId: "s1", level: -1 }] }), /curr-load/],
    ["a load of 10^12", withElements({ pressvrLoad: [{ svrId: "s1", level: 1e12 }] }), /10\^12/],
    ["a NaN max-load", withElements({ maxLoad: Number.NaN }), /max-load/],
    ["an infinite min-load", withElements({ minLoad: Number.POSITIVE_INFINITY }), /min-load/],
    ["a fractional server count", withElements({ actvSvrNums: 1.5 }), /actv-svr-nums/],
    ["an unsafe count", withElements({ actvSvrNums: 2 ** 53 }), /actv-svr-nums/],
    [
      "a server id with a space",
      withElements({ svrPool: [{ svrId: "p 1", contact: "c" }] }),
      /svr-id/,
    ],
    ["an empty AOR", withElements({ redirectionUsrAddr: "" }), /redirection-usr-addr/],
    [
      "a duplicate server id",
      withElements({
        pressvrLoad: [
          { svrId: "s1", level: 1 },
          { svrId: "s1", level: 2 },
        ],
      }),
      /twice/,
    ],
    ["a NUL character", { kind: "options-request", confUserID: "a\u0000b" }, /non-XML/],
    ["a lone surrogate", withElements({}, "ext\ud800"), /non-XML/],
    [
      "a four-digit response code",
      { kind: "options-response", confUserID: "u", responseCode: 1000, extensions: [] },
      /response-code/,
    ],
    [
      "version 0",
      {
        kind: "response",
        confUserID: "u",
        responseCode: 200,
        version: 0,
        extension: "x",
        elements: {},
      },
      /version/,
    ],
    [
      "an unknown operation",
      {
        kind: "request",
        confUserID: "u",
        operation: "merge" as "update",
        extension: "x",
        elements: {},
      },
      /operation/,
    ],
  ];
  for (const [name, message, reason] of badValues) {
    test(`ccmp - encoding refuses ${name} (CcmpError 400) rather than write an invalid document`, () => {
      const error = refusal(() => encodeCcmp(message));
      assert.equal(error.responseCode, 400);
      assert.match(error.reason, reason);
    });
  }
});

function withElements(elements: ExtdElements, extension = "load-report"): CcmpMessage {
  return { kind: "request", confUserID: "sip:p@h", extension, elements };
}

/**
 * Bodies the decoder refuses, each with the reason it gives and whether xmllint with extd-ccmp.xsd
 * refuses it too ("schema") or lets it pass ("codec": a rule of the decoding policy in ccmp.ts, or
 * an unbound prefix, which libxml2 only warns about).
 */
const REFUSED: ReadonlyArray<[string, Buffer, RegExp, "schema" | "codec"]> = [
  ["not XML", Buffer.from("INVITE sip:bob@example.com SIP/2.0"), /malformed XML/, "schema"],
  ["an empty body", Buffer.alloc(0), /malformed XML/, "schema"],
  ["invalid UTF-8", Buffer.from([0x3c, 0x61, 0xff, 0x2f, 0x3e]), /UTF-8/, "schema"],
  [
    "another encoding",
    Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><a/>'),
    /only UTF-8/,
    "schema",
  ],
  ["a DOCTYPE", Buffer.from(`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`), /DOCTYPE/, "schema"],
  [
    "an undeclared entity",
    request(["<ex:max-load>&lol;</ex:max-load>"]),
    /undefined entity/,
    "schema",
  ],
  [
    "a wrong root",
    Buffer.from(`<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`),
    /root <presence>/,
    "schema",
  ],
  [
    "a CCMP root in the wrong namespace",
    Buffer.from('<ccmpRequest xmlns="urn:ietf:params:xml:ns:xcon-ccmpx"/>'),
    /not in the CCMP namespace/,
    "schema",
  ],
  [
    "a CCMP root in no namespace",
    Buffer.from("<ccmpResponse><ccmpResponse/></ccmpResponse>"),
    /namespace: none/,
    "schema",
  ],
  [
    "a qualified inner element",
    Buffer.from(
      `<c:ccmpRequest xmlns:c="${CCMP_NS}"><c:ccmpRequest><confUserID>u</confUserID></c:ccmpRequest></c:ccmpRequest>`,
    ),
    /unqualified/,
    "schema",
  ],
  [
    "no xsi:type",
    Buffer.from(
      `<c:ccmpRequest xmlns:c="${CCMP_NS}"><ccmpRequest><confUserID>u</confUserID></ccmpRequest></c:ccmpRequest>`,
    ),
    /xsi:type/,
    "codec",
  ],
  [
    "an RFC 6503 conference message",
    Buffer.from(
      [
        `<c:ccmpRequest xmlns:c="${CCMP_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`,
        '<ccmpRequest xsi:type="c:ccmp-confs-request-message-type"><confUserID>u</confUserID>',
        "<c:confsRequest/></ccmpRequest></c:ccmpRequest>",
      ].join(""),
    ),
    /ccmp-confs-request-message-type is not supported/,
    "schema",
  ],
  [
    "a response type in a request",
    Buffer.from(
      [
        `<c:ccmpRequest xmlns:c="${CCMP_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`,
        '<ccmpRequest xsi:type="c:ccmp-options-response-message-type"><confUserID>u</confUserID>',
        "</ccmpRequest></c:ccmpRequest>",
      ].join(""),
    ),
    /not supported in a ccmpRequest/,
    "schema",
  ],
  [
    "a negative load",
    request([
      '<ex:pressvr-load><ex:curr-load-level svr-id="s1">-0.5</ex:curr-load-level></ex:pressvr-load>',
    ]),
    /negative/,
    "schema",
  ],
  [
    "a non-numeric max-load",
    request(["<ex:max-load>lots</ex:max-load>"]),
    /<ex:max-load> is not a decimal: "lots"/,
    "schema",
  ],
  [
    "an exponent in min-load",
    request(["<ex:min-load>1e3</ex:min-load>"]),
    /not a decimal/,
    "schema",
  ],
  [
    "a seventh decimal",
    request(["<ex:min-load>0.1234567</ex:min-load>"]),
    /more than 6 decimals/,
    "schema",
  ],
  [
    "a max-load of 10^12",
    request(["<ex:max-load>1000000000000</ex:max-load>"]),
    /below 10\^12/,
    "schema",
  ],
  [
    "a fractional actv-svr-nums",
    request(["<ex:actv-svr-nums>2.5</ex:actv-svr-nums>"]),
    /not an integer/,
    "schema",
  ],
  [
    "a negative user count",
    request(['<ex:pres-sys-users svr-id="s1" count="-2"/>']),
    /count .* >= 0/,
    "schema",
  ],
  ["a missing confUserID", request([], ["<confObjID>x</confObjID>"]), /no <confUserID>/, "codec"],
  [
    "fields out of order",
    request([], ["<confObjID>x</confObjID>", "<confUserID>u</confUserID>"]),
    /out of order/,
    "schema",
  ],
  [
    "a repeated max-load",
    request(["<ex:max-load>1</ex:max-load>", "<ex:max-load>2</ex:max-load>"]),
    /appears twice/,
    "codec",
  ],
  [
    "an unknown element of ours",
    request(["<ex:max-laod>1</ex:max-laod>"]),
    /unknown element <ex:max-laod>/,
    "codec",
  ],
  [
    "one of ours outside extendedRequest",
    request([], ["<confUserID>u</confUserID>", "<ex:max-load>1</ex:max-load>"]),
    /misplaced/,
    "codec",
  ],
  [
    "text between elements",
    request(["stray <ex:max-load>1</ex:max-load>"]),
    /text is not allowed/,
    "schema",
  ],
  [
    "a missing svr-id",
    request(["<ex:pressvr-load><ex:curr-load-level>1</ex:curr-load-level></ex:pressvr-load>"]),
    /no svr-id/,
    "schema",
  ],
  [
    "a server id with a space",
    request(['<ex:pres-sys-users svr-id="s 1"/>']),
    /without whitespace/,
    "schema",
  ],
  [
    "one server loaded twice",
    request([
      '<ex:pressvr-load><ex:curr-load-level svr-id="s1">1</ex:curr-load-level><ex:curr-load-level svr-id=" s1">2</ex:curr-load-level></ex:pressvr-load>',
    ]),
    /appears twice/,
    "schema",
  ],
  [
    "two user lists for one server",
    request(['<ex:pres-sys-users svr-id="s1"/>', '<ex:pres-sys-users svr-id="s1"/>']),
    /two <ex:pres-sys-users>/,
    "codec",
  ],
  [
    "text inside an empty svr",
    request(['<ex:svr-pool><ex:svr svr-id="p1" contact="c"> </ex:svr></ex:svr-pool>']),
    /must be empty/,
    "schema",
  ],
  [
    "an unknown attribute",
    request(['<ex:svr-pool><ex:svr svr-id="p1" contact="c" port="1"/></ex:svr-pool>']),
    /unexpected attribute port/,
    "schema",
  ],
  [
    "an unbound prefix in a skipped element",
    request(["<foo:x xmlns:foo='urn:f'><bar:y/></foo:x>"]),
    /unbound namespace prefix 'bar'/,
    "codec",
  ],
  [
    "a missing extensionName",
    Buffer.from(
      request(["<ex:max-load>1</ex:max-load>"])
        .toString("utf8")
        .replace("<extensionName>load-report</extensionName>", ""),
    ),
    /must start with <extensionName>/,
    "schema",
  ],
];

describe("ccmp malformed input", () => {
  for (const [name, body, reason] of REFUSED) {
    test(`ccmp - ${name} is refused with 400 badRequest and a short reason`, () => {
      const error = refusal(() => decodeCcmp(body));
      assert.equal(error.responseCode, CCMP_RESPONSE_CODES.badRequest);
      assert.match(error.reason, reason);
    });
  }

  test("ccmp - a response without response-code, and one of four digits, are refused", () => {
    const response = (code: string): Buffer =>
      Buffer.from(
        [
          `<c:ccmpResponse xmlns:c="${CCMP_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`,
          '<ccmpResponse xsi:type="c:ccmp-extended-response-message-type"><confUserID>u</confUserID>',
          code,
          "<c:extendedResponse><extensionName>drain</extensionName></c:extendedResponse>",
          "</ccmpResponse></c:ccmpResponse>",
        ].join(""),
      );
    assert.match(refusal(() => decodeCcmp(response(""))).reason, /no <response-code>/);
    assert.match(
      refusal(() => decodeCcmp(response("<response-code>2000</response-code>"))).reason,
      /three digits/,
    );
    assert.equal(decodeCcmp(response("<response-code>200</response-code>")).kind, "response");
  });

  test("ccmp - every truncation and byte flip of a valid body decodes or throws CcmpError only", () => {
    const body = encodeCcmp(MESSAGES["full response"] as CcmpMessage);
    for (let end = 0; end < body.length; end++) {
      try {
        decodeCcmp(body.subarray(0, end));
      } catch (err) {
        assert.ok(err instanceof CcmpError, `truncated at ${end}: ${String(err)}`);
      }
    }
    for (let at = 0; at < body.length; at++) {
      for (const byte of [0x3c, 0x26, 0x22, 0x3a, 0x20, 0x00, 0xff]) {
        const mutated = Buffer.from(body);
        mutated[at] = byte;
        try {
          decodeCcmp(mutated);
        } catch (err) {
          assert.ok(err instanceof CcmpError, `byte ${byte} at ${at}: ${String(err)}`);
        }
      }
    }
  });

  test("ccmp - errorResponse answers a bad request with its confUserID and extension name", () => {
    const error = refusal(() => decodeCcmp(request(["<ex:max-load>lots</ex:max-load>"])));
    const response = errorResponse(error);
    assert.deepEqual(response, {
      kind: "response",
      confUserID: "sip:p@h",
      responseCode: 400,
      responseString: error.reason,
      extension: "load-report",
      elements: {},
    });
    assert.deepEqual(roundTrip(response), response);
  });

  test("ccmp - errorResponse answers unreadable XML with an empty or given confUserID", () => {
    const error = refusal(() => decodeCcmp(Buffer.from("<<<")));
    assert.deepEqual(errorResponse(error), {
      kind: "response",
      confUserID: "",
      responseCode: 400,
      responseString: error.reason,
      extension: "",
      elements: {},
    });
    const addressed = errorResponse(error, "sip:peer@10.0.0.9");
    assert.equal(addressed.confUserID, "sip:peer@10.0.0.9");
    assert.deepEqual(roundTrip(addressed), addressed);
  });

  test("ccmp - errorResponse answers a bad optionsRequest with an optionsResponse", () => {
    const body = Buffer.from(
      [
        `<c:ccmpRequest xmlns:c="${CCMP_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`,
        '<ccmpRequest xsi:type="c:ccmp-options-request-message-type">',
        "<confUserID>sip:s2@h</confUserID><confUserID>again</confUserID>",
        "</ccmpRequest></c:ccmpRequest>",
      ].join(""),
    );
    const error = refusal(() => decodeCcmp(body));
    assert.match(error.reason, /repeated/);
    const response = errorResponse(error, "sip:s2@h");
    assert.deepEqual(response, {
      kind: "options-response",
      confUserID: "sip:s2@h",
      responseCode: 400,
      extensions: [],
    });
    assert.deepEqual(roundTrip(response), response);
  });
});

// ---------------------------------------------------------------------------------------------

const noXmllint = existsSync("/usr/bin/xmllint") ? false : "xmllint is not installed";

function schemaErrors(body: Buffer): string | undefined {
  try {
    execFileSync("/usr/bin/xmllint", ["--noout", "--nonet", "--schema", SCHEMA, "-"], {
      input: body,
      stdio: ["pipe", "ignore", "pipe"],
    });
    return undefined;
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? err);
  }
}

function assertValid(body: Buffer, label: string): void {
  const errors = schemaErrors(body);
  assert.equal(errors, undefined, `${label}:\n${errors}\n${body.toString("utf8")}`);
}

describe("ccmp schema", { skip: noXmllint }, () => {
  test("ccmp schema - the validator is live: it rejects a negative max-load and a bare message", () => {
    const negative = request(["<ex:max-load>-1</ex:max-load>"]);
    assert.match(schemaErrors(negative) ?? "", /minInclusive/);
    const bare = Buffer.from(
      encodeCcmp(MESSAGES["minimal request"] as CcmpMessage)
        .toString("utf8")
        .replace(' xsi:type="ccmp:ccmp-extended-request-message-type"', ""),
    );
    assert.match(schemaErrors(bare) ?? "", /extendedRequest': This element is not expected/);
    assert.equal(schemaErrors(request(["<ex:max-load>1</ex:max-load>"])), undefined);
  });

  test("ccmp schema - the schema refuses what the decoder refuses, but for the codec's own rules", () => {
    for (const [name, body, , verdict] of REFUSED) {
      const errors = schemaErrors(body);
      if (verdict === "schema")
        assert.notEqual(errors, undefined, `${name}: the schema accepts it`);
      else assert.equal(errors, undefined, `${name}: the schema refuses it too:\n${errors}`);
    }
  });

  test("ccmp schema - every message kind encodes to a document valid against RFC 6503 + extd-ccmp", () => {
    for (const [name, message] of Object.entries(MESSAGES)) assertValid(encodeCcmp(message), name);
  });

  test("ccmp schema - special characters and extreme values encode to valid documents", () => {
    const message: CcmpMessage = {
      kind: "response",
      confUserID: SPECIAL,
      responseCode: 1,
      responseString: SPECIAL,
      version: Number.MAX_SAFE_INTEGER,
      extension: SPECIAL,
      elements: {
        pressvrLoad: [
          { svrId: SPECIAL_TOKEN, level: 5e-324 },
          { svrId: "big", level: 999999999999.9999 },
          { svrId: "third", level: 2 / 3 },
        ],
        presSysUsers: [{ svrId: SPECIAL_TOKEN, users: [SPECIAL_TOKEN], count: 2 ** 53 - 1 }],
        svrPool: [{ svrId: SPECIAL_TOKEN, contact: SPECIAL_TOKEN }],
        actvSvrNums: 0,
      },
    };
    assertValid(encodeCcmp(message), "extremes");
  });

  test("ccmp schema - errorResponse documents are valid", () => {
    const error = refusal(() => decodeCcmp(Buffer.from("not xml")));
    assertValid(encodeCcmp(errorResponse(error)), "error response");
  });

  test("ccmp schema - the hand-written fixtures are valid (the decoder is not stricter than needed)", () => {
    for (const name of [
      "redirect-user-request.xml",
      "load-report-response.xml",
      "options-response-rfc.xml",
    ]) {
      assertValid(fixture(name), name);
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** Small deterministic PRNG so a failing run can be replayed from its printed seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  "a",
  "Z",
  "0",
  "&",
  "<",
  ">",
  '"',
  "'",
  "]]>",
  ":",
  "@",
  ";",
  "é",
  "한",
  "😀",
  "&amp;",
];
const SPACES = [" ", "\t", "\n", "\r", "\r\n"];

function generator(random: () => number) {
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const maybe = (): boolean => random() < 0.5;
  const tokenOf = (): string => Array.from({ length: 1 + int(8) }, () => pick(PIECES)).join("");
  const stringOf = (): string =>
    Array.from({ length: int(10) }, () => (random() < 0.2 ? pick(SPACES) : pick(PIECES))).join("");
  // Levels on the six-decimal grid the wire carries (see decimalLexical), below 10^12.
  const decimal = (): number =>
    pick([() => 0, () => int(1000), () => Number((random() * 10 ** int(12)).toFixed(int(7)))])();
  const count = (): number => (random() < 0.1 ? Number.MAX_SAFE_INTEGER - int(10) : int(5000));
  const ids = (n: number): string[] => {
    const out = new Set<string>();
    while (out.size < n) out.add(tokenOf());
    return [...out];
  };

  const elements = (): ExtdElements => {
    const out: ExtdElements = {};
    if (maybe()) out.pressvrLoad = ids(int(4)).map((svrId) => ({ svrId, level: decimal() }));
    if (maybe()) {
      out.presSysUsers = ids(1 + int(3)).map((svrId) => {
        const entry: { svrId: string; users?: string[]; count?: number } = { svrId };
        if (maybe()) entry.users = Array.from({ length: 1 + int(4) }, tokenOf);
        if (maybe()) entry.count = count();
        return entry;
      });
    }
    if (maybe()) out.redirectionUsrAddr = tokenOf();
    if (maybe()) out.svrPool = ids(int(4)).map((svrId) => ({ svrId, contact: tokenOf() }));
    if (maybe()) out.actvSvrNums = count();
    if (maybe()) out.maxLoad = decimal();
    if (maybe()) out.minLoad = decimal();
    return out;
  };

  const operation = () => pick(["retrieve", "create", "update", "delete"] as const);
  return (): CcmpMessage => {
    switch (int(4)) {
      case 0: {
        const message: CcmpRequest = {
          kind: "request",
          confUserID: stringOf(),
          extension: maybe() ? pick(EXTENSIONS) : stringOf(),
          elements: elements(),
        };
        if (maybe()) message.confObjID = stringOf();
        if (maybe()) message.operation = operation();
        return message;
      }
      case 1: {
        const message: CcmpResponse = {
          kind: "response",
          confUserID: stringOf(),
          responseCode: 1 + int(999),
          extension: pick(EXTENSIONS),
          elements: elements(),
        };
        if (maybe()) message.confObjID = stringOf();
        if (maybe()) message.operation = operation();
        if (maybe()) message.responseString = stringOf();
        if (maybe()) message.version = Math.max(1, count());
        return message;
      }
      case 2:
        return { kind: "options-request", confUserID: stringOf() };
      default:
        return {
          kind: "options-response",
          confUserID: stringOf(),
          responseCode: 1 + int(999),
          extensions: Array.from({ length: int(6) }, stringOf),
        };
    }
  };
}

describe("ccmp randomized", () => {
  test("ccmp - generated messages round-trip, and a sample validates against the schemas", () => {
    const seed = Number(process.env.CCMP_SEED ?? Date.now() % 1_000_000);
    process.stdout.write(`ccmp seed ${seed} (replay with CCMP_SEED=${seed})\n`);
    const next = generator(mulberry32(seed));
    for (let i = 0; i < 600; i++) {
      const message = next();
      const body = encodeCcmp(message);
      assert.deepEqual(decodeCcmp(body), message, `seed ${seed}, message ${i}`);
      if (i < 40 && noXmllint === false) assertValid(body, `seed ${seed}, message ${i}`);
    }
  });
});
