// scripts/bench: one step of each benchmark workload — a fresh node, one SIPp load at one rate, the figures.
// Watcher and publish calls are whole SIPp scenarios; the fan-out adds the UDP watcher of notify-sink.ts.

import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { NotifySink, type SinkCounts } from "./notify-sink.js";
import { pidfDocument, pidfTuples } from "./pidf.js";
import {
  type CpuTrace,
  clusterView,
  type NodeProcess,
  ProcessMeter,
  peakRssMiB,
  startNode,
  stop,
  udpDrops,
} from "./processes.js";
import { epochMs, runSipp, type SippResult } from "./sipp.js";
import { type Spread, spread } from "./stats.js";

export type Workload = "watcher" | "publish-1k" | "publish-25k" | "fanout";
export const WORKLOADS: readonly Workload[] = ["watcher", "publish-1k", "publish-25k", "fanout"];

export interface BenchContext {
  /** Project root (the scenarios are under scripts/bench). */
  root: string;
  /** Root of the node under test: a snapshot holding dist/, package.json and node_modules. */
  nodeRoot: string;
  /** Scratch directory for this benchmark run; each step gets its own directory in it. */
  scratch: string;
  /** Seconds of load per step. */
  duration: number;
  /** Extra flags for the node's Node.js process (what-if runs: GC sizes, a preload). */
  nodeFlags: readonly string[];
  /** Extra environment of the node (the OTEL_* variables of a traced configuration). */
  nodeEnv: Readonly<Record<string, string>>;
}

export interface FanoutFigures {
  watchers: number;
  presentities: number;
  /** PUBLISHes answered 200 (initial and modifying). */
  publishes: number;
  publishesPerSecond: number;
  /** NOTIFYs carrying a published state: expected = publishes × watchers per presentity. */
  expected: number;
  delivered: number;
  notifiesPerSecond: number;
  /** PUBLISH sent (SIPp's clock) to NOTIFY received (the watcher's clock), ms. */
  latency: Spread;
  /** NOTIFYs the node sent again because our 200 came late or was lost. */
  notifyRetransmissions: number;
  sinkUdpDrops: number;
  /** Everything the benchmark's watcher counted (first NOTIFYs, terminated ones, malformed). */
  sink: SinkCounts;
}

export interface StepResult {
  workload: Workload;
  /** Calls per second asked of SIPp (PUBLISH/s for the fan-out). */
  target: number;
  /** Successful calls per second over the span of their start times (PUBLISH/s for the fan-out). */
  achieved: number;
  calls: number;
  successful: number;
  failed: number;
  retransmissions: number;
  /** First request to its 200 (SUBSCRIBE or PUBLISH), ms. */
  request: Spread;
  /** Whole call, first request sent to last message handled, ms (none for the fan-out). */
  call: Spread;
  /** CPU used while SIPp started calls (first to last start), in cores (1.0 = one core). */
  nodeCpu: number;
  /** The node's main thread (its event loop) alone, in cores: what saturates first. */
  nodeMainCpu: number;
  sippCpu: number;
  /** CPU the machine's other processes used meanwhile (not the node, SIPp or this benchmark). */
  otherCpu: number;
  nodeRssMiB: number | undefined;
  nodeUdpDrops: number;
  sippUdpDrops: number;
  /** Counters the node reports about itself (notifiesFailed, pendingTransactions, mail drops). */
  nodeCounters: Record<string, number>;
  errors: SippResult["errors"];
  failures: Record<string, number>;
  /** Held: no failed call and at least 95% of the rate asked (for the fan-out, of NOTIFYs too). */
  held: boolean;
  fanout?: FanoutFigures;
  /** The machine's 1-minute load average when the step began (others share this machine). */
  load: number;
  /** Where the node wrote its CPU profile, when asked for one. */
  profile?: string;
  nodeStderr: string;
  /** Set when the node exited by itself during the step ("code 1", "signal SIGKILL"). */
  nodeExited?: string;
}

const BODY_BYTES: Record<Workload, number> = {
  watcher: 0,
  "publish-1k": 1024,
  "publish-25k": 25 * 1024,
  fanout: 25 * 1024,
};

const FANOUT_WATCHERS = 1_000;
const FANOUT_PRESENTITIES = 100;

function scenario(ctx: BenchContext, name: string): string {
  return join(ctx.root, "scripts", "bench", `${name}.xml`);
}

async function launch(ctx: BenchContext, options: string[], profileDir?: string) {
  return startNode({
    cli: join(ctx.nodeRoot, "dist", "bootstrap", "cli.js"),
    nodeFlags: [
      ...ctx.nodeFlags,
      ...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : []),
    ],
    options,
    env: ctx.nodeEnv,
    startTimeoutMs: 15_000,
  });
}

/** The counters kept from GET /api/cluster; one the node does not report is left out. */
async function countersOf(node: NodeProcess): Promise<Record<string, number>> {
  try {
    const view = await clusterView(node);
    const stats = (view.stats ?? {}) as Record<string, unknown>;
    const mail = (view.mail ?? {}) as Record<string, unknown>;
    const pick: Record<string, unknown> = {
      subscriptions: view.subscriptions,
      notifiesSent: stats.notifiesSent,
      notifiesFailed: stats.notifiesFailed,
      actorCrashes: stats.actorCrashes,
      pendingTransactions: stats.pendingTransactions,
      mailDropped: mail.dropped,
      askTimeouts: mail.askTimeouts,
    };
    return Object.fromEntries(
      Object.entries(pick).filter((e): e is [string, number] => typeof e[1] === "number"),
    );
  } catch {
    return {};
  }
}

/**
 * "call t0s t0u t1s t1u t2s t2u" log lines to request and whole-call times, and the rate achieved:
 * successful calls over the span of their start times (SIPp holds starts back when -l calls are in
 * flight, so a node that falls behind lowers it; slow calls show in the times instead).
 */
function callTimings(lines: readonly string[]): {
  request: number[];
  call: number[];
  achieved: number;
  window: { from: number; to: number };
} {
  const request: number[] = [];
  const call: number[] = [];
  let first = Number.POSITIVE_INFINITY;
  let lastStart = 0;
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== "call" || f.length < 7) continue;
    const t0 = epochMs(f[1], f[2]);
    const t1 = epochMs(f[3], f[4]);
    const t2 = epochMs(f[5], f[6]);
    request.push(t1 - t0);
    call.push(t2 - t0);
    first = Math.min(first, t0);
    lastStart = Math.max(lastStart, t0);
  }
  const span = (lastStart - first) / 1000;
  return {
    request,
    call,
    achieved: call.length > 1 && span > 0 ? (call.length - 1) / span : 0,
    window: { from: first, to: lastStart },
  };
}

/** One watcher-call or publish-call load at `rate` calls/s on a fresh node. */
export async function runCallStep(
  ctx: BenchContext,
  workload: Exclude<Workload, "fanout">,
  rate: number,
  profileDir?: string,
): Promise<StepResult> {
  const load = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(ctx.scratch, `${workload}-${rate}-`));
  if (workload !== "watcher") {
    writeFileSync(
      join(dir, "body.pidf"),
      pidfDocument("sip:bench@127.0.0.1", BODY_BYTES[workload]),
    );
  }
  const node = await launch(ctx, [], profileDir);
  try {
    const meter = new ProcessMeter(node.pid, { mainThread: true });
    const machine = new ProcessMeter("machine");
    const self = new ProcessMeter(process.pid);
    const calls = Math.max(1, Math.round(rate * ctx.duration));
    const sipp = await runSipp({
      scenario: scenario(ctx, workload === "watcher" ? "watcher-call" : "publish-call"),
      dir,
      target: { host: "127.0.0.1", port: node.sipPort },
      rate,
      calls,
      limit: Math.max(200, rate),
      keys: { run: rate },
      timeoutMs: ctx.duration * 2_000 + 20_000,
    });
    const usage = meter.finish();
    const timings = callTimings(sipp.logLines);
    const cpu = cpuShares(timings.window, usage, sipp.cpu, machine, self);
    const counters = await countersOf(node);
    const rss = peakRssMiB(node.pid);
    const early = exitedEarly(node);
    const profile = await stopNode(node, profileDir);
    return {
      workload,
      target: rate,
      achieved: timings.achieved,
      calls,
      successful: sipp.successful,
      failed: sipp.failed,
      retransmissions: sipp.retransmissions,
      request: spread(timings.request),
      call: spread(timings.call),
      ...cpu,
      nodeRssMiB: rss,
      nodeUdpDrops: usage.drops,
      sippUdpDrops: sipp.udpDrops,
      nodeCounters: counters,
      errors: sipp.errors,
      failures: sipp.failures,
      held: sipp.failed === 0 && timings.achieved >= 0.95 * rate,
      load,
      ...(profile ? { profile } : {}),
      nodeStderr: node.stderr(),
      ...early,
    };
  } finally {
    await stop(node.child, 10_000);
  }
}

/** Cores used in a window by the node, SIPp, and everything else on the machine but this process. */
function cpuShares(
  window: { from: number; to: number },
  node: { cpu: CpuTrace; mainCpu: CpuTrace },
  sipp: CpuTrace,
  machine: ProcessMeter,
  self: ProcessMeter,
): { nodeCpu: number; nodeMainCpu: number; sippCpu: number; otherCpu: number } {
  const { from, to } = window;
  const nodeCpu = node.cpu.cores(from, to);
  const nodeMainCpu = node.mainCpu.cores(from, to);
  const sippCpu = sipp.cores(from, to);
  const all = machine.finish().cpu.cores(from, to);
  const mine = self.finish().cpu.cores(from, to);
  return { nodeCpu, nodeMainCpu, sippCpu, otherCpu: Math.max(0, all - nodeCpu - sippCpu - mine) };
}

/** How the node ended if it is no longer running before we stop it (a crash, or someone killed it). */
function exitedEarly(node: NodeProcess): { nodeExited: string } | Record<string, never> {
  const { exitCode, signalCode } = node.child;
  if (signalCode !== null) return { nodeExited: `signal ${signalCode}` };
  if (exitCode !== null) return { nodeExited: `code ${exitCode}` };
  return {};
}

/** Stops the node (SIGTERM, so that --cpu-prof writes its file) and returns the profile's path. */
async function stopNode(node: NodeProcess, profileDir?: string): Promise<string | undefined> {
  await stop(node.child, 10_000);
  if (!profileDir) return undefined;
  const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
  return file ? join(profileDir, file) : undefined;
}

/** Resolves once `done()` holds, or after `timeoutMs`; returns whether it held. */
async function waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * The fan-out: 1,000 watchers (10 on each of 100 presentities) subscribe through SIPp with our
 * NotifySink as Contact; then 100 SIPp publishers re-PUBLISH 25 KB bodies at `rate` PUBLISH/s in all.
 */
export async function runFanoutStep(
  ctx: BenchContext,
  rate: number,
  profileDir?: string,
): Promise<StepResult> {
  const load = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(ctx.scratch, `fanout-${rate}-`));
  const users = Array.from({ length: FANOUT_PRESENTITIES }, (_, i) => `fan${i + 1}`);
  const perPresentity = FANOUT_WATCHERS / FANOUT_PRESENTITIES;
  writeFileSync(
    join(dir, "publishers.csv"),
    `SEQUENTIAL\n${users.map((u) => `${u};`).join("\n")}\n`,
  );
  // The scenario adds the envelope and a first tuple with the clock (about 250 bytes).
  writeFileSync(join(dir, "filler.pidf"), pidfTuples(25 * 1024 - 250, 2));

  const node = await launch(ctx, ["--shutdown-timeout", "3000"], profileDir);
  const sink = await NotifySink.open();
  try {
    // Field 0: the presentity (each one 10 times); field 1: the sink port that is the Contact.
    const ports = sink.ports;
    const watcherRows = Array.from(
      { length: FANOUT_WATCHERS },
      (_, i) => `${users[i % users.length]};${ports[i % ports.length]};`,
    );
    writeFileSync(join(dir, "watchers.csv"), `SEQUENTIAL\n${watcherRows.join("\n")}\n`);
    const subscribed = await runSipp({
      scenario: scenario(ctx, "fanout-subscribe"),
      dir,
      target: { host: "127.0.0.1", port: node.sipPort },
      rate: 500,
      calls: FANOUT_WATCHERS,
      limit: FANOUT_WATCHERS,
      extra: ["-inf", "watchers.csv"],
      timeoutMs: 30_000,
    });
    const allWatching = await waitFor(() => sink.counts.initial >= FANOUT_WATCHERS, 15_000);
    if (subscribed.failed > 0 || !allWatching) {
      throw new Error(
        `fan-out setup: ${subscribed.successful}/${FANOUT_WATCHERS} SUBSCRIBEs answered 200, ` +
          `${sink.counts.initial} first NOTIFYs received; SIPp errors: ${JSON.stringify(subscribed.errors)}`,
      );
    }

    const meter = new ProcessMeter(node.pid, { mainThread: true });
    const machine = new ProcessMeter("machine");
    const self = new ProcessMeter(process.pid);
    const loops = Math.max(1, Math.round((rate * ctx.duration) / FANOUT_PRESENTITIES));
    const periodMs = (1000 * FANOUT_PRESENTITIES) / rate;
    const sipp = await runSipp({
      scenario: scenario(ctx, "fanout-publish"),
      dir,
      target: { host: "127.0.0.1", port: node.sipPort },
      // The publishers start spread over one period, so their PUBLISHes interleave evenly.
      rate,
      calls: FANOUT_PRESENTITIES,
      limit: FANOUT_PRESENTITIES,
      keys: { loops, period: periodMs.toFixed(3) },
      extra: ["-inf", "publishers.csv"],
      timeoutMs: ctx.duration * 3_000 + 30_000,
    });
    // NOTIFYs still on their way when the last publisher ended: wait until they stop coming.
    let before = -1;
    await waitFor(() => {
      const now = sink.counts.notifies;
      const quiet = now === before;
      before = now;
      return quiet;
    }, 15_000);
    const usage = meter.finish();
    const counters = await countersOf(node);
    const rss = peakRssMiB(node.pid);
    const early = exitedEarly(node);

    const request: number[] = [];
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (const line of sipp.logLines) {
      const f = line.trim().split(/\s+/);
      if (f[0] !== "pub" || f.length < 5) continue;
      const t0 = epochMs(f[1], f[2]);
      const t1 = epochMs(f[3], f[4]);
      request.push(t1 - t0);
      first = Math.min(first, t0);
      last = Math.max(last, t1);
    }
    const publishSpan = (last - first) / 1000;
    const publishesPerSecond = publishSpan > 0 ? request.length / publishSpan : 0;
    const timed = sink.timed();
    const expected = request.length * perPresentity;
    const delivered = timed.latencies.length;
    const notifiesPerSecond = timed.spanSeconds > 0 ? delivered / timed.spanSeconds : 0;
    const sinkDrops = udpDrops(process.pid) ?? 0;
    const result: StepResult = {
      workload: "fanout",
      target: rate,
      achieved: publishesPerSecond,
      calls: FANOUT_PRESENTITIES * (loops + 1),
      successful: request.length,
      failed: sipp.failed,
      retransmissions: sipp.retransmissions,
      request: spread(request),
      call: spread([]),
      ...cpuShares({ from: first, to: last }, usage, sipp.cpu, machine, self),
      nodeRssMiB: rss,
      nodeUdpDrops: usage.drops,
      sippUdpDrops: sipp.udpDrops,
      nodeCounters: counters,
      errors: sipp.errors,
      failures: sipp.failures,
      // Held: every PUBLISH answered, every NOTIFY delivered, and both at 95% of the rate asked.
      held:
        sipp.failed === 0 &&
        delivered >= expected &&
        publishesPerSecond >= 0.95 * rate &&
        notifiesPerSecond >= 0.95 * rate * perPresentity,
      load,
      fanout: {
        watchers: FANOUT_WATCHERS,
        presentities: FANOUT_PRESENTITIES,
        publishes: request.length,
        publishesPerSecond,
        expected,
        delivered,
        notifiesPerSecond,
        latency: spread(timed.latencies),
        notifyRetransmissions: sink.counts.retransmitted,
        sinkUdpDrops: sinkDrops,
        sink: { ...sink.counts },
      },
      nodeStderr: node.stderr(),
      ...early,
    };
    // The sink is still open: the node ends its subscriptions with final NOTIFYs as it stops.
    const profile = await stopNode(node, profileDir);
    return { ...result, ...(profile ? { profile } : {}) };
  } finally {
    await stop(node.child, 10_000);
    await sink.close();
  }
}
