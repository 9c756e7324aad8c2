// examples/sources: the tutorial presence source — a presentity is "in the office" during office hours.
// Built with the project to dist/examples/sources/office-hours.js; README "Adding a presence source" runs it.

import { defineSource, SourceConfigError } from "../../bootstrap/index.js";

/** The source's only message: its own timer, once a minute. */
type Tick = { type: "tick" };

export default defineSource({
  name: "office-hours",
  // --source-option office-hours.<key>=<value>; a bad value stops the node at start, naming it.
  config(options) {
    const hours = /^(\d{1,2})-(\d{1,2})$/.exec(options.hours ?? "9-17");
    if (!options.presentity || !hours) {
      throw new SourceConfigError("office-hours needs presentity=<sip uri>, and hours=<from>-<to>");
    }
    const note = options.note ?? "in the office";
    return { presentity: options.presentity, from: Number(hours[1]), to: Number(hours[2]), note };
  },
  start(ctx) {
    ctx.every("tick", 60_000, { type: "tick" });
    ctx.tell({ type: "tick" }); // the first look at the clock, right away
    return null;
  },
  // Publishing the same state again changes nothing: watchers get a NOTIFY only on a change.
  receive(state, _tick: Tick, ctx) {
    const { presentity, from, to, note } = ctx.config;
    const hour = new Date(ctx.now()).getHours();
    if (hour >= from && hour < to) ctx.publish(presentity, { status: "open", note });
    else ctx.publish(presentity, { status: "closed", note: "out of office", activities: ["away"] });
    return state;
  },
});
