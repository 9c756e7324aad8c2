// actors/sources: what an iCalendar (RFC 5545) says about a person's time — busy periods, next change.
// Pure: text and times in, periods out; ical.js parses, recurrences are expanded over a window.

import ICAL from "ical.js";

export interface BusyPeriod {
  /** ms epoch, inclusive. */
  start: number;
  /** ms epoch, exclusive. */
  end: number;
  /** The event's SUMMARY ("" when it has none). */
  summary: string;
}

export class CalendarError extends Error {
  override readonly name = "CalendarError";
}

/** Occurrences looked at per recurring event, so a rule without end cannot run forever. */
const MAX_OCCURRENCES = 20_000;

type Component = InstanceType<typeof ICAL.Component>;
type IcalTime = InstanceType<typeof ICAL.Time>;

function roots(text: string): Component[] {
  let jcal: unknown;
  try {
    jcal = ICAL.parse(text);
  } catch (error) {
    throw new CalendarError(`not iCalendar: ${error instanceof Error ? error.message : error}`, {
      cause: error,
    });
  }
  // One VCALENDAR parses to one jCal array, several to a list of them.
  const list = Array.isArray(jcal) && Array.isArray(jcal[0]) ? jcal : [jcal];
  const components = list.map((item) => new ICAL.Component(item as unknown[]));
  if (!components.some((c) => c.name === "vcalendar")) {
    throw new CalendarError("not iCalendar: no VCALENDAR");
  }
  return components.filter((c) => c.name === "vcalendar");
}

/** RFC 5545: a cancelled or transparent (free) event does not make anyone busy. */
function blocksTime(component: Component): boolean {
  const status = String(component.getFirstPropertyValue("status") ?? "").toUpperCase();
  const transp = String(component.getFirstPropertyValue("transp") ?? "").toUpperCase();
  return status !== "CANCELLED" && transp !== "TRANSPARENT";
}

function epoch(time: IcalTime): number {
  return time.toJSDate().getTime();
}

function summaryOf(component: Component): string {
  return String(component.getFirstPropertyValue("summary") ?? "").trim();
}

/**
 * The busy periods of a calendar that overlap [from, to), sorted by start. Times with a TZID use
 * the calendar's VTIMEZONE; floating times and dates are in the process's local time zone.
 * Throws CalendarError on text that is not iCalendar.
 */
export function busyPeriods(text: string, from: number, to: number): BusyPeriod[] {
  const periods: BusyPeriod[] = [];
  for (const calendar of roots(text)) {
    const events = calendar.getAllSubcomponents("vevent");
    // Overridden occurrences (RECURRENCE-ID) belong to their series, by UID.
    const overrides = new Map<string, Component[]>();
    for (const event of events) {
      if (!event.hasProperty("recurrence-id")) continue;
      const uid = String(event.getFirstPropertyValue("uid") ?? "");
      overrides.set(uid, [...(overrides.get(uid) ?? []), event]);
    }
    for (const component of events) {
      if (component.hasProperty("recurrence-id") || !component.hasProperty("dtstart")) continue;
      const uid = String(component.getFirstPropertyValue("uid") ?? "");
      const event = new ICAL.Event(component, { exceptions: overrides.get(uid) ?? [] });
      if (!event.isRecurring()) {
        const start = epoch(event.startDate);
        const end = epoch(event.endDate);
        if (start < to && end > from && end > start && blocksTime(component)) {
          periods.push({ start, end, summary: summaryOf(component) });
        }
        continue;
      }
      const occurrences = event.iterator();
      for (let n = 0; n < MAX_OCCURRENCES; n += 1) {
        const next = occurrences.next();
        if (!next) break;
        const details = event.getOccurrenceDetails(next);
        const start = epoch(details.startDate);
        // An override may move an occurrence later than the rule's own time: look a day further.
        if (epoch(next) >= to + 86_400_000) break;
        const end = epoch(details.endDate);
        if (start < to && end > from && end > start && blocksTime(details.item.component)) {
          periods.push({ start, end, summary: summaryOf(details.item.component) });
        }
      }
    }
  }
  return periods.sort((a, b) => a.start - b.start || a.end - b.end);
}

/** The state at `now`: the period under way (the latest begun when several are) and the next change. */
export function stateAt(
  periods: readonly BusyPeriod[],
  now: number,
): { current: BusyPeriod | undefined; next: number | undefined } {
  let current: BusyPeriod | undefined;
  let next: number | undefined;
  const consider = (time: number): void => {
    if (time > now && (next === undefined || time < next)) next = time;
  };
  for (const period of periods) {
    if (period.start <= now && now < period.end && (!current || period.start >= current.start)) {
      current = period;
    }
    consider(period.start);
    consider(period.end);
  }
  return { current, next };
}
