// test/unit: the source API — defining a source, recognising one, and what a valid update is.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  defineSource,
  isSourceDefinition,
  SourceConfigError,
  SourceError,
  updateProblem,
} from "../../../../actors/sources/api.js";

describe("source api - defineSource", () => {
  it("source api - a defined source is recognised; a look-alike object is not", () => {
    const source = defineSource({ name: "tiny", start: () => null, receive: (state) => state });
    assert.equal(isSourceDefinition(source), true);
    assert.equal(
      isSourceDefinition({ name: "tiny", start: () => null, receive: () => null }),
      false,
    );
    assert.equal(isSourceDefinition(undefined), false);
  });

  it("source api - names are lower-case letters, digits and '-'; start and receive are required", () => {
    for (const name of ["Tiny", "9lives", "a_b", "", "x".repeat(33)]) {
      assert.throws(
        () => defineSource({ name, start: () => null, receive: (state) => state }),
        (error: unknown) => error instanceof SourceError && error.code === "misuse",
        name,
      );
    }
    assert.throws(
      () => defineSource({ name: "half", start: () => null } as never),
      /start and receive are required/,
    );
  });

  it("source api - a config error is a SourceError with code config, not retryable", () => {
    const error = new SourceConfigError("needs a token");
    assert.ok(error instanceof SourceError);
    assert.equal(error.code, "config");
    assert.equal(error.retryable, false);
    assert.equal(error.name, "SourceConfigError");
  });
});

describe("source api - updates", () => {
  it("source api - status alone, or with note, activities and expires, is an update", () => {
    assert.equal(updateProblem({ status: "open" }), undefined);
    assert.equal(
      updateProblem({ status: "closed", note: "gone", activities: ["away"], expires: 60 }),
      undefined,
    );
  });

  const bad: [string, unknown, RegExp][] = [
    ["not an object", [1], /expected an object/],
    ["null", null, /expected an object/],
    ["unknown field", { status: "open", colour: "red" }, /unknown field "colour"/],
    ["no status", { note: "x" }, /status must be/],
    ["other status", { status: "busy" }, /status must be/],
    ["note not text", { status: "open", note: 5 }, /note must be/],
    ["note too long", { status: "open", note: "x".repeat(1001) }, /note must be/],
    ["note with control characters", { status: "open", note: "a\u0001b" }, /note must be/],
    ["activities not a list", { status: "open", activities: "meeting" }, /activities must be/],
    ["too many activities", { status: "open", activities: Array(17).fill("x") }, /at most 16/],
    ["empty activity", { status: "open", activities: [" "] }, /each activity/],
    ["expires zero", { status: "open", expires: 0 }, /expires must be/],
    ["expires fractional", { status: "open", expires: 1.5 }, /expires must be/],
    ["expires too long", { status: "open", expires: 604_801 }, /expires must be/],
  ];
  for (const [what, value, reason] of bad) {
    it(`source api - ${what} is not an update, with the reason`, () => {
      assert.match(updateProblem(value) ?? "", reason);
    });
  }
});
