// test/unit: the calendar source in its host on a fake clock — available, busy "in a meeting" during
// an event, available after it; re-reading a changed file; its options.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { start, stop } from "nact";
import { type CalendarConfig, calendar } from "../../../../actors/sources/calendar.js";
import { newSourceRecord, spawnSourceHost } from "../../../../actors/sources/host.js";
import { LoopbackHub } from "../../../../transport/loopback.js";
import { composed, eventually, TestPlacement, testNode } from "./nodes.js";

const NOW = Date.parse("2025-03-10T09:59:50Z");
const carol = "sip:carol@example.com";

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
}

function ics(events: { start: number; end: number; summary: string }[]): string {
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//presence-cluster//test//EN",
    ...events.flatMap((event, i) => [
      "BEGIN:VEVENT",
      `UID:event-${i}`,
      `DTSTART:${stamp(event.start)}`,
      `DTEND:${stamp(event.end)}`,
      `SUMMARY:${event.summary}`,
      "END:VEVENT",
    ]),
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

let dir = "";

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "presence-calendar-"));
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: NOW });
});

afterEach(() => {
  mock.timers.reset();
  rmSync(dir, { recursive: true, force: true });
});

function run(options: Record<string, string>) {
  const config = calendar.config?.(options) as CalendarConfig;
  const system = start();
  const a = testNode(new LoopbackHub(), "a", system, new TestPlacement(["a"]));
  const record = newSourceRecord();
  const handle = spawnSourceHost(
    a.deps,
    { name: "calendar", definition: calendar, config },
    record,
  );
  const note = async () =>
    /<note>([^<]*)<\/note>/.exec(await composed(a.router, carol, "a"))?.[1] ?? "(nothing)";
  const shows = (what: string) =>
    eventually(`the note "${what}"`, async () => (await note()) === what);
  const stopAll = async () => {
    await a.router.ask(handle.address, { type: "stop" });
    handle.stop();
    stop(system);
  };
  return { a, record, note, shows, stopAll };
}

describe("calendar source - events", () => {
  it("calendar source - available, then busy in a meeting from the event's start, available from its end", async () => {
    const file = join(dir, "carol.ics");
    writeFileSync(file, ics([{ start: NOW + 10_000, end: NOW + 20_000, summary: "1:1 with Dan" }]));
    const { a, shows, stopAll } = run({ calendars: `${carol}=${file}` });
    await shows("available");
    mock.timers.tick(9_999);
    await shows("available");
    mock.timers.tick(10);
    await shows("in a meeting");
    const busy = await composed(a.router, carol, "a");
    assert.match(busy, /<basic>open<\/basic>/);
    assert.match(busy, /<rpid:activities><rpid:busy\/><rpid:meeting\/><\/rpid:activities>/);
    assert.doesNotMatch(busy, /Dan/, "summaries stay private unless asked for");
    mock.timers.tick(10_000);
    await shows("available");
    assert.doesNotMatch(await composed(a.router, carol, "a"), /rpid:meeting/);
    await stopAll();
  });

  it("calendar source - with summaries=show the note is the event's summary", async () => {
    const file = join(dir, "carol.ics");
    writeFileSync(file, ics([{ start: NOW - 1_000, end: NOW + 60_000, summary: "Board meeting" }]));
    const { shows, stopAll } = run({ calendars: `${carol}=${file}`, summaries: "show" });
    await shows("Board meeting");
    await stopAll();
  });

  it("calendar source - a changed file is read again: at the next poll, or at once when watched", async () => {
    const file = join(dir, "carol.ics");
    writeFileSync(file, ics([]));
    const { shows, stopAll } = run({ calendars: `${carol}=${file}`, poll: "60000" });
    await shows("available");
    writeFileSync(file, ics([{ start: NOW - 1_000, end: NOW + 3_600_000, summary: "x" }]));
    // The directory watch usually sees it at once; the poll is the guarantee.
    mock.timers.tick(60_000);
    await shows("in a meeting");
    await stopAll();
  });

  it("calendar source - a missing file publishes nothing until it appears; one that is not iCalendar keeps the last state", async () => {
    const file = join(dir, "later.ics");
    const { record, note, shows, stopAll } = run({ calendars: `${carol}=${file}`, poll: "1000" });
    await eventually("the source running", () => record.state === "running");
    mock.timers.tick(1_000);
    assert.equal(await note(), "(nothing)");
    writeFileSync(file, ics([]));
    mock.timers.tick(1_000);
    await shows("available");
    writeFileSync(file, "this is not a calendar");
    mock.timers.tick(1_000);
    await shows("available");
    assert.equal(record.restarts, 0, "bad input is not a crash");
    await stopAll();
  });
});

describe("calendar source - options", () => {
  const bad: [string, Record<string, string>, RegExp][] = [
    ["no calendar", {}, /needs --calendar/],
    ["an entry without =", { calendars: "sip:a@b.c" }, /expected <presentity>=<file or URL>/],
    ["a host for a presentity", { calendars: "example.com=/x.ics" }, /expected <presentity>/],
    ["two calendars for one", { calendars: "sip:a@b.c=/x,sip:a@b.c=/y" }, /two calendars/],
    ["a poll too short", { calendars: "sip:a@b.c=/x", poll: "5" }, /poll must be/],
    ["summaries neither show nor hide", { calendars: "sip:a@b.c=/x", summaries: "y" }, /show/],
    ["an unknown option", { calendars: "sip:a@b.c=/x", colour: "y" }, /unknown option "colour"/],
  ];
  for (const [what, options, reason] of bad) {
    it(`calendar source - ${what} is refused at start`, () => {
      assert.throws(() => calendar.config?.(options), reason);
    });
  }

  it("calendar source - files become absolute paths, URLs stay URLs", () => {
    const config = calendar.config?.({
      calendars: "alice@example.com=cal/a.ics, sip:bob@example.com=https://cal.example.com/b.ics",
    }) as CalendarConfig;
    assert.deepEqual(
      config.calendars.map((c) => [c.presentity, c.location, c.remote]),
      [
        ["sip:alice@example.com", join(process.cwd(), "cal/a.ics"), false],
        ["sip:bob@example.com", "https://cal.example.com/b.ics", true],
      ],
    );
  });
});
