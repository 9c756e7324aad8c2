// test/integration: `bench paper --node-cpu` — a busy process put under a CPU quota through cgroups gets
// its share and no more; where cgroups are not writable the quota says why and applies nothing.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { cpuQuota } from "../../scripts/bench/paper/cpu-quota.js";
import { cpuSeconds } from "../../scripts/bench/processes.js";
import { waitFor } from "./harness.js";

describe("cpu quota", () => {
  it("cpu quota - a spinning process limited to 0.2 core is throttled by the kernel and gets well under a core", async (t) => {
    const quota = cpuQuota();
    if (!quota.applied) {
      assert.match(quota.how, /^not applied: /);
      t.skip(quota.how);
      return;
    }
    const child = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
    try {
      assert.ok(child.pid);
      const pid = child.pid;
      quota.limit(pid, 0.2);
      const start = cpuSeconds(pid) ?? 0;
      const began = Date.now();
      // Unlimited, 0.3 s of CPU takes 0.3 s; at 0.2 core it takes about 1.5 s. The wall-time
      // bound is loose (2×): a virtual machine's per-process accounting is tick-sampled and has
      // charged such a process 0.3 s in 1.06 s; the kernel's own count of throttled periods is
      // the exact witness.
      await waitFor(() => (cpuSeconds(pid) ?? 0) - start >= 0.3, {
        timeoutMs: 10_000,
        what: "0.3 s of CPU",
      });
      const wall = (Date.now() - began) / 1000;
      assert.ok(wall >= 0.6, `0.3 s of CPU in ${wall} s of wall time: not limited`);
      const periods = quota.periods(pid);
      assert.ok(periods, "the group's cpu.stat");
      assert.ok(
        periods.throttled >= periods.periods / 2 && periods.throttled >= 3,
        `throttled in ${periods.throttled} of ${periods.periods} periods`,
      );
    } finally {
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
      quota.release();
    }
  });
});
