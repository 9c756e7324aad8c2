// scripts/bench/paper: a CPU quota per node process (`bench paper --node-cpu`) through Linux cgroups —
// the CFS bandwidth controller of cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us); none where neither is writable.

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = "/sys/fs/cgroup";
/** The CFS period: the quota is `cores` × this much CPU time per period. */
const PERIOD_US = 100_000;

export interface CpuQuota {
  /** How the quota is applied ("cgroup v2 cpu.max", …) or why it is not. */
  readonly how: string;
  readonly applied: boolean;
  /** Moves a process into its own group limited to `cores` (a fraction of one core, or more). */
  limit(pid: number, cores: number): void;
  /**
   * The kernel's count of the CFS periods of that process's group, and of those in which it was
   * throttled (held back at its quota): `cpu.stat` nr_periods and nr_throttled.
   */
  periods(pid: number): { periods: number; throttled: number } | undefined;
  /** Removes the groups (their processes must have exited). */
  release(): void;
}

type Flavour = { version: 2; base: string } | { version: 1; base: string };

function writable(flavour: Flavour): boolean {
  const probe = join(flavour.base, `presence-bench-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

function detect(): Flavour | string {
  const v2 = join(ROOT, "cgroup.controllers");
  if (existsSync(v2)) {
    const controllers = readFileSync(v2, "utf8").split(/\s+/);
    if (!controllers.includes("cpu")) return "cgroup v2 without the cpu controller";
    const subtree = join(ROOT, "cgroup.subtree_control");
    try {
      if (!readFileSync(subtree, "utf8").split(/\s+/).includes("cpu")) {
        writeFileSync(subtree, "+cpu");
      }
    } catch {
      return "cgroup v2: cannot enable the cpu controller for child groups (not root?)";
    }
    const flavour: Flavour = { version: 2, base: ROOT };
    return writable(flavour) ? flavour : "cgroup v2 is read-only here (not root, or a container)";
  }
  const v1 = join(ROOT, "cpu");
  if (existsSync(join(v1, "cpu.cfs_quota_us"))) {
    const flavour: Flavour = { version: 1, base: v1 };
    return writable(flavour) ? flavour : "cgroup v1 cpu hierarchy is read-only here (not root?)";
  }
  return "no cgroup CPU controller found under /sys/fs/cgroup";
}

const none = (reason: string): CpuQuota => ({
  how: `not applied: ${reason}`,
  applied: false,
  limit: () => {},
  periods: () => undefined,
  release: () => {},
});

/** The quota mechanism of this machine, or one that applies nothing and says why. */
export function cpuQuota(): CpuQuota {
  const flavour = detect();
  if (typeof flavour === "string") return none(flavour);
  const groups = new Map<number, string>();
  const quota = (cores: number): number => Math.max(1_000, Math.round(cores * PERIOD_US));
  return {
    how:
      flavour.version === 2
        ? `cgroup v2 cpu.max (period ${PERIOD_US} µs)`
        : `cgroup v1 cpu.cfs_quota_us (period ${PERIOD_US} µs)`,
    applied: true,
    limit(pid, cores) {
      const group = join(flavour.base, `presence-bench-${process.pid}-${pid}`);
      mkdirSync(group, { recursive: true });
      groups.set(pid, group);
      if (flavour.version === 2) {
        writeFileSync(join(group, "cpu.max"), `${quota(cores)} ${PERIOD_US}`);
      } else {
        writeFileSync(join(group, "cpu.cfs_period_us"), String(PERIOD_US));
        writeFileSync(join(group, "cpu.cfs_quota_us"), String(quota(cores)));
      }
      writeFileSync(join(group, "cgroup.procs"), String(pid));
    },
    periods(pid) {
      const group = groups.get(pid);
      if (group === undefined) return undefined;
      try {
        const stat = readFileSync(join(group, "cpu.stat"), "utf8");
        const field = (name: string): number =>
          Number(new RegExp(`^${name} (\\d+)$`, "m").exec(stat)?.[1] ?? Number.NaN);
        return { periods: field("nr_periods"), throttled: field("nr_throttled") };
      } catch {
        return undefined;
      }
    },
    release() {
      const all = [...groups.values()];
      groups.clear();
      for (const group of all) {
        try {
          rmdirSync(group);
        } catch {
          // Still has a process (it did not exit): the kernel removes nothing; leave it.
        }
      }
    },
  };
}
