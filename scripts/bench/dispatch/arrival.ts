// scripts/bench/dispatch: one step of the new-subscription benchmark — a fresh cluster (primary and
// two servers), SIPp watchers arriving at the primary at one rate, and what their timings show.

import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { ProcessMeter, udpDrops } from "../processes.js";
import { epochMs, runSipp, type SippResult } from "../sipp.js";
import { type Spread, spread } from "../stats.js";
import { type Cluster, exitOf, startCluster, stopCluster, supervisorOf } from "./cluster.js";

export type DispatchMode = "redirect" | "proxy";
export const DISPATCH_MODES: readonly DispatchMode[] = ["redirect", "proxy"];

export interface DispatchContext {
  /** dist/bootstrap/cli.js of the node under test (a snapshot of the build). */
  cli: string;
  /** Where watcher-arrive.xml is. */
  scenarioDir: string;
  /** Scratch directory of this run; each step gets its own directory in it. */
  scratch: string;
  /** Seconds of arrivals per step. */
  duration: number;
  /** nats-server's max_payload in bytes (undefined: its default, 1 MB). */
  natsMaxPayload: number | undefined;
  /** Watchers sent (at 100/s, not counted) before each step's measured arrivals: a fresh cluster runs cold code. */
  warmup: number;
}

/** One watcher as its SIPp call logged it (epoch ms). */
export interface Arrival {
  start: number;
  /** The primary's final answer: 302, or 200 (its own watcher, or the proxied one). */
  answered: number;
  firstNotify: number;
  /** The first NOTIFY came before the 200 to the SUBSCRIBE (RFC 6665 §4.1.2.4). */
  early: boolean;
  /** SIP port of the node that sent the NOTIFY: where the subscription lives. */
  notifierPort: number;
  redirected: boolean;
}

export interface ArrivalStep {
  mode: DispatchMode;
  /** New watchers per second asked of SIPp. */
  target: number;
  calls: number;
  successful: number;
  failed: number;
  /** Successful calls per second over the span of their start times. */
  achieved: number;
  retransmissions: number;
  /** First SUBSCRIBE sent → first NOTIFY received, ms. */
  firstNotify: Spread;
  /** First SUBSCRIBE sent → the primary's final answer (302 or 200), ms. */
  answer: Spread;
  earlyNotifies: number;
  redirected: number;
  /** Watchers whose subscription ended up on each node (by the NOTIFY's source port). */
  servedBy: Record<string, number>;
  /** CPU in cores (1.0 = one core) while SIPp started calls. */
  cpu: { primary: number; servers: number; nats: number; sipp: number };
  primaryUdpDrops: number;
  serverUdpDrops: number;
  /** The supervisor's counters after the step (placed, redirected, …). */
  supervisor: Record<string, number>;
  failures: Record<string, number>;
  errors: SippResult["errors"];
  held: boolean;
  /** 1-minute load average when the step began. */
  load: number;
  /** First stderr line of each node that wrote any (warnings and errors). */
  nodeStderr: string[];
  /** Nodes that exited by themselves during the step. */
  nodeExits: string[];
  /** The primary's CPU profile (.cpuprofile), when one was asked for. */
  profile?: string;
}

/** An epoch time "<s>/<us>" of an arrive line in ms; SIPp prints a variable holding 0 as nothing. */
function timeField(fields: ReadonlyMap<string, string>, name: string): number {
  const [s, us] = (fields.get(name) ?? "").split("/");
  return s && us ? epochMs(s, us) : 0;
}

/** The "arrive name=value …" lines of watcher-arrive.xml, one per successful call. */
export function parseArrivals(lines: readonly string[]): Arrival[] {
  const out: Arrival[] = [];
  for (const line of lines) {
    const [tag, ...rest] = line.trim().split(/\s+/);
    if (tag !== "arrive") continue;
    const fields = new Map<string, string>();
    for (const field of rest) {
      const eq = field.indexOf("=");
      if (eq > 0) fields.set(field.slice(0, eq), field.slice(eq + 1));
    }
    const start = timeField(fields, "t0");
    const late = timeField(fields, "tl");
    if (start === 0 || late === 0) continue;
    const early = timeField(fields, "te");
    out.push({
      start,
      answered: timeField(fields, "t1"),
      firstNotify: early > 0 ? early : late,
      early: early > 0,
      notifierPort: Number(fields.get("port") ?? 0),
      redirected: Number(fields.get("redirected") || 0) > 0,
    });
  }
  return out;
}

/** Successful calls over the span of their start times (SIPp holds starts back at -l calls in flight). */
export function achievedRate(arrivals: readonly Arrival[]): {
  rate: number;
  from: number;
  to: number;
} {
  if (arrivals.length < 2) return { rate: 0, from: 0, to: 0 };
  let from = Number.POSITIVE_INFINITY;
  let to = 0;
  for (const a of arrivals) {
    from = Math.min(from, a.start);
    to = Math.max(to, a.start);
  }
  const span = (to - from) / 1000;
  return { rate: span > 0 ? (arrivals.length - 1) / span : 0, from, to };
}

/** Options every dispatch cluster runs with: nothing is promoted or drained during a step. */
export function steadyOptions(mode: DispatchMode): string[] {
  return [
    "--dispatch",
    mode,
    "--max-load",
    "1000000",
    "--min-load",
    "0",
    "--scale-in-after",
    "86400000",
  ];
}

/** One step; with `profileDir`, the primary runs under --cpu-prof and writes its profile there. */
export async function runArrivalStep(
  ctx: DispatchContext,
  mode: DispatchMode,
  rate: number,
  profileDir?: string,
): Promise<ArrivalStep> {
  const load = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(ctx.scratch, `${mode}-${rate}-`));
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster({
      cli: ctx.cli,
      dir,
      members: [
        {
          id: "p",
          role: "primary",
          ...(profileDir ? { nodeFlags: ["--cpu-prof", "--cpu-prof-dir", profileDir] } : {}),
        },
        { id: "s1", role: "server" },
        { id: "s2", role: "server" },
      ],
      options: steadyOptions(mode),
      natsMaxPayload: ctx.natsMaxPayload,
      readyTimeoutMs: 20_000,
    });
    const { primary } = cluster;
    if (ctx.warmup > 0) {
      const warm = join(dir, "warmup");
      mkdirSync(warm);
      await runSipp({
        scenario: join(ctx.scenarioDir, "watcher-arrive.xml"),
        dir: warm,
        target: { host: "127.0.0.1", port: primary.sipPort },
        rate: Math.min(100, rate),
        calls: ctx.warmup,
        limit: 200,
        keys: { prefix: "warmup-", expires: 600 },
        timeoutMs: (ctx.warmup / Math.min(100, rate)) * 2_000 + 20_000,
      });
    }
    const servers = cluster.members.filter((m) => m.role !== "primary");
    // The kernel's drop counters are totals since the socket opened: the warm-up's are taken off.
    const dropsBefore = {
      primary: udpDrops(primary.pid) ?? 0,
      servers: servers.reduce((sum, s) => sum + (udpDrops(s.pid) ?? 0), 0),
    };
    const meters = {
      primary: new ProcessMeter(primary.pid),
      servers: servers.map((s) => new ProcessMeter(s.pid)),
      nats: new ProcessMeter(cluster.nats.pid),
    };
    const calls = Math.max(1, Math.round(rate * ctx.duration));
    const sipp = await runSipp({
      scenario: join(ctx.scenarioDir, "watcher-arrive.xml"),
      dir,
      target: { host: "127.0.0.1", port: primary.sipPort },
      rate,
      calls,
      limit: Math.max(200, rate),
      keys: { prefix: `w${rate}-`, expires: 600 },
      timeoutMs: ctx.duration * 2_000 + 20_000,
    });
    const usage = {
      primary: meters.primary.finish(),
      servers: meters.servers.map((m) => m.finish()),
      nats: meters.nats.finish(),
    };
    const arrivals = parseArrivals(sipp.logLines);
    const window = achievedRate(arrivals);
    const byPort = new Map(cluster.members.map((m) => [m.sipPort, m.id]));
    const servedBy: Record<string, number> = {};
    for (const a of arrivals) {
      const id = byPort.get(a.notifierPort) ?? `port ${a.notifierPort}`;
      servedBy[id] = (servedBy[id] ?? 0) + 1;
    }
    let supervisor: Record<string, number> = {};
    try {
      supervisor = { ...(await supervisorOf(primary)).counters };
    } catch {
      // The primary did not answer after the step: its figures stay out, the step still counts.
    }
    const cores = (from: number, to: number) => ({
      primary: usage.primary.cpu.cores(from, to),
      servers: usage.servers.reduce((sum, u) => sum + u.cpu.cores(from, to), 0),
      nats: usage.nats.cpu.cores(from, to),
      sipp: sipp.cpu.cores(from, to),
    });
    const step: ArrivalStep = {
      mode,
      target: rate,
      calls,
      successful: sipp.successful,
      failed: sipp.failed,
      achieved: window.rate,
      retransmissions: sipp.retransmissions,
      firstNotify: spread(arrivals.map((a) => a.firstNotify - a.start)),
      answer: spread(arrivals.filter((a) => a.answered > 0).map((a) => a.answered - a.start)),
      earlyNotifies: arrivals.filter((a) => a.early).length,
      redirected: arrivals.filter((a) => a.redirected).length,
      servedBy,
      cpu: cores(window.from, window.to),
      primaryUdpDrops: usage.primary.drops - dropsBefore.primary,
      serverUdpDrops: usage.servers.reduce((sum, u) => sum + u.drops, 0) - dropsBefore.servers,
      supervisor,
      failures: sipp.failures,
      errors: sipp.errors,
      held: sipp.failed === 0 && window.rate >= 0.95 * rate,
      load,
      nodeStderr: cluster.members
        .map((m) => {
          const first = m.stderr().trim().split("\n")[0];
          return first ? `${m.id}: ${first.slice(0, 240)}` : "";
        })
        .filter((line) => line.length > 0),
      nodeExits: cluster.members.map(exitOf).filter((e): e is string => e !== undefined),
    };
    await stopCluster(cluster, 5_000);
    const profile = profileDir
      ? readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"))
      : undefined;
    return profileDir && profile ? { ...step, profile: join(profileDir, profile) } : step;
  } finally {
    if (cluster) await stopCluster(cluster, 1_000);
  }
}
