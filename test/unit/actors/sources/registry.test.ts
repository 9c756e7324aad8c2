// test/unit: the source registry — built-ins by name, modules by path, options routed to their
// source, and errors that name the flag at fault.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadSources, type SourceSettings } from "../../../../actors/sources/registry.js";

const settings = (more: Partial<SourceSettings>): SourceSettings => ({
  sources: [],
  sourceOptions: [],
  webhookToken: "",
  calendars: [],
  calendarPollMs: 60_000,
  ...more,
});

const dir = mkdtempSync(join(tmpdir(), "presence-registry-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("source registry - loading", () => {
  it("source registry - built-ins get their own flags as options", async () => {
    const loaded = await loadSources(
      settings({
        sources: [
          { name: "webhook", module: undefined },
          { name: "calendar", module: undefined },
        ],
        webhookToken: "a-long-token",
        calendars: ["sip:a@example.com=/tmp/a.ics"],
        calendarPollMs: 500,
      }),
    );
    assert.deepEqual(
      loaded.map((s) => [s.name, s.module]),
      [
        ["webhook", "built-in"],
        ["calendar", "built-in"],
      ],
    );
    const [webhook, calendar] = loaded;
    assert.ok(webhook && calendar);
    assert.deepEqual(webhook.config, { token: Buffer.from("a-long-token") });
    assert.equal((calendar.config as { pollMs: number }).pollMs, 500);
  });

  it("source registry - a module by path, relative to the working directory, with its --source-options", async () => {
    const loaded = await loadSources(
      settings({
        sources: [{ name: "desk", module: "dist/examples/sources/office-hours.js" }],
        sourceOptions: [
          { source: "desk", key: "presentity", value: "sip:desk@example.com" },
          { source: "desk", key: "hours", value: "8-18" },
        ],
      }),
    );
    assert.equal(loaded[0]?.name, "desk", "the name from --source, not the module's");
    assert.equal(loaded[0]?.module, join(process.cwd(), "dist/examples/sources/office-hours.js"));
    assert.deepEqual(loaded[0]?.config, {
      presentity: "sip:desk@example.com",
      from: 8,
      to: 18,
      note: "in the office",
    });
  });

  it("source registry - a module may export its source as `source` instead of default", async () => {
    const file = join(dir, "named.mjs");
    writeFileSync(
      file,
      `import { defineSource } from ${JSON.stringify(join(process.cwd(), "dist/bootstrap/index.js"))};
       export const source = defineSource({ name: "named", start: () => null, receive: (s) => s });`,
    );
    const [loaded] = await loadSources(settings({ sources: [{ name: "named", module: file }] }));
    assert.equal(loaded?.definition.name, "named");
    assert.deepEqual(loaded?.config, {}, "without a config function the options are the config");
  });

  const refused: [string, Partial<SourceSettings>, RegExp][] = [
    [
      "an unknown built-in",
      { sources: [{ name: "pager", module: undefined }] },
      /--source pager: no built-in source of that name \(webhook, calendar\)/,
    ],
    [
      "a module that is not there",
      { sources: [{ name: "gone", module: "nowhere/gone.js" }] },
      /--source gone: cannot load .*nowhere\/gone\.js/,
    ],
    [
      "a module without a source",
      { sources: [{ name: "plain", module: "dist/bootstrap/log.js" }] },
      /--source plain: .* exports no source/,
    ],
    [
      "a name registered twice",
      {
        sources: [
          { name: "webhook", module: undefined },
          { name: "webhook", module: undefined },
        ],
        webhookToken: "a-long-token",
      },
      /registered twice/,
    ],
    [
      "an option for a source not registered",
      { sourceOptions: [{ source: "ghost", key: "k", value: "v" }] },
      /--source-option ghost\.k: no --source ghost/,
    ],
    [
      "a source's own config error",
      { sources: [{ name: "webhook", module: undefined }] },
      /--source webhook: webhook needs a bearer token/,
    ],
  ];
  for (const [what, more, reason] of refused) {
    it(`source registry - ${what} stops the node with the flag named`, async () => {
      await assert.rejects(loadSources(settings(more)), reason);
    });
  }
});
