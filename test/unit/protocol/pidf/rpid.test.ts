// test/unit: PIDF built from a simple status — one tuple, a note, RPID activities on a dm:person.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { parsePidf } from "../../../../protocol/pidf/pidf.js";
import { RPID_NS, simplePidf } from "../../../../protocol/pidf/rpid.js";

const entity = "sip:alice@example.com";
const noXmllint = existsSync("/usr/bin/xmllint") ? false : "xmllint is not installed";

describe("rpid - simple PIDF", () => {
  it("rpid - status and note make one tuple; no person without activities", () => {
    const body = simplePidf(entity, "source-desk", { status: "closed", note: "gone <home> & out" });
    const doc = parsePidf(body);
    assert.equal(doc.entity, entity);
    assert.deepEqual(
      doc.tuples.map((t) => t.id),
      ["source-desk"],
    );
    assert.match(body.toString(), /<basic>closed<\/basic>/);
    assert.match(body.toString(), /<note>gone &lt;home&gt; &amp; out<\/note>/);
    assert.deepEqual(doc.others, []);
  });

  it("rpid - RFC 4480 activities get their element, others <rpid:other>, each once", () => {
    const body = simplePidf(entity, "source-desk", {
      status: "open",
      activities: ["meeting", "busy", "coding & <tea>", "meeting"],
    });
    const doc = parsePidf(body);
    assert.deepEqual(
      doc.others.map((o) => [o.namespace, o.localName, o.id]),
      [["urn:ietf:params:xml:ns:pidf:data-model", "person", "source-desk-person"]],
    );
    assert.match(
      body.toString(),
      /<rpid:activities><rpid:meeting\/><rpid:busy\/><rpid:other>coding &amp; &lt;tea&gt;<\/rpid:other><\/rpid:activities>/,
    );
    assert.equal(doc.namespaces.rpid, RPID_NS);
  });

  it("rpid - the same status gives the same bytes", () => {
    const status = { status: "open", note: "x", activities: ["away"] } as const;
    assert.deepEqual(simplePidf(entity, "t", status), simplePidf(entity, "t", status));
  });

  it("rpid - the document is valid RFC 3863", { skip: noXmllint }, () => {
    const body = simplePidf(entity, "source-desk", {
      status: "open",
      note: "in a meeting",
      activities: ["busy", "meeting", "other thing"],
    });
    execFileSync(
      "/usr/bin/xmllint",
      ["--noout", "--nonet", "--schema", "test/fixtures/pidf/pidf.xsd", "-"],
      { input: body, stdio: ["pipe", "ignore", "pipe"] },
    );
  });
});
