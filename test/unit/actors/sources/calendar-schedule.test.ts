// test/unit: reading busy periods out of iCalendar text — time zones, recurrences with exceptions,
// free and cancelled events, and the state and next change at a moment.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type BusyPeriod,
  busyPeriods,
  CalendarError,
  stateAt,
} from "../../../../actors/sources/calendar-schedule.js";

function ics(...events: string[][]): string {
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//presence-cluster//test//EN",
    ...events.flatMap((lines) => ["BEGIN:VEVENT", ...lines, "END:VEVENT"]),
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

const utc = (text: string) => Date.parse(text);
const YEAR_FROM = utc("2025-01-01T00:00:00Z");
const YEAR_TO = utc("2026-01-01T00:00:00Z");

describe("calendar schedule - events", () => {
  it("calendar schedule - a UTC event is one busy period with its summary", () => {
    const text = ics([
      "UID:1",
      "DTSTART:20250310T100000Z",
      "DTEND:20250310T110000Z",
      "SUMMARY:Standup",
    ]);
    assert.deepEqual(busyPeriods(text, YEAR_FROM, YEAR_TO), [
      { start: utc("2025-03-10T10:00:00Z"), end: utc("2025-03-10T11:00:00Z"), summary: "Standup" },
    ]);
  });

  it("calendar schedule - a TZID time is read with the calendar's VTIMEZONE; DURATION gives the end", () => {
    const text = [
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//presence-cluster//test//EN",
      "BEGIN:VTIMEZONE",
      "TZID:Europe/Berlin",
      "BEGIN:STANDARD",
      "DTSTART:19701025T030000",
      "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
      "TZOFFSETFROM:+0200",
      "TZOFFSETTO:+0100",
      "END:STANDARD",
      "BEGIN:DAYLIGHT",
      "DTSTART:19700329T020000",
      "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
      "TZOFFSETFROM:+0100",
      "TZOFFSETTO:+0200",
      "END:DAYLIGHT",
      "END:VTIMEZONE",
      "BEGIN:VEVENT",
      "UID:winter",
      "DTSTART;TZID=Europe/Berlin:20250115T090000",
      "DURATION:PT30M",
      "END:VEVENT",
      "BEGIN:VEVENT",
      "UID:summer",
      "DTSTART;TZID=Europe/Berlin:20250715T090000",
      "DTEND;TZID=Europe/Berlin:20250715T100000",
      "END:VEVENT",
      "END:VCALENDAR",
      "",
    ].join("\r\n");
    const periods = busyPeriods(text, YEAR_FROM, YEAR_TO);
    assert.deepEqual(
      periods.map((p) => [new Date(p.start).toISOString(), new Date(p.end).toISOString()]),
      [
        ["2025-01-15T08:00:00.000Z", "2025-01-15T08:30:00.000Z"],
        ["2025-07-15T07:00:00.000Z", "2025-07-15T08:00:00.000Z"],
      ],
    );
  });

  it("calendar schedule - a weekly series without its EXDATE, with its moved occurrence, inside the window only", () => {
    const text = ics(
      [
        "UID:weekly",
        "DTSTART:20250106T090000Z",
        "DTEND:20250106T093000Z",
        "RRULE:FREQ=WEEKLY;COUNT=5",
        "EXDATE:20250113T090000Z",
        "SUMMARY:Weekly",
      ],
      [
        "UID:weekly",
        "RECURRENCE-ID:20250120T090000Z",
        "DTSTART:20250120T140000Z",
        "DTEND:20250120T150000Z",
        "SUMMARY:Weekly (moved)",
      ],
    );
    const periods = busyPeriods(text, utc("2025-01-07T00:00:00Z"), utc("2025-01-28T00:00:00Z"));
    assert.deepEqual(
      periods.map((p) => `${new Date(p.start).toISOString()} ${p.summary}`),
      ["2025-01-20T14:00:00.000Z Weekly (moved)", "2025-01-27T09:00:00.000Z Weekly"],
    );
  });

  it("calendar schedule - cancelled and free (transparent) events keep nobody busy", () => {
    const text = ics(
      ["UID:c", "DTSTART:20250310T100000Z", "DTEND:20250310T110000Z", "STATUS:CANCELLED"],
      ["UID:t", "DTSTART:20250311T100000Z", "DTEND:20250311T110000Z", "TRANSP:TRANSPARENT"],
    );
    assert.deepEqual(busyPeriods(text, YEAR_FROM, YEAR_TO), []);
  });

  it("calendar schedule - an all-day event is busy from local midnight to the next", () => {
    const text = ics(["UID:day", "DTSTART;VALUE=DATE:20250402", "SUMMARY:Offsite"]);
    assert.deepEqual(busyPeriods(text, YEAR_FROM, YEAR_TO), [
      {
        start: new Date(2025, 3, 2).getTime(),
        end: new Date(2025, 3, 3).getTime(),
        summary: "Offsite",
      },
    ]);
  });

  it("calendar schedule - text that is not iCalendar is a CalendarError", () => {
    for (const text of ["", "hello", "BEGIN:VCARD\r\nEND:VCARD\r\n", "BEGIN:VCALENDAR\r\n"]) {
      assert.throws(
        () => busyPeriods(text, YEAR_FROM, YEAR_TO),
        CalendarError,
        JSON.stringify(text),
      );
    }
  });
});

describe("calendar schedule - state at a moment", () => {
  const periods: BusyPeriod[] = [
    { start: 100, end: 200, summary: "a" },
    { start: 150, end: 300, summary: "b" },
    { start: 400, end: 500, summary: "c" },
  ];
  const cases: [number, string | undefined, number | undefined][] = [
    [0, undefined, 100],
    [100, "a", 150],
    [160, "b", 200],
    [200, "b", 300],
    [300, undefined, 400],
    [499, "c", 500],
    [500, undefined, undefined],
  ];
  for (const [now, summary, next] of cases) {
    it(`calendar schedule - at ${now}: ${summary ?? "free"}, next change ${next ?? "none"}`, () => {
      const state = stateAt(periods, now);
      assert.equal(state.current?.summary, summary);
      assert.equal(state.next, next);
    });
  }
});
