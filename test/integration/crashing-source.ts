// test/integration: a presence source that throws on every message, for the supervision test.
// Loaded by path into node processes: --source crashing:dist/test/integration/crashing-source.js

import { defineSource } from "../../bootstrap/index.js";

export default defineSource({
  name: "crashing",
  start(ctx) {
    ctx.every("tick", 20, "tick");
    return null;
  },
  receive(): null {
    throw new Error("this source fails on every message");
  },
});
