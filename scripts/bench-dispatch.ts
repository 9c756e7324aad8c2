// scripts: the dispatch benchmark (npm run bench:dispatch) — new-subscription rate through the primary
// (redirect and proxy) on clusters of its own, and the time a pool server takes to be promoted.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  type ArrivalStep,
  DISPATCH_MODES,
  type DispatchContext,
  type DispatchMode,
  runArrivalStep,
} from "./bench/dispatch/arrival.js";
import { NATS_SERVER } from "./bench/dispatch/nats.js";
import {
  type PromotionOptions,
  type PromotionRun,
  runPromotion,
} from "./bench/dispatch/promotion.js";
import { codeState } from "./bench/machine.js";
import { killAllNow, snapshotNode, stopAll } from "./bench/processes.js";
import { summariseProfile } from "./bench/profile.js";
import { SIPP } from "./bench/sipp.js";
import { median } from "./bench/stats.js";

const HELP = `npm run bench:dispatch -- [options]

Part "dispatch": new watchers per second through the primary. For each --dispatch mode and rate, a
fresh cluster (nats-server, primary p, servers s1 and s2, separate processes on free ports of
127.0.0.1, max-load so high that nothing is promoted) takes SIPp watchers at that rate: SUBSCRIBE to
the primary → 302 (followed) or 200 → 200 → first NOTIFY → 200. A sweep stops at the first rate not
held (a failed call, or under 95% of the rate asked).
Part "promotion": primary p, server s1, pool node q1; presentities published first (PIDF of
--pidf-bytes each), then watchers until p and s1 are above --max-load; times the supervisor's
"promote" → "promoted" decisions and counts the presentities moved and their NOTIFY batches.

  --parts <list>         dispatch,promotion (default: both)
  --modes <list>         redirect,proxy (default: both)
  --rates <list>         new watchers per second (default: 250,500,1000,1500,2000)
  --duration <s>         seconds of arrivals per rate (default: 10)
  --warmup <n>           watchers at 100/s before each step, not counted (default: 200)
  --continue             do not stop a sweep at the first rate not held
  --repeat <n>           promotion runs, each on a fresh cluster (default: 3)
  --presentities <n>     presentities published before a promotion (default: 10000)
  --pidf-bytes <n>       size of each published PIDF document (default: 1024)
  --publish-concurrency <n>  PUBLISHes in flight at most (default: 64)
  --max-load <level>     max-load of the promotion cluster (default: 20, i.e. over 200 watchers)
  --watcher-rate <n>     watchers per second that push the load over max-load (default: 200)
  --sync-batch <n>       presentities per NOTIFY batch of the promotion (default: the node's 200)
  --wait-load <x>        before each step and promotion run, wait (up to 10 min) until the
                         1-min load average is below x (the machine is shared)
  --nats-max-payload <bytes>  nats-server's max_payload (default: its own, 1 MB)
  --quick                about one minute: 3 s steps at 250,1000/s after 100 warm-up watchers,
                         one promotion of 2,000 presentities
  --profile              one more step per mode with the primary under node --cpu-prof, and its
                         self time by function and by file
  --profile-rate <n>     the rate of that step (default: 1000)
  --json <file>          also write every figure as JSON
  --keep                 keep the scratch directory (SIPp logs, nats-server stores)
  -h, --help`;

const PARTS = ["dispatch", "promotion"] as const;
type Part = (typeof PARTS)[number];

interface Options {
  parts: Part[];
  modes: DispatchMode[];
  rates: number[];
  duration: number;
  warmup: number;
  keepGoing: boolean;
  repeat: number;
  promotion: PromotionOptions;
  profile: boolean;
  profileRate: number;
  natsMaxPayload: number | undefined;
  waitLoad: number | undefined;
  json: string | undefined;
  keep: boolean;
}

function numbers(text: string, flag: string): number[] {
  const list = text.split(",").map((t) => Number(t.trim()));
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n <= 0)) {
    throw new Error(`${flag} wants positive numbers separated by commas, got "${text}"`);
  }
  return list;
}

function one(text: string | undefined, fallback: string, flag: string): number {
  return numbers(text ?? fallback, flag)[0] ?? Number(fallback);
}

function listOf<T extends string>(text: string, known: readonly T[], flag: string): T[] {
  const list = text.split(",").map((t) => t.trim());
  for (const item of list) {
    if (!(known as readonly string[]).includes(item)) {
      throw new Error(`${flag}: unknown "${item}" (known: ${known.join(", ")})`);
    }
  }
  return list as T[];
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      parts: { type: "string" },
      modes: { type: "string" },
      rates: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      continue: { type: "boolean", default: false },
      repeat: { type: "string" },
      presentities: { type: "string" },
      "pidf-bytes": { type: "string" },
      "publish-concurrency": { type: "string" },
      "max-load": { type: "string" },
      "watcher-rate": { type: "string" },
      "sync-batch": { type: "string" },
      quick: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "nats-max-payload": { type: "string" },
      "wait-load": { type: "string" },
      "profile-rate": { type: "string" },
      json: { type: "string" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick === true;
  return {
    parts: listOf(values.parts ?? PARTS.join(","), PARTS, "--parts"),
    modes: listOf(values.modes ?? DISPATCH_MODES.join(","), DISPATCH_MODES, "--modes"),
    rates: numbers(values.rates ?? (quick ? "250,1000" : "250,500,1000,1500,2000"), "--rates"),
    duration: one(values.duration, quick ? "3" : "10", "--duration"),
    warmup:
      values.warmup === "0" ? 0 : Math.round(one(values.warmup, quick ? "100" : "200", "--warmup")),
    keepGoing: values.continue === true,
    repeat: Math.round(one(values.repeat, quick ? "1" : "3", "--repeat")),
    promotion: {
      presentities: Math.round(
        one(values.presentities, quick ? "2000" : "10000", "--presentities"),
      ),
      bodyBytes: Math.round(one(values["pidf-bytes"], "1024", "--pidf-bytes")),
      concurrency: Math.round(one(values["publish-concurrency"], "64", "--publish-concurrency")),
      maxLoad: one(values["max-load"], "20", "--max-load"),
      watcherRate: one(values["watcher-rate"], "200", "--watcher-rate"),
      // Arrivals go on for about 4 s after the threshold: through the promotion and past it.
      extraWatchers: Math.round(4 * one(values["watcher-rate"], "200", "--watcher-rate")),
      syncBatch: Math.round(one(values["sync-batch"], "200", "--sync-batch")),
      timeoutMs: 120_000,
    },
    profile: values.profile === true,
    profileRate: one(values["profile-rate"], "1000", "--profile-rate"),
    natsMaxPayload: values["nats-max-payload"]
      ? one(values["nats-max-payload"], "1048576", "--nats-max-payload")
      : undefined,
    waitLoad: values["wait-load"] ? one(values["wait-load"], "1.5", "--wait-load") : undefined,
    json: values.json,
    keep: values.keep === true,
  };
}

// ---- printing -----------------------------------------------------------------------------------

function ms(value: number | undefined): string {
  if (value === undefined) return "-";
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

function pct(cores: number): string {
  return `${Math.round(cores * 100)}%`;
}

function pad(cells: Array<string | number>, widths: readonly number[]): string {
  return cells.map((c, i) => String(c).padStart(widths[i] ?? 8)).join(" ");
}

const STEP_WIDTHS = [6, 8, 6, 6, 7, 15, 15, 5, 5, 14, 5, 5, 5, 5, 6, 6, 8, 4, 4];
const STEP_HEAD = [
  "rate",
  "calls/s",
  "ok",
  "failed",
  "retrans",
  "NOTIFY p50/p99",
  "answer p50/p99",
  "early",
  "redir",
  "p/s1/s2",
  "p cpu",
  "s cpu",
  "nats",
  "sipp",
  "p ms/w",
  "all ms/w",
  "drops p/s",
  "held",
  "load",
];

/** CPU milliseconds per new watcher, from cores busy and watchers per second. */
function perWatcher(cores: number, rate: number): string {
  return rate > 0 ? ((cores * 1000) / rate).toFixed(2) : "-";
}

function stepRow(step: ArrivalStep): string {
  const share = ["p", "s1", "s2"].map((id) => step.servedBy[id] ?? 0).join("/");
  const cluster = step.cpu.primary + step.cpu.servers + step.cpu.nats;
  return pad(
    [
      step.target,
      step.achieved.toFixed(0),
      step.successful,
      step.failed,
      step.retransmissions,
      `${ms(step.firstNotify.p50)}/${ms(step.firstNotify.p99)}`,
      `${ms(step.answer.p50)}/${ms(step.answer.p99)}`,
      step.earlyNotifies,
      step.redirected,
      share,
      pct(step.cpu.primary),
      pct(step.cpu.servers),
      pct(step.cpu.nats),
      pct(step.cpu.sipp),
      perWatcher(step.cpu.primary, step.achieved),
      perWatcher(cluster, step.achieved),
      `${step.primaryUdpDrops}/${step.serverUdpDrops}`,
      step.held ? "yes" : "NO",
      step.load.toFixed(1),
    ],
    STEP_WIDTHS,
  );
}

function diagnosis(step: ArrivalStep): string {
  const parts: string[] = [];
  if (step.achieved < 0.95 * step.target) {
    parts.push(`${Math.round((100 * step.achieved) / step.target)}% of the rate asked`);
  }
  const failures = Object.entries(step.failures).map(([k, v]) => `${k}=${v}`);
  if (failures.length > 0) parts.push(`SIPp: ${failures.join(" ")}`);
  for (const e of step.errors.slice(0, 2)) parts.push(`${e.count}× ${e.reason}`);
  for (const exit of step.nodeExits) parts.push(`node exited: ${exit}`);
  for (const line of step.nodeStderr.slice(0, 2)) parts.push(line);
  return parts.join("; ");
}

function promotionRow(run: PromotionRun): string {
  const before = Object.entries(run.publicationsBefore)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, n]) => `${id} ${n}`)
    .join(", ");
  const loads = run.promote
    ? Object.entries(run.promote.loads)
        .map(([id, l]) => `${id} ${l}`)
        .join(", ")
    : "-";
  const holds = run.promotedHolds
    ? `${run.promotedHolds.presentities} presentities, ${run.promotedHolds.publications} publications, ${run.promotedHolds.subscriptions} watchers`
    : "-";
  return [
    `  run ${run.run}: published ${run.publish.ok}/${run.publish.ok + run.publish.failed} in ${run.publish.seconds.toFixed(1)} s ` +
      `(${(run.publish.ok / Math.max(run.publish.seconds, 0.001)).toFixed(0)}/s, ${run.publish.retried} retried; homes: ${before})`,
    `    watchers ${run.watchers.successful}/${run.watchers.calls} ok, ${run.watchers.failed} failed; loads at "promote": ${loads}`,
    `    promote ${run.promote?.at ?? "-"} → promoted ${run.promoted?.at ?? "-"}: ${ms(run.promotionMs)} ms ` +
      `(q1 had imported the data after ${ms(run.importedMs)} ms: ${run.delivered?.presentities ?? "-"} presentities in ` +
      `${run.delivered?.batches ?? "-"} NOTIFY batches; about ${run.expectedShare} expected)`,
    `    q1 then holds ${holds}; ${run.watchers.onPromoted} of the watchers landed on q1; load ${run.load.toFixed(1)}`,
    // A node that exited is the reason the wait ended: said once, by nodeExits.
    ...(run.error && run.nodeExits.length === 0 ? [`    ↳ ${run.error.split("\n")[0]}`] : []),
    ...run.nodeExits.map((e) => `    ↳ node exited: ${e}`),
    ...run.warnings.slice(0, 4).map((w) => `    ↳ ${w}`),
  ].join("\n");
}

function spreadOf(values: readonly number[]): string {
  if (values.length === 0) return "-";
  const m = median(values);
  return `median ${ms(m)} (min ${ms(Math.min(...values))}, max ${ms(Math.max(...values))}, n=${values.length})`;
}

function printProfile(step: ArrivalStep, nodeRoot: string): void {
  console.log(stepRow(step));
  if (!step.profile) {
    console.log("  the primary wrote no .cpuprofile (did it exit cleanly?)");
    return;
  }
  const summary = summariseProfile(step.profile, nodeRoot);
  console.log(
    `  primary: ${(summary.busyMs / 1000).toFixed(1)} s busy of ${(summary.totalMs / 1000).toFixed(1)} s profiled; ` +
      "self time by function (share of busy time):",
  );
  for (const f of summary.functions.slice(0, 15)) {
    const where = f.file ? `${f.file}:${f.line}` : "";
    console.log(
      `  ${f.ms.toFixed(0).padStart(7)} ms ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.name.padEnd(34)} ${where}`,
    );
  }
  console.log("  self time by file:");
  for (const f of summary.files.slice(0, 12)) {
    console.log(
      `  ${f.ms.toFixed(0).padStart(7)} ms ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.file}`,
    );
  }
}

// ---- the run ------------------------------------------------------------------------------------

function machine(): string {
  const list = cpus();
  let sipp: string | undefined;
  try {
    sipp = /SIPp v[\w.-]*\w/.exec(execFileSync(SIPP, ["-v"], { encoding: "utf8" }))?.[0];
  } catch (error) {
    // sipp -v exits 99 after printing its version.
    sipp = /SIPp v[\w.-]*\w/.exec((error as { stdout?: string }).stdout ?? "")?.[0];
  }
  let nats: string | undefined;
  try {
    nats = execFileSync(NATS_SERVER, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    nats = undefined;
  }
  return `${list.length} × ${list[0]?.model.trim() ?? "cpu"}, Node ${process.version}, ${sipp ?? "SIPp ?"}, ${nats ?? "nats-server ?"}`;
}

function loads(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

/** Waits until the 1-min load average is below `max` (at most 10 minutes); says so if it waited. */
async function calm(max: number | undefined): Promise<void> {
  if (max === undefined) return;
  const started = Date.now();
  while ((loadavg()[0] ?? 0) >= max && Date.now() - started < 600_000) {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
  }
  const waited = Math.round((Date.now() - started) / 1000);
  if (waited > 0) {
    console.log(
      `       (waited ${waited} s for the load average to fall below ${max}: ${loads()})`,
    );
  }
}

async function sweep(
  ctx: DispatchContext,
  mode: DispatchMode,
  options: Options,
): Promise<ArrivalStep[]> {
  const steps: ArrivalStep[] = [];
  for (const rate of options.rates) {
    await calm(options.waitLoad);
    const step = await runArrivalStep(ctx, mode, rate);
    steps.push(step);
    console.log(stepRow(step));
    if (!step.held) {
      const why = diagnosis(step);
      if (why) console.log(`       ↳ ${why}`);
      if (!options.keepGoing) break;
    }
  }
  return steps;
}

/** The highest rate of the unbroken run of steps that pass `ok` from the lowest rate up. */
function highestHeld(steps: readonly ArrivalStep[], ok: (step: ArrivalStep) => boolean): number {
  let best = 0;
  for (const step of steps) {
    if (!ok(step)) break;
    best = step.target;
  }
  return best;
}

async function main(): Promise<number> {
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`bench:dispatch: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (!options) {
    console.log(HELP);
    return 0;
  }
  // dist/scripts/bench-dispatch.js → the project root two levels up.
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  if (!existsSync(join(root, "dist", "bootstrap", "cli.js"))) {
    console.error("bench:dispatch: dist/bootstrap/cli.js is missing: run `npm run build` first");
    return 2;
  }
  if (!existsSync(SIPP)) {
    console.error(`bench:dispatch: ${SIPP} is missing (Debian: apt-get install sip-tester)`);
    return 2;
  }
  const scratch = mkdtempSync(join(tmpdir(), "bench-dispatch-"));
  const nodeRoot = snapshotNode(root, join(scratch, "node"));
  const ctx: DispatchContext = {
    cli: join(nodeRoot, "dist", "bootstrap", "cli.js"),
    scenarioDir: join(root, "scripts", "bench", "dispatch"),
    scratch,
    duration: options.duration,
    warmup: options.warmup,
    natsMaxPayload: options.natsMaxPayload,
  };

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\nbench:dispatch: ${signal}: stopping SIPp, the nodes and nats-server`);
    void stopAll(2_000).then(() => {
      if (!options?.keep) rmSync(scratch, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", killAllNow);

  const startedAt = new Date();
  console.log(`bench:dispatch ${startedAt.toISOString()}`);
  console.log(`machine: ${machine()}`);
  console.log(`node under test: ${codeState(root)}, dist/ as built when this run began`);
  console.log(`load average at start: ${loads()}`);
  if (options.natsMaxPayload !== undefined) {
    console.log(`nats-server max_payload: ${options.natsMaxPayload} bytes (its default is 1 MB)`);
  }

  const sweeps: Array<{
    mode: DispatchMode;
    steps: ArrivalStep[];
    highestHeld: number;
    highestClean: number;
  }> = [];
  const promotions: PromotionRun[] = [];
  const profiles: ArrivalStep[] = [];
  try {
    if (options.parts.includes("dispatch")) {
      console.log(
        `\n== New watchers through the primary: a fresh cluster per step (nats-server, p, s1, s2), ` +
          `${options.warmup} warm-up watchers, then ${options.duration} s of arrivals, UDP on 127.0.0.1 ==\n` +
          "calls/s = successful calls over the span of their starts; NOTIFY = first SUBSCRIBE sent → " +
          "first NOTIFY received, answer = first SUBSCRIBE → the primary's 302 or 200 (SIPp " +
          "gettimeofday per call, ms, nearest-rank p50/p99); early = first NOTIFYs that came before " +
          "the 200; redir = calls that followed a 302; p/s1/s2 = where the subscriptions landed; " +
          "cpu = while calls started (100% = one core; s = both servers); ms/w = CPU ms per new " +
          "watcher of the primary, and of primary + servers + nats-server; drops = datagrams the " +
          "kernel dropped at the UDP sockets of the primary / the servers; load = 1-min load " +
          "average at the step's start",
      );
      for (const mode of options.modes) {
        console.log(`\n-- --dispatch ${mode} --`);
        console.log(pad(STEP_HEAD, STEP_WIDTHS));
        const steps = await sweep(ctx, mode, options);
        sweeps.push({
          mode,
          steps,
          highestHeld: highestHeld(steps, (step) => step.held),
          highestClean: highestHeld(steps, (step) => step.held && step.retransmissions === 0),
        });
      }
    }
    if (options.profile) {
      for (const mode of options.modes) {
        console.log(
          `\n== CPU profile of the primary: --dispatch ${mode} at ${options.profileRate}/s for ${options.duration} s ==`,
        );
        console.log(pad(STEP_HEAD, STEP_WIDTHS));
        await calm(options.waitLoad);
        const dir = mkdtempSync(join(scratch, `profile-${mode}-`));
        const step = await runArrivalStep(ctx, mode, options.profileRate, dir);
        profiles.push(step);
        printProfile(step, nodeRoot);
      }
    }
    if (options.parts.includes("promotion")) {
      const p = options.promotion;
      console.log(
        `\n== Promotion: p (primary) + s1 (server) + q1 (pool), --max-load ${p.maxLoad}, ` +
          `${p.presentities} presentities of ${p.bodyBytes} B PIDF, then ` +
          `${2 * (Math.floor(p.maxLoad * 10) + 1) + p.extraWatchers} watchers at ${p.watcherRate}/s; ` +
          `${options.repeat} run(s), a fresh cluster each ==`,
      );
      for (let run = 1; run <= options.repeat; run++) {
        try {
          await calm(options.waitLoad);
          const result = await runPromotion(ctx, p, run);
          promotions.push(result);
          console.log(promotionRow(result));
        } catch (error) {
          console.log(
            `  run ${run} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
    }
  } finally {
    await stopAll(2_000);
    if (!options.keep) rmSync(scratch, { recursive: true, force: true });
    else console.log(`\nscratch directory kept: ${scratch}`);
  }

  console.log("\n== Summary ==");
  for (const s of sweeps) {
    console.log(
      `--dispatch ${s.mode.padEnd(8)} highest rate held (no failed call, ≥95% of the rate): ` +
        `${s.highestHeld} new watchers/s; without a SIPp retransmission: ${s.highestClean}`,
    );
  }
  if (promotions.length > 0) {
    const num = (f: (r: PromotionRun) => number | undefined): number[] =>
      promotions.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v));
    const lines: Array<[string, number[]]> = [
      ["promote → promoted, ms", num((r) => r.promotionMs)],
      ["promote → q1 imported the data, ms", num((r) => r.importedMs)],
      ["presentities moved by NOTIFY", num((r) => r.delivered?.presentities)],
      ["NOTIFY batches", num((r) => r.delivered?.batches)],
      ["presentities on q1 afterwards", num((r) => r.promotedHolds?.presentities)],
      ["PUBLISH/s while setting up", num((r) => r.publish.ok / Math.max(r.publish.seconds, 0.001))],
    ];
    for (const [label, values] of lines) console.log(`${label.padEnd(36)} ${spreadOf(values)}`);
  }
  console.log(`\nload average at end: ${loads()}`);
  if (options.json) {
    writeFileSync(
      options.json,
      `${JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          machine: machine(),
          code: codeState(root),
          options,
          sweeps,
          promotions,
          profiles,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`figures written to ${options.json}`);
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(
      `bench:dispatch: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exitCode = 1;
  },
);
