// scripts/bench/paper: `presence-cluster bench paper` — the paper's experiment (figs. 6–9) against a single
// server ("existing method") and a cluster (primary + pool, promotion on), users growing point by point.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { SupervisorView } from "../../../actors/supervisor/supervisor.js";
import type { Figure, PaperOptions } from "../../../bootstrap/bench-paper.js";
import {
  type Cluster,
  decisionsOf,
  exitOf,
  type MemberSpec,
  startCluster,
  stopCluster,
  supervisorOf,
  waitUntil,
} from "../dispatch/cluster.js";
import { killAllNow, ProcessMeter, stopAll } from "../processes.js";
import { cpuQuota } from "./cpu-quota.js";
import { LoadGenerator, type Outcome, type Sample } from "./loadgen.js";
import { Progress } from "./progress.js";
import { type Mode, type PointResult, writeReports } from "./report.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "bootstrap", "cli.js");
/** Long enough that nothing is refreshed within a run. */
const EXPIRES = 3600;
/** How long a point may take to settle (every user's subscriptions open, no promotion under way). */
const SETTLE_TIMEOUT_MS = 30_000;
/** After the window: how long answers to requests sent in it may still come. */
const GRACE_MS = 5_000;
/** How long the primary's admin port may take to answer at the end of a point. */
const VIEW_TIMEOUT_MS = 10_000;

function members(mode: Mode, pool: number): MemberSpec[] {
  const primary: MemberSpec = { id: "primary", role: "primary" };
  if (mode === "single") return [primary];
  return [
    primary,
    ...Array.from({ length: pool }, (_, i): MemberSpec => ({ id: `pool${i + 1}`, role: "pool" })),
  ];
}

function within(values: readonly number[], from: number, to: number): number {
  return values.reduce((n, at) => (at >= from && at < to ? n + 1 : n), 0);
}

function samplesWithin(samples: readonly Sample[], from: number, to: number): number[] {
  return samples.filter((s) => s.at >= from && s.at < to).map((s) => s.ms);
}

/** Adds users at `joinRate` per second until there are `target`; resolves when each has logged in. */
async function grow(gen: LoadGenerator, target: number, joinRate: number): Promise<void> {
  const joins: Array<Promise<void>> = [];
  while (gen.userCount < target) {
    joins.push(gen.join());
    await delay(1000 / joinRate);
  }
  await Promise.all(joins);
}

interface Topology {
  cluster: Cluster;
  quota: string;
  /** The supervisor's view last read (an overloaded primary may not answer at the end of a point). */
  lastView: SupervisorView | undefined;
}

async function promotionsUnderWay(topology: Topology): Promise<number> {
  const view = await supervisorOf(topology.cluster.primary);
  topology.lastView = view;
  return decisionsOf(view, "promote").length - decisionsOf(view, "promoted").length;
}

async function measurePoint(
  figure: Figure,
  mode: Mode,
  users: number,
  gen: LoadGenerator,
  topology: Topology,
  options: PaperOptions,
): Promise<PointResult> {
  const { cluster } = topology;
  await grow(gen, users, options.joinRate);
  let settled = true;
  await waitUntil(
    async () => {
      const open = gen.openSubscriptions() >= users * figure.resources;
      return open && (await promotionsUnderWay(topology)) === 0 ? true : undefined;
    },
    SETTLE_TIMEOUT_MS,
    () => "",
    200,
  ).catch(() => {
    settled = false;
  });
  const meters = cluster.members.map((m) => ({ id: m.id, meter: new ProcessMeter(m.pid) }));
  const startedAt = Date.now();
  const from = gen.now();
  await delay(options.durationS * 1000);
  const to = gen.now();
  const endedAt = Date.now();
  const cpu = meters.map(({ id, meter }) => ({
    id,
    cores: meter.finish().cpu.cores(startedAt, endedAt),
  }));
  await waitUntil(
    async () => (gen.pendingSince(from) === 0 ? true : undefined),
    GRACE_MS,
    () => "",
    100,
  ).catch(() => {});
  // An overloaded primary answers its admin port late, or not in time: then the last view read counts.
  const view = await waitUntil(
    () => supervisorOf(cluster.primary),
    VIEW_TIMEOUT_MS,
    () => "",
    500,
  ).catch(() => topology.lastView);
  const died = cluster.members.map(exitOf).filter((e): e is string => e !== undefined);
  if (died.length > 0) throw new Error(`a node exited during the run: ${died.join(", ")}`);
  return summarise(figure, mode, users, gen.outcome, from, to, {
    settled,
    serversActive: view?.activeServers ?? 0,
    promotions: view?.counters.promotions ?? 0,
    cpu,
    placement: [...gen.placement().values()].sort((a, b) => b - a),
    quota: topology.quota,
  });
}

function summarise(
  figure: Figure,
  mode: Mode,
  users: number,
  outcome: Outcome,
  from: number,
  to: number,
  facts: Pick<
    PointResult,
    "settled" | "serversActive" | "promotions" | "cpu" | "placement" | "quota"
  >,
): PointResult {
  const subscription = figure.measure === "subscription";
  const times = samplesWithin(
    subscription ? outcome.subscriptions : outcome.notifications,
    from,
    to,
  );
  const begun = subscription
    ? within(outcome.subscribeSent, from, to)
    : within(outcome.publishes, from, to);
  const failed = subscription
    ? within(outcome.subscribeFailures, from, to)
    : within(outcome.publishFailures, from, to);
  return {
    figure: figure.id,
    measure: figure.measure,
    mode,
    users,
    resources: figure.resources,
    pidfKb: Math.round(figure.pidfBytes / 1024),
    times,
    begun,
    failed,
    ...facts,
  };
}

async function runTopology(
  figure: Figure,
  mode: Mode,
  options: PaperOptions,
  scratch: string,
  progress: Progress,
): Promise<PointResult[]> {
  const quota = cpuQuota();
  const dir = mkdtempSync(join(scratch, `fig${figure.id}-${mode}-`));
  const cluster = await startCluster({
    cli: CLI,
    dir,
    members: members(mode, options.pool),
    options: [
      "--max-load",
      String(options.maxLoad),
      // The experiment only grows: no server goes back to the pool within it, so no cooldown
      // against oscillation is needed between two promotions either.
      "--min-load",
      "0",
      "--scale-cooldown",
      "0",
    ],
    readyTimeoutMs: 60_000,
  });
  const results: PointResult[] = [];
  let gen: LoadGenerator | undefined;
  try {
    if (options.nodeCpu !== undefined) {
      for (const m of cluster.members) quota.limit(m.pid, options.nodeCpu);
    }
    gen = await LoadGenerator.open({
      primary: { transport: "udp", address: "127.0.0.1", port: cluster.primary.sipPort },
      resources: figure.resources,
      subscribeIntervalMs: options.subscribeIntervalMs,
      updateIntervalMs: figure.updateIntervalMs,
      pidfBytes: figure.pidfBytes,
      expires: EXPIRES,
    });
    const how =
      options.nodeCpu === undefined ? "unlimited" : `${options.nodeCpu} core each, ${quota.how}`;
    const topology: Topology = { cluster, quota: how, lastView: undefined };
    for (const users of options.users) {
      progress.step(`fig. ${figure.id} ${mode}: ${users} users`);
      results.push(await measurePoint(figure, mode, users, gen, topology, options));
      progress.done(results[results.length - 1]);
    }
  } finally {
    await gen?.close();
    await stopCluster(cluster, 2_000);
    quota.release();
  }
  return results;
}

/** Runs the experiment; resolves with the exit code (0: every point measured). */
export async function runPaper(options: PaperOptions): Promise<number> {
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), "presence-bench-paper-"));
  const onSignal = (): void => {
    killAllNow();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const modes: Mode[] = ["single", "cluster"];
  const progress = new Progress(options.figures.length * modes.length * options.users.length);
  const results: PointResult[] = [];
  const started = Date.now();
  try {
    for (const figure of options.figures) {
      for (const mode of modes) {
        results.push(...(await runTopology(figure, mode, options, scratch, progress)));
      }
    }
  } finally {
    progress.stop();
    await stopAll(2_000);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    rmSync(scratch, { recursive: true, force: true });
  }
  const files = await writeReports(results, options, out, (Date.now() - started) / 1000);
  for (const file of files) console.log(`wrote ${file}`);
  return 0;
}
