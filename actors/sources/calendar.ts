// actors/sources: the built-in calendar source — busy/"in a meeting" during iCalendar events.
// Reads one .ics file or URL per presentity, re-reads it on change, and times the next transition.

import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  defineSource,
  type PresenceUpdate,
  presentityKey,
  SourceConfigError,
  type SourceContext,
} from "./api.js";
import { busyPeriods, CalendarError, stateAt } from "./calendar-schedule.js";

export type CalendarMessage =
  /** Read the calendars again (one presentity's, or all): a file changed, or it is time to poll. */
  | { type: "reload"; presentity?: string }
  /** A busy period begins or ends. */
  | { type: "transition" };

interface Calendar {
  presentity: string;
  /** An absolute file path, or an http(s) URL. */
  location: string;
  remote: boolean;
}

export interface CalendarConfig {
  calendars: Calendar[];
  pollMs: number;
  /** Whether watchers see an event's SUMMARY as the note (else "in a meeting"). */
  showSummaries: boolean;
}

interface CalendarState {
  /** The last text of each calendar that parsed; absent: none (never read, or the file is gone). */
  texts: Map<string, string>;
  watchers: FSWatcher[];
}

type Ctx = SourceContext<CalendarConfig, CalendarMessage>;

const DAY_MS = 86_400_000;
const FETCH_TIMEOUT_MS = 10_000;
/** Timers may fire a little early: evaluate just after the boundary, never just before. */
const AFTER_BOUNDARY_MS = 5;
const OPTIONS = new Set(["calendars", "poll", "summaries"]);

function parseCalendars(raw: string): Calendar[] {
  const calendars: Calendar[] = [];
  for (const item of raw.split(",").map((entry) => entry.trim())) {
    if (item === "") continue;
    const at = item.indexOf("=");
    const presentity = at > 0 ? presentityKey(item.slice(0, at)) : undefined;
    const location = item.slice(at + 1).trim();
    if (presentity === undefined || location === "") {
      throw new SourceConfigError(
        `calendar: expected <presentity>=<file or URL>, got "${item}" (--calendar)`,
      );
    }
    if (calendars.some((c) => c.presentity === presentity)) {
      throw new SourceConfigError(`calendar: ${presentity} has two calendars (--calendar)`);
    }
    const remote = /^https?:\/\//i.test(location);
    const path = /^file:/i.test(location) ? fileURLToPath(location) : location;
    calendars.push({ presentity, location: remote ? location : resolve(path), remote });
  }
  return calendars;
}

async function read(calendar: Calendar): Promise<string | undefined> {
  if (!calendar.remote) {
    try {
      return await readFile(calendar.location, "utf8");
    } catch (error) {
      // A calendar file that is gone says nothing any more; other errors keep the last state.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }
  const response = await fetch(calendar.location, {
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`GET ${calendar.location} answered ${response.status}`);
  return response.text();
}

async function reload(state: CalendarState, calendar: Calendar, ctx: Ctx): Promise<boolean> {
  let text: string | undefined;
  try {
    text = await read(calendar);
  } catch (error) {
    ctx.log.warn("calendar not read; keeping its last state", {
      location: calendar.location,
      error,
    });
    return false;
  }
  if (text === state.texts.get(calendar.presentity)) return false;
  if (text === undefined) {
    state.texts.delete(calendar.presentity);
    return true;
  }
  try {
    busyPeriods(text, ctx.now(), ctx.now());
  } catch (error) {
    if (!(error instanceof CalendarError)) throw error;
    ctx.log.warn("calendar is not iCalendar; keeping its last state", {
      location: calendar.location,
      error,
    });
    return false;
  }
  state.texts.set(calendar.presentity, text);
  return true;
}

/** Publishes every presentity's state now and arms the timer for the next transition. */
function evaluate(state: CalendarState, ctx: Ctx): void {
  const now = ctx.now();
  let next = now + DAY_MS;
  for (const { presentity } of ctx.config.calendars) {
    const text = state.texts.get(presentity);
    if (text === undefined) {
      ctx.clear(presentity);
      continue;
    }
    const { current, next: change } = stateAt(
      busyPeriods(text, now - DAY_MS, now + 8 * DAY_MS),
      now,
    );
    if (change !== undefined) next = Math.min(next, change);
    const update: PresenceUpdate = current
      ? {
          status: "open",
          activities: ["busy", "meeting"],
          note: (ctx.config.showSummaries && current.summary) || "in a meeting",
        }
      : { status: "open", note: "available" };
    ctx.publish(presentity, update);
  }
  ctx.setTimer("transition", next - now + AFTER_BOUNDARY_MS, { type: "transition" });
}

export const calendar = defineSource<CalendarConfig, CalendarState, CalendarMessage>({
  name: "calendar",
  description: "busy and in a meeting during the events of an iCalendar file or URL per presentity",
  config(options) {
    for (const key of Object.keys(options)) {
      if (!OPTIONS.has(key)) {
        throw new SourceConfigError(
          `calendar: unknown option "${key}" (${[...OPTIONS].join(", ")})`,
        );
      }
    }
    const calendars = parseCalendars(options.calendars ?? "");
    if (calendars.length === 0) {
      throw new SourceConfigError("calendar needs --calendar <presentity>=<file or URL>");
    }
    const pollMs = Number(options.poll ?? "60000");
    if (!Number.isInteger(pollMs) || pollMs < 100 || pollMs > DAY_MS) {
      throw new SourceConfigError(
        `calendar: poll must be from 100 to ${DAY_MS} ms (--calendar-poll)`,
      );
    }
    const summaries = options.summaries ?? "hide";
    if (summaries !== "show" && summaries !== "hide") {
      throw new SourceConfigError('calendar: summaries must be "show" or "hide"');
    }
    return { calendars, pollMs, showSummaries: summaries === "show" };
  },
  start(ctx) {
    const watchers: FSWatcher[] = [];
    for (const { presentity, location, remote } of ctx.config.calendars) {
      if (remote) continue;
      // The directory, not the file: editors and deploy tools replace files by renaming.
      try {
        const watcher = watch(dirname(location), (_event, file) => {
          if (file === null || file === basename(location))
            ctx.tell({ type: "reload", presentity });
        });
        watcher.on("error", (error) => ctx.log.warn("calendar watch failed; polling", { error }));
        watchers.push(watcher);
      } catch (error) {
        ctx.log.warn("calendar directory not watched; polling", { location, error });
      }
    }
    ctx.every("poll", ctx.config.pollMs, { type: "reload" });
    ctx.tell({ type: "reload" });
    return { texts: new Map(), watchers };
  },
  async receive(state, message, ctx) {
    if (message.type === "transition") {
      evaluate(state, ctx);
      return state;
    }
    const calendars = ctx.config.calendars.filter(
      (c) => message.presentity === undefined || c.presentity === message.presentity,
    );
    const changed = await Promise.all(calendars.map((c) => reload(state, c, ctx)));
    if (changed.some(Boolean)) evaluate(state, ctx);
    return state;
  },
  stop(state) {
    for (const watcher of state.watchers) watcher.close();
  },
});
