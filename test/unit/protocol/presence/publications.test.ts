import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  composePidf,
  PIDF_NS,
  type PidfDocument,
  PidfError,
  parsePidf,
  serialisePidf,
  tupleIds,
} from "../../../../protocol/pidf/pidf.js";
import {
  type PublicationSnapshot,
  PublicationStore,
  type PublishRequest,
  type PublishResult,
} from "../../../../protocol/presence/publications.js";

const ENTITY = "sip:alice@example.com";
const S = 1000;

function doc(tupleId: string, basic: "open" | "closed" = "open"): PidfDocument {
  return parsePidf(
    Buffer.from(
      `<presence xmlns="${PIDF_NS}" entity="${ENTITY}"><tuple id="${tupleId}"><status><basic>${basic}</basic></status></tuple></presence>`,
    ),
  );
}

/** ETags e1, e2, … — the real generator is crypto-random; tests want to name them. */
function sequentialEtags(): () => string {
  let n = 0;
  return () => `e${++n}`;
}

const A = doc("a");
const B = doc("b");
const A2 = doc("a", "closed");
const FAILED: PublishResult = { ok: false, status: 412, reason: "Conditional Request Failed" };

interface Step {
  readonly label: string;
  readonly at: number;
  readonly req: PublishRequest;
  readonly result: PublishResult;
  /** ETags in composition order after the step. */
  readonly etags: readonly string[];
}

function run(
  steps: readonly Step[],
  store = new PublicationStore(sequentialEtags()),
): PublicationStore {
  for (const step of steps) {
    assert.deepEqual(store.apply(step.req, step.at), step.result, step.label);
    assert.deepEqual(
      store.list().map((publication) => publication.etag),
      step.etags,
      `${step.label}: publications`,
    );
    assert.equal(store.size, step.etags.length, `${step.label}: size`);
  }
  return store;
}

describe("publications lifecycle", () => {
  test("publications lifecycle - initial, refresh, modify, remove with stale and unknown ETags", () => {
    const store = run([
      {
        label: "initial",
        at: 0,
        req: { kind: "initial", document: A, expires: 60 },
        result: { ok: true, etag: "e1", expires: 60, changed: true },
        etags: ["e1"],
      },
      {
        label: "refresh issues a new ETag",
        at: 10 * S,
        req: { kind: "refresh", etag: "e1", expires: 60 },
        result: { ok: true, etag: "e2", expires: 60, changed: false },
        etags: ["e2"],
      },
      {
        label: "old ETag after refresh",
        at: 20 * S,
        req: { kind: "refresh", etag: "e1", expires: 60 },
        result: FAILED,
        etags: ["e2"],
      },
      {
        label: "modify",
        at: 20 * S,
        req: { kind: "modify", etag: "e2", document: A2, expires: 120 },
        result: { ok: true, etag: "e3", expires: 120, changed: true },
        etags: ["e3"],
      },
      {
        label: "old ETag after modify",
        at: 30 * S,
        req: { kind: "modify", etag: "e2", document: A, expires: 60 },
        result: FAILED,
        etags: ["e3"],
      },
      {
        label: "unknown ETag",
        at: 30 * S,
        req: { kind: "refresh", etag: "nope", expires: 60 },
        result: FAILED,
        etags: ["e3"],
      },
      {
        label: "remove",
        at: 30 * S,
        req: { kind: "remove", etag: "e3" },
        result: { ok: true, etag: null, expires: 0, changed: true },
        etags: [],
      },
      {
        label: "ETag after remove",
        at: 40 * S,
        req: { kind: "refresh", etag: "e3", expires: 60 },
        result: FAILED,
        etags: [],
      },
      {
        label: "remove of a removed publication",
        at: 40 * S,
        req: { kind: "remove", etag: "e3" },
        result: FAILED,
        etags: [],
      },
    ]);
    assert.equal(store.nextExpiry(), undefined);
  });

  test("publications lifecycle - refresh keeps the document, modify replaces it, both move the expiry", () => {
    const store = run([
      {
        label: "initial",
        at: 0,
        req: { kind: "initial", document: A, expires: 60 },
        result: { ok: true, etag: "e1", expires: 60, changed: true },
        etags: ["e1"],
      },
      {
        label: "refresh",
        at: 50 * S,
        req: { kind: "refresh", etag: "e1", expires: 30 },
        result: { ok: true, etag: "e2", expires: 30, changed: false },
        etags: ["e2"],
      },
    ]);
    assert.equal(store.list()[0]?.document, A);
    assert.equal(store.nextExpiry(), 80 * S);
    store.apply({ kind: "modify", etag: "e2", document: A2, expires: 100 }, 60 * S);
    assert.equal(store.list()[0]?.document, A2);
    assert.equal(store.nextExpiry(), 160 * S);
  });

  test("publications lifecycle - Expires 0 stores nothing (RFC 3903 section 6 step 5)", () => {
    run([
      {
        label: "initial with 0",
        at: 0,
        req: { kind: "initial", document: A, expires: 0 },
        result: { ok: true, etag: null, expires: 0, changed: false },
        etags: [],
      },
      {
        label: "initial",
        at: 0,
        req: { kind: "initial", document: A, expires: 60 },
        result: { ok: true, etag: "e1", expires: 60, changed: true },
        etags: ["e1"],
      },
      {
        label: "refresh with 0 removes",
        at: S,
        req: { kind: "refresh", etag: "e1", expires: 0 },
        result: { ok: true, etag: null, expires: 0, changed: true },
        etags: [],
      },
      {
        label: "again",
        at: S,
        req: { kind: "initial", document: A, expires: 60 },
        result: { ok: true, etag: "e2", expires: 60, changed: true },
        etags: ["e2"],
      },
      {
        label: "modify with 0 removes",
        at: S,
        req: { kind: "modify", etag: "e2", document: B, expires: 0 },
        result: { ok: true, etag: null, expires: 0, changed: true },
        etags: [],
      },
    ]);
  });

  test("publications lifecycle - source defaults to sip and is kept across refreshes", () => {
    const store = new PublicationStore(sequentialEtags());
    store.apply({ kind: "initial", document: A, expires: 60 }, 0);
    store.apply({ kind: "initial", document: B, expires: 60, source: "calendar" }, 0);
    store.apply({ kind: "refresh", etag: "e2", expires: 60 }, S);
    assert.deepEqual(
      store.list().map((publication) => publication.source),
      ["sip", "calendar"],
    );
  });
});

describe("publications expiry", () => {
  test("publications expiry - an expired publication no longer matches, expire drops it", () => {
    const store = run([
      {
        label: "first",
        at: 0,
        req: { kind: "initial", document: A, expires: 60 },
        result: { ok: true, etag: "e1", expires: 60, changed: true },
        etags: ["e1"],
      },
      {
        label: "second",
        at: 0,
        req: { kind: "initial", document: B, expires: 30 },
        result: { ok: true, etag: "e2", expires: 30, changed: true },
        etags: ["e1", "e2"],
      },
      {
        label: "refresh just before expiry",
        at: 30 * S - 1,
        req: { kind: "refresh", etag: "e2", expires: 30 },
        result: { ok: true, etag: "e3", expires: 30, changed: false },
        etags: ["e1", "e3"],
      },
      {
        label: "refresh at expiry, not yet swept",
        at: 60 * S,
        req: { kind: "refresh", etag: "e1", expires: 60 },
        result: FAILED,
        etags: ["e1", "e3"],
      },
    ]);
    assert.equal(store.nextExpiry(), 60 * S - 1);
    assert.deepEqual(store.expire(60 * S - 2), []);
    assert.deepEqual(
      store.expire(60 * S).map((publication) => publication.etag),
      ["e1", "e3"],
    );
    assert.equal(store.size, 0);
    assert.equal(store.nextExpiry(), undefined);
  });

  test("publications expiry - expire returns only what is due, in composition order", () => {
    const store = new PublicationStore(sequentialEtags());
    store.apply({ kind: "initial", document: A, expires: 10 }, 0);
    store.apply({ kind: "initial", document: B, expires: 20 }, 0);
    store.apply({ kind: "initial", document: A2, expires: 5 }, 0);
    assert.equal(store.nextExpiry(), 5 * S);
    assert.deepEqual(
      store.expire(10 * S).map((publication) => publication.etag),
      ["e1", "e3"],
    );
    assert.deepEqual(
      store.list().map((publication) => publication.etag),
      ["e2"],
    );
    assert.equal(store.nextExpiry(), 20 * S);
  });
});

describe("publications composition", () => {
  test("publications composition - documents compose in first-publication order, kept on modify", () => {
    const store = new PublicationStore(sequentialEtags());
    store.apply({ kind: "initial", document: A, expires: 60 }, 0);
    store.apply({ kind: "initial", document: B, expires: 60 }, 0);
    store.apply({ kind: "modify", etag: "e1", document: doc("a2"), expires: 60 }, S);
    const composed = parsePidf(
      composePidf(
        ENTITY,
        store.list().map((publication) => publication.document),
      ),
    );
    assert.deepEqual(tupleIds(composed), ["a2", "b"]);
  });

  test("publications composition - list is a frozen view, rebuilt only after a change", () => {
    const store = new PublicationStore(sequentialEtags());
    store.apply({ kind: "initial", document: A, expires: 60 }, 0);
    const first = store.list();
    assert.ok(Object.isFrozen(first));
    assert.equal(store.list(), first);
    store.apply({ kind: "refresh", etag: "nope", expires: 60 }, 0);
    assert.equal(store.list(), first, "a 412 changes nothing");
    store.apply({ kind: "refresh", etag: "e1", expires: 60 }, 0);
    assert.notEqual(store.list(), first);
    assert.equal(first[0]?.etag, "e1", "earlier views are not mutated");
  });
});

describe("publications etags", () => {
  test("publications etags - an ETag still in use is never issued twice", () => {
    const issued = ["x", "x", "y", "x", "z"];
    const store = new PublicationStore(() => issued.shift() ?? "exhausted");
    assert.deepEqual(store.apply({ kind: "initial", document: A, expires: 60 }, 0), {
      ok: true,
      etag: "x",
      expires: 60,
      changed: true,
    });
    assert.equal(
      (store.apply({ kind: "initial", document: B, expires: 60 }, 0) as { etag: string }).etag,
      "y",
    );
    // A refresh's new ETag must differ from the one it replaces.
    assert.equal(
      (store.apply({ kind: "refresh", etag: "x", expires: 60 }, 0) as { etag: string }).etag,
      "z",
    );
  });

  test("publications etags - a generator that only repeats itself is an error, not a loop", () => {
    const store = new PublicationStore(() => "same");
    store.apply({ kind: "initial", document: A, expires: 60 }, 0);
    assert.throws(
      () => store.apply({ kind: "initial", document: B, expires: 60 }, 0),
      /ETag generator/,
    );
    assert.equal(store.size, 1);
  });
});

describe("publications snapshot", () => {
  function populated(): PublicationStore {
    const store = new PublicationStore(sequentialEtags());
    store.apply({ kind: "initial", document: A, expires: 60 }, 0);
    store.apply(
      {
        kind: "initial",
        document: parsePidf(
          Buffer.from(
            `<presence xmlns="${PIDF_NS}" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="${ENTITY}"><tuple id="k"><status><basic>open</basic></status><r:class>회의</r:class></tuple></presence>`,
          ),
        ),
        expires: 120,
        source: "calendar",
      },
      S,
    );
    store.apply({ kind: "refresh", etag: "e1", expires: 90 }, 2 * S);
    return store;
  }

  test("publications snapshot - JSON round trip restores every publication", () => {
    const original = populated();
    const snapshot = JSON.parse(JSON.stringify(original.snapshot())) as PublicationSnapshot;
    const restored = new PublicationStore(sequentialEtags());
    restored.restore(snapshot);
    const view = (store: PublicationStore) =>
      store.list().map((publication) => ({
        etag: publication.etag,
        expiresAt: publication.expiresAt,
        source: publication.source,
        body: serialisePidf(publication.document).toString("utf8"),
      }));
    assert.deepEqual(view(restored), view(original));
    assert.equal(restored.nextExpiry(), original.nextExpiry());
    assert.deepEqual(
      snapshot.publications.map((publication) => publication.etag),
      ["e3", "e2"],
    );
  });

  test("publications snapshot - the restored store honours the old ETags", () => {
    const restored = new PublicationStore(() => "fresh");
    restored.restore(populated().snapshot());
    assert.deepEqual(restored.apply({ kind: "refresh", etag: "e2", expires: 60 }, 3 * S), {
      ok: true,
      etag: "fresh",
      expires: 60,
      changed: false,
    });
    assert.deepEqual(restored.apply({ kind: "remove", etag: "e1" }, 3 * S), FAILED);
  });

  test("publications snapshot - bad data is refused and leaves the state untouched", () => {
    const store = populated();
    const before = store.list();
    const bad: readonly [string, unknown, RegExp | typeof PidfError][] = [
      ["unknown version", { version: 2, publications: [] }, /unsupported/],
      [
        "not PIDF",
        { version: 1, publications: [{ etag: "z", expiresAt: 1, source: "sip", body: "<x/>" }] },
        PidfError,
      ],
      [
        "missing expiry",
        { version: 1, publications: [{ etag: "z", source: "sip", body: "" }] },
        /malformed/,
      ],
      [
        "duplicate ETags",
        {
          version: 1,
          publications: [
            { etag: "z", expiresAt: 1, source: "sip", body: serialisePidf(A).toString() },
            { etag: "z", expiresAt: 2, source: "sip", body: serialisePidf(B).toString() },
          ],
        },
        /duplicate ETag/,
      ],
    ];
    for (const [label, snapshot, error] of bad) {
      assert.throws(() => store.restore(snapshot as PublicationSnapshot), error, label);
      assert.equal(store.list(), before, label);
    }
  });
});
