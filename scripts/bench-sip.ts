// scripts: the SIP benchmark (npm run bench:sip) — drives a node of its own with SIPp at rising rates.
// Prints calls/s, failures and p50/p99 per rate and workload, the highest rate held, and optionally a CPU profile.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { codeState } from "./bench/machine.js";
import { type OtlpCounts, OtlpSink } from "./bench/otlp-sink.js";
import { killAllNow, snapshotNode, stopAll } from "./bench/processes.js";
import { summariseProfile } from "./bench/profile.js";
import { SIPP } from "./bench/sipp.js";
import { median } from "./bench/stats.js";
import {
  type BenchContext,
  runCallStep,
  runFanoutStep,
  type StepResult,
  WORKLOADS,
  type Workload,
} from "./bench/workloads.js";

const HELP = `npm run bench:sip -- [options]

Starts its own node (free ports, loopback), drives it with SIPp over UDP at rising rates, a fresh
node per step, and prints per rate: calls/s achieved, failed calls, response times p50/p99.
A sweep stops at the first rate not held (a failed call, or under 95% of the rate asked; for the
fan-out also a NOTIFY missing or NOTIFY/s under 95% of 10 × PUBLISH/s). The summary also gives the
highest clean rate: held, no request retransmitted, and a median response under 50 ms (no queue).

  --workloads <list>     watcher,publish-1k,publish-25k,fanout (default: all)
  --rates <list>         calls/s for watcher and publish calls
                         (default: 250,500,1000,1500,2000,2500,3000,4000)
  --fanout-rates <list>  PUBLISH/s in all for the fan-out, 10 NOTIFYs each
                         (default: 50,100,200,300,400,500,600,800)
  --duration <s>         seconds of load per step (default: 10)
  --repeat <n>           sweeps per workload; the summary gives medians (default: 1)
  --quick                about one minute: 3 s steps, rates 500,1500,2500, fan-out 100,300
  --continue             do not stop a sweep at the first rate not held
  --profile              CPU-profile the node in one more step near the limit (watcher calls)
  --profile-workload <w> the workload of that step (default: watcher)
  --profile-rate <n>     the rate of that step (default: the highest rate held in the sweeps,
                         else 2000 calls/s or 200 PUBLISH/s)
  --profile-tracing <t>  the tracing configuration of that step (default: off)
  --retry-noisy          run a step that was not held once more if other processes used over
                         half a core meanwhile (the second result counts)
  --max-load <x>         before each step, wait (up to 10 min) until the 1-min load average is
                         below x: others may share the machine (default: do not wait)
  --tracing <list>       tracing configurations, each a fresh node at every rate, run one after
                         another (interleaved, each sweep starting with the next configuration)
                         so that the machine's noise falls on all alike:
                         off, or a sampling ratio (1 = 100%, 0.01 = 1%) with the node exporting
                         OTLP/HTTP to a counting receiver in this process (default: off)
  --node-flags=<flags>   extra Node.js flags for the node under test (space-separated, after
                         "=" since they start with a dash), for what-if runs, e.g.
                         --node-flags="--max-semi-space-size=32 --import=/path/preload.mjs"
  --json <file>          also write every step's figures as JSON
  --keep                 keep the scratch directory (SIPp traces, bodies, profile)
  -h, --help`;

interface Options {
  workloads: Workload[];
  rates: number[];
  fanoutRates: number[];
  duration: number;
  repeat: number;
  keepGoing: boolean;
  profile: boolean;
  profileRate: number | undefined;
  profileWorkload: Workload;
  profileTracing: Tracing;
  json: string | undefined;
  keep: boolean;
  nodeFlags: string[];
  maxLoad: number | undefined;
  retryNoisy: boolean;
  /** Tracing configurations: "off", or the ratio of traces sampled. */
  tracing: Tracing[];
}

type Tracing = "off" | number;

function parseTracing(text: string): Tracing[] {
  return text.split(",").map((t) => {
    const value = t.trim();
    if (value === "off") return "off";
    const ratio = Number(value);
    if (!(ratio > 0 && ratio <= 1)) {
      throw new Error(`--tracing wants "off" or sampling ratios in (0, 1], got "${value}"`);
    }
    return ratio;
  });
}

function label(tracing: Tracing): string {
  return tracing === "off" ? "off" : `${+(tracing * 100).toPrecision(6)}%`;
}

function numbers(text: string, flag: string): number[] {
  const list = text.split(",").map((t) => Number(t.trim()));
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n <= 0)) {
    throw new Error(`${flag} wants positive numbers separated by commas, got "${text}"`);
  }
  return list;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      workloads: { type: "string" },
      rates: { type: "string" },
      "fanout-rates": { type: "string" },
      duration: { type: "string" },
      repeat: { type: "string" },
      quick: { type: "boolean", default: false },
      continue: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "profile-rate": { type: "string" },
      "profile-workload": { type: "string" },
      "profile-tracing": { type: "string" },
      json: { type: "string" },
      "node-flags": { type: "string" },
      "max-load": { type: "string" },
      "retry-noisy": { type: "boolean", default: false },
      tracing: { type: "string" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick === true;
  const workloads = (values.workloads ?? WORKLOADS.join(",")).split(",").map((w) => w.trim());
  const profileWorkload = values["profile-workload"] ?? "watcher";
  for (const w of [...workloads, profileWorkload]) {
    if (!(WORKLOADS as readonly string[]).includes(w)) {
      throw new Error(`unknown workload "${w}" (known: ${WORKLOADS.join(", ")})`);
    }
  }
  const duration = numbers(values.duration ?? (quick ? "3" : "10"), "--duration")[0] ?? 10;
  const repeat = Math.round(numbers(values.repeat ?? "1", "--repeat")[0] ?? 1);
  return {
    workloads: workloads as Workload[],
    rates: numbers(
      values.rates ?? (quick ? "500,1500,2500" : "250,500,1000,1500,2000,2500,3000,4000"),
      "--rates",
    ),
    fanoutRates: numbers(
      values["fanout-rates"] ?? (quick ? "100,300" : "50,100,200,300,400,500,600,800"),
      "--fanout-rates",
    ),
    duration,
    repeat,
    keepGoing: values.continue === true,
    profile: values.profile === true,
    profileWorkload: profileWorkload as Workload,
    profileTracing: parseTracing(values["profile-tracing"] ?? "off")[0] ?? "off",
    profileRate: values["profile-rate"]
      ? numbers(values["profile-rate"], "--profile-rate")[0]
      : undefined,
    json: values.json,
    keep: values.keep === true,
    retryNoisy: values["retry-noisy"] === true,
    maxLoad: values["max-load"] ? numbers(values["max-load"], "--max-load")[0] : undefined,
    nodeFlags: (values["node-flags"] ?? "").split(/\s+/).filter((f) => f.length > 0),
    tracing: parseTracing(values.tracing ?? "off"),
  };
}

// ---- printing -----------------------------------------------------------------------------------

const DESCRIPTIONS: Record<Workload, string> = {
  watcher:
    "watcher call: SUBSCRIBE→200, NOTIFY→200, SUBSCRIBE Expires:0→200, final NOTIFY→200 (one presentity per call)",
  "publish-1k":
    "publish call, 1 KB PIDF: PUBLISH→200 (SIP-ETag), PUBLISH SIP-If-Match Expires:0→200",
  "publish-25k":
    "publish call, 25 KB PIDF: PUBLISH→200 (SIP-ETag), PUBLISH SIP-If-Match Expires:0→200",
  fanout:
    "fan-out: 1,000 watchers on 100 presentities stay subscribed; the presentities re-PUBLISH 25 KB bodies",
};

function ms(value: number | undefined): string {
  if (value === undefined) return "-";
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

function pad(cells: Array<string | number>, widths: number[]): string {
  return cells.map((c, i) => String(c).padStart(widths[i] ?? 8)).join(" ");
}

const CALL_WIDTHS = [7, 9, 7, 6, 7, 15, 15, 6, 6, 6, 5, 6, 6];
const CALL_HEAD = [
  "rate",
  "calls/s",
  "ok",
  "failed",
  "retrans",
  "req p50/p99 ms",
  "call p50/p99 ms",
  "node",
  "sipp",
  "drops",
  "held",
  "other",
  "RSS",
];
const FANOUT_WIDTHS = [7, 8, 9, 7, 15, 15, 6, 6, 6, 5, 6, 6];
const FANOUT_HEAD = [
  "PUB/s",
  "got/s",
  "NOTIFY/s",
  "lost",
  "P→N p50/p99 ms",
  "PUB p50/p99 ms",
  "node",
  "sipp",
  "drops",
  "held",
  "other",
  "RSS",
];

function mib(value: number | undefined): string {
  return value === undefined ? "-" : `${Math.round(value)}M`;
}

function cores(value: number): string {
  return `${Math.round(value * 100)}%`;
}

function row(step: StepResult): string {
  if (step.fanout) {
    const f = step.fanout;
    return pad(
      [
        step.target,
        f.publishesPerSecond.toFixed(0),
        f.notifiesPerSecond.toFixed(0),
        Math.max(0, f.expected - f.delivered),
        `${ms(f.latency.p50)}/${ms(f.latency.p99)}`,
        `${ms(step.request.p50)}/${ms(step.request.p99)}`,
        cores(step.nodeCpu),
        cores(step.sippCpu),
        step.nodeUdpDrops,
        step.held ? "yes" : "NO",
        cores(step.otherCpu),
        mib(step.nodeRssMiB),
      ],
      FANOUT_WIDTHS,
    );
  }
  return pad(
    [
      step.target,
      step.achieved.toFixed(0),
      step.successful,
      step.failed,
      step.retransmissions,
      `${ms(step.request.p50)}/${ms(step.request.p99)}`,
      `${ms(step.call.p50)}/${ms(step.call.p99)}`,
      cores(step.nodeCpu),
      cores(step.sippCpu),
      step.nodeUdpDrops,
      step.held ? "yes" : "NO",
      cores(step.otherCpu),
      mib(step.nodeRssMiB),
    ],
    CALL_WIDTHS,
  );
}

function header(workload: Workload): string {
  return workload === "fanout" ? pad(FANOUT_HEAD, FANOUT_WIDTHS) : pad(CALL_HEAD, CALL_WIDTHS);
}

/** Why a step was not held, in one line: SIPp's failure counters, its top errors, the node's. */
function diagnosis(step: StepResult): string {
  const parts: string[] = [];
  if (step.achieved < 0.95 * step.target) {
    parts.push(`${Math.round((100 * step.achieved) / step.target)}% of the rate asked`);
  }
  const failures = Object.entries(step.failures).map(([k, v]) => `${k}=${v}`);
  if (failures.length > 0) parts.push(`SIPp: ${failures.join(" ")}`);
  for (const e of step.errors.slice(0, 2)) parts.push(`${e.count}× ${e.reason}`);
  const counters = Object.entries(step.nodeCounters)
    .filter(([k, v]) => v > 0 && k !== "notifiesSent" && k !== "subscriptions")
    .map(([k, v]) => `${k}=${v}`);
  if (counters.length > 0) parts.push(`node: ${counters.join(" ")}`);
  const wanted = step.target * ((step.fanout?.watchers ?? 0) / (step.fanout?.presentities ?? 1));
  if (step.fanout && step.fanout.notifiesPerSecond < 0.95 * wanted) {
    parts.push(
      `NOTIFYs at ${Math.round((100 * step.fanout.notifiesPerSecond) / wanted)}% of ${wanted}/s`,
    );
  }
  if (step.fanout && step.fanout.delivered < step.fanout.expected) {
    parts.push(`NOTIFYs ${step.fanout.delivered}/${step.fanout.expected} (merged or lost)`);
  }
  if (step.fanout && step.fanout.sinkUdpDrops > 0) {
    parts.push(`the benchmark's watcher dropped ${step.fanout.sinkUdpDrops} datagrams`);
  }
  if (step.nodeExited) parts.push(`the node exited during the step (${step.nodeExited})`);
  const stderr = step.nodeStderr.trim().split("\n")[0];
  if (stderr) parts.push(`node stderr: ${stderr.slice(0, 200)}`);
  return parts.join("; ");
}

// ---- the run ------------------------------------------------------------------------------------

function machine(): string {
  const list = cpus();
  const sipp = (() => {
    try {
      return /SIPp v[\w.-]*\w/.exec(execFileSync(SIPP, ["-v"], { encoding: "utf8" }))?.[0];
    } catch (error) {
      // sipp -v exits 99 after printing its version.
      const out = (error as { stdout?: string }).stdout ?? "";
      return /SIPp v[\w.-]*\w/.exec(out)?.[0];
    }
  })();
  return `${list.length} × ${list[0]?.model.trim() ?? "cpu"}, Node ${process.version}, ${sipp ?? "SIPp ?"}`;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

/** Waits until the 1-min load average is below `max` (at most 10 minutes); says so if it waited. */
async function calm(max: number | undefined): Promise<void> {
  if (max === undefined) return;
  const started = Date.now();
  while ((loadavg()[0] ?? 0) >= max && Date.now() - started < 600_000) {
    await new Promise((r) => setTimeout(r, 5_000));
  }
  const waited = Math.round((Date.now() - started) / 1000);
  if (waited > 0) {
    console.log(
      `        (waited ${waited} s for the load average to fall below ${max}: ${load()})`,
    );
  }
}

/** Other processes' CPU (in cores) above which a step that was not held is run once more. */
const NOISY = 0.5;

/** One step's figures with the tracing configuration of its node and what that node exported. */
interface TracedStep extends StepResult {
  tracing: Tracing;
  /** What the receiver took from this step's node (sampled configurations only). */
  otlp?: OtlpCounts & { dropped: number };
}

/** The node's environment for a configuration: the standard OTEL_* variables, our receiver. */
function tracingEnv(tracing: Tracing, sink: OtlpSink | undefined): Record<string, string> {
  if (tracing === "off" || !sink) return {};
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: String(tracing),
  };
}

/** Spans the node's BatchSpanProcessor dropped (queue full), as its warnings on stderr say. */
function droppedSpans(stderr: string): number {
  let dropped = 0;
  for (const m of stderr.matchAll(/Dropped (\d+) spans/g)) dropped += Number(m[1]);
  return dropped;
}

/** Whether the output compares tracing configurations (then rows name theirs and count spans). */
function comparesTracing(options: Options): boolean {
  const profiled = options.profile && options.profileTracing !== "off";
  return options.tracing.length > 1 || options.tracing[0] !== "off" || profiled;
}

function tracedHeader(workload: Workload, options: Options): string {
  if (!comparesTracing(options)) return header(workload);
  return `${"trace".padStart(6)} ${header(workload)} ${"spans/call".padStart(10)}`;
}

function tracedRow(step: TracedStep, options: Options): string {
  if (!comparesTracing(options)) return row(step);
  const spans = step.otlp ? (step.otlp.spans / Math.max(1, step.successful)).toFixed(1) : "-";
  return `${label(step.tracing).padStart(6)} ${row(step)} ${spans.padStart(10)}`;
}

async function runStep(
  ctx: BenchContext,
  workload: Workload,
  rate: number,
  tracing: Tracing,
  sink: OtlpSink | undefined,
  profileDir?: string,
): Promise<TracedStep> {
  const traced = { ...ctx, nodeEnv: tracingEnv(tracing, sink) };
  const before = sink?.snapshot();
  const step =
    workload === "fanout"
      ? await runFanoutStep(traced, rate, profileDir)
      : await runCallStep(traced, workload, rate, profileDir);
  if (tracing === "off" || !sink || !before) return { ...step, tracing };
  return {
    ...step,
    tracing,
    otlp: { ...sink.since(before), dropped: droppedSpans(step.nodeStderr) },
  };
}

/**
 * One sweep per tracing configuration, interleaved: at each rate every configuration still going
 * runs one step (a fresh node each), so that others' load on the machine falls on all of them.
 * Sweep `round` (from 0) starts each rate with configuration `round` and goes round from there,
 * so that over as many sweeps as configurations each runs first, second, … equally often.
 */
async function sweep(
  ctx: BenchContext,
  workload: Workload,
  rates: number[],
  options: Options,
  sink: OtlpSink | undefined,
  round: number,
): Promise<TracedStep[][]> {
  const steps: TracedStep[][] = options.tracing.map(() => []);
  const going = new Set(options.tracing.keys());
  const run = async (rate: number, tracing: Tracing): Promise<TracedStep> => {
    await calm(options.maxLoad);
    const step = await runStep(ctx, workload, rate, tracing, sink);
    console.log(tracedRow(step, options));
    const why = step.held ? "" : diagnosis(step);
    if (why) console.log(`        ↳ ${why}`);
    if (step.otlp && step.otlp.spans === 0) {
      console.log("        ↳ the receiver got no spans from this node: not a tracing measurement");
    }
    if (step.otlp && step.otlp.dropped > 0) {
      console.log(`        ↳ the node dropped ${step.otlp.dropped} spans (export queue full)`);
    }
    return step;
  };
  const count = options.tracing.length;
  const order = options.tracing.map((_, k) => (k + round) % count);
  for (const rate of rates) {
    for (const i of order) {
      const tracing = options.tracing[i];
      if (tracing === undefined || !going.has(i)) continue;
      let step = await run(rate, tracing);
      if (!step.held && options.retryNoisy && step.otherCpu > NOISY) {
        console.log(
          `        (other processes used ${cores(step.otherCpu)} CPU meanwhile: once more)`,
        );
        step = await run(rate, tracing);
      }
      steps[i]?.push(step);
      if (!step.held && !options.keepGoing) going.delete(i);
    }
    if (going.size === 0) break;
  }
  return steps;
}

/** Below this median response (PUBLISH→NOTIFY for the fan-out) requests are not queueing. */
const CLEAN_P50_MS = 50;

/** Held, no request retransmitted, and a median response that shows no queue building up. */
function clean(step: StepResult): boolean {
  const p50 = step.fanout ? step.fanout.latency.p50 : step.request.p50;
  return step.held && step.retransmissions === 0 && p50 !== undefined && p50 < CLEAN_P50_MS;
}

/** The highest rate of the sweep's unbroken run of steps that pass `ok` from the lowest rate up. */
function highest(steps: readonly StepResult[], ok: (step: StepResult) => boolean): number {
  let best = 0;
  for (const step of steps) {
    if (!ok(step)) break;
    best = step.target;
  }
  return best;
}

interface WorkloadReport {
  workload: Workload;
  tracing: Tracing;
  runs: TracedStep[][];
  highestHeld: number[];
  /** Clean: held, not one request retransmitted, and a median response under 50 ms. */
  highestClean: number[];
}

function printSummary(reports: WorkloadReport[], options: Options): void {
  console.log(
    `\n== Summary (${options.repeat} sweep${options.repeat > 1 ? "s" : ""}, medians per rate) ==`,
  );
  for (const report of reports) {
    const unit = report.workload === "fanout" ? "PUBLISH/s" : "calls/s";
    const held = median(report.highestHeld) ?? 0;
    const name = comparesTracing(options)
      ? `${report.workload}, tracing ${label(report.tracing)}`
      : report.workload;
    let line = `${name.padEnd(12)} highest rate held: ${held} ${unit}`;
    if (report.workload === "fanout") {
      const best = report.runs
        .flat()
        .filter((s) => s.held && s.target === held)
        .map((s) => s.fanout?.notifiesPerSecond ?? 0);
      line += ` (${Math.round(median(best) ?? 0)} NOTIFY/s of 25 KB)`;
    }
    if (report.runs.length > 1) line += ` [runs: ${report.highestHeld.join(", ")}]`;
    line += `; clean: ${median(report.highestClean) ?? 0}`;
    if (report.runs.length > 1) line += ` [runs: ${report.highestClean.join(", ")}]`;
    console.log(line);
    if (report.runs.length < 2) continue;
    const rates = [...new Set(report.runs.flat().map((s) => s.target))].sort((a, b) => a - b);
    for (const rate of rates) {
      const at = report.runs.flat().filter((s) => s.target === rate);
      const m = (f: (s: StepResult) => number | undefined): string =>
        ms(median(at.map(f).filter((v): v is number => v !== undefined)));
      const heldCount = at.filter((s) => s.held).length;
      if (report.workload === "fanout") {
        console.log(
          `  ${String(rate).padStart(5)} PUB/s: ${m((s) => s.fanout?.notifiesPerSecond)} NOTIFY/s, ` +
            `P→N p50 ${m((s) => s.fanout?.latency.p50)} p99 ${m((s) => s.fanout?.latency.p99)} ms, ` +
            `held ${heldCount}/${at.length}`,
        );
      } else {
        console.log(
          `  ${String(rate).padStart(5)}/s: ${m((s) => s.achieved)} calls/s, failed ${at.map((s) => s.failed).join("/")}, ` +
            `req p50 ${m((s) => s.request.p50)} p99 ${m((s) => s.request.p99)} ms, ` +
            `call p50 ${m((s) => s.call.p50)} p99 ${m((s) => s.call.p99)} ms, ` +
            `node CPU ${cores(median(at.map((s) => s.nodeCpu)) ?? 0)}, held ${heldCount}/${at.length}`,
        );
      }
    }
  }
}

/**
 * Node CPU per call in µs (per PUBLISH for the fan-out): CPU in cores over calls per second; all
 * threads, or the main thread (the event loop) alone.
 */
function cpuPerCall(step: StepResult, main = false): number | undefined {
  const cores = main ? step.nodeMainCpu : step.nodeCpu;
  return step.achieved > 0 ? (1e6 * cores) / step.achieved : undefined;
}

function ratio(value: number | undefined, base: number | undefined): string {
  return value !== undefined && base ? (value / base).toFixed(2) : "-";
}

/**
 * The cost of tracing per workload, against the configuration "off": the highest rates held and
 * clean, and at each rate (held steps only, medians over the sweeps) node CPU per call, p50/p99.
 */
function printTracingCost(reports: WorkloadReport[], options: Options): void {
  for (const workload of options.workloads) {
    const mine = reports.filter((r) => r.workload === workload);
    const base = mine.find((r) => r.tracing === "off");
    if (!base || mine.length < 2) continue;
    console.log(
      `\n== Cost of tracing: ${workload} (medians of ${options.repeat}; ÷off = ratio) ==`,
    );
    console.log(pad(["trace", "held", "÷off", "clean", "÷off", "spans/call"], [6, 6, 6, 6, 6, 11]));
    for (const r of mine) {
      const held = median(r.highestHeld);
      const clean = median(r.highestClean);
      const spans = median(
        r.runs.flat().flatMap((s) => (s.otlp ? [s.otlp.spans / Math.max(1, s.successful)] : [])),
      );
      console.log(
        pad(
          [
            label(r.tracing),
            held ?? 0,
            ratio(held, median(base.highestHeld)),
            clean ?? 0,
            ratio(clean, median(base.highestClean)),
            spans === undefined ? "-" : spans.toFixed(1),
          ],
          [6, 6, 6, 6, 6, 11],
        ),
      );
    }
    const widths = [7, 6, 6, 11, 6, 12, 6, 15, 6];
    console.log(
      pad(
        [
          "rate",
          "trace",
          "held",
          "CPU µs/call",
          "÷off",
          "main µs/call",
          "÷off",
          "req p50/p99 ms",
          "node",
        ],
        widths,
      ),
    );
    const rates = [...new Set(mine.flatMap((r) => r.runs.flat().map((s) => s.target)))].sort(
      (a, b) => a - b,
    );
    for (const rate of rates) {
      const atRate = (r: WorkloadReport) => r.runs.flat().filter((s) => s.target === rate);
      const cost = (r: WorkloadReport, main = false) =>
        median(
          atRate(r)
            .filter((s) => s.held)
            .flatMap((s) => cpuPerCall(s, main) ?? []),
        );
      const baseCost = cost(base);
      const baseMain = cost(base, true);
      for (const r of mine) {
        const at = atRate(r);
        if (at.length === 0) continue;
        const held = at.filter((s) => s.held);
        const m = (f: (s: StepResult) => number | undefined): number | undefined =>
          median(held.flatMap((s) => f(s) ?? []));
        const own = cost(r);
        const main = cost(r, true);
        console.log(
          pad(
            [
              rate,
              label(r.tracing),
              `${held.length}/${at.length}`,
              own === undefined ? "-" : own.toFixed(0),
              ratio(own, baseCost),
              main === undefined ? "-" : main.toFixed(0),
              ratio(main, baseMain),
              `${ms(m((s) => s.request.p50))}/${ms(m((s) => s.request.p99))}`,
              held.length > 0 ? cores(m((s) => s.nodeCpu) ?? 0) : "-",
            ],
            widths,
          ),
        );
      }
    }
  }
}

async function profileStep(
  ctx: BenchContext,
  rate: number,
  options: Options,
  sink: OtlpSink | undefined,
): Promise<TracedStep> {
  const workload = options.profileWorkload;
  const tracing = options.profileTracing;
  const dir = mkdtempSync(join(ctx.scratch, "profile-"));
  const unit = workload === "fanout" ? "PUBLISH/s" : "calls/s";
  console.log(
    `\n== CPU profile: ${workload} at ${rate} ${unit} for ${ctx.duration} s, tracing ${label(tracing)} (node --cpu-prof) ==`,
  );
  console.log(tracedHeader(workload, options));
  await calm(options.maxLoad);
  const step = await runStep(ctx, workload, rate, tracing, sink, dir);
  console.log(tracedRow(step, options));
  if (!step.profile) {
    console.log("  the node wrote no .cpuprofile (did it exit cleanly?)");
    return step;
  }
  const summary = summariseProfile(step.profile, ctx.nodeRoot);
  console.log(
    `  ${(summary.busyMs / 1000).toFixed(1)} s busy of ${(summary.totalMs / 1000).toFixed(1)} s profiled; ` +
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
  return step;
}

async function main(): Promise<number> {
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`bench:sip: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (!options) {
    console.log(HELP);
    return 0;
  }
  // dist/scripts/bench-sip.js → the project root two levels up.
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  if (!existsSync(join(root, "dist", "bootstrap", "cli.js"))) {
    console.error("bench:sip: dist/bootstrap/cli.js is missing: run `npm run build` first");
    return 2;
  }
  if (!existsSync(SIPP)) {
    console.error(`bench:sip: ${SIPP} is missing (Debian: apt-get install sip-tester)`);
    return 2;
  }
  const scratch = mkdtempSync(join(tmpdir(), "bench-sip-"));
  const ctx: BenchContext = {
    root,
    nodeRoot: snapshotNode(root, join(scratch, "node")),
    scratch,
    duration: options.duration,
    nodeFlags: options.nodeFlags,
    nodeEnv: {},
  };

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\nbench:sip: ${signal}: stopping SIPp and the node`);
    void stopAll(3_000).then(() => {
      if (!options?.keep) rmSync(scratch, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", killAllNow);

  const startedAt = new Date();
  console.log(`bench:sip ${startedAt.toISOString()}`);
  console.log(`machine: ${machine()}`);
  const code = codeState(root);
  console.log(`node under test: ${code}, dist/ as built when this run began`);
  console.log(`load average at start: ${load()}`);
  if (options.nodeFlags.length > 0) console.log(`node flags: ${options.nodeFlags.join(" ")}`);
  const sampled = [...options.tracing, options.profile ? options.profileTracing : "off"].some(
    (t) => t !== "off",
  );
  const sink = sampled ? await OtlpSink.open() : undefined;
  if (comparesTracing(options)) {
    console.log(
      `tracing: ${options.tracing.map(label).join(", ")}, interleaved at each rate; a sampled node ` +
        `exports OTLP/HTTP protobuf to ${sink?.endpoint ?? "-"} (a receiver in this process that ` +
        "counts), OTEL_TRACES_SAMPLER=parentbased_traceidratio; spans/call = spans received ÷ " +
        "successful calls (fan-out: ÷ PUBLISHes, the 1,000 SUBSCRIBEs of the setup included)",
    );
  }
  console.log(
    `steps of ${options.duration} s, UDP on 127.0.0.1, a fresh node per step. Columns: calls/s = ` +
      "successful calls over the span of their starts; req = first request→200, call = whole call " +
      "(SIPp gettimeofday per call, µs; p50/p99 nearest-rank); retrans = SIPp's request " +
      "retransmissions (T1 500 ms); node/sipp = CPU while calls started (100% = one core); " +
      "drops = datagrams the kernel dropped at the node's UDP socket (receive buffer full); " +
      "other = CPU of every other process on the machine meanwhile (others share it); " +
      "RSS = the node's peak resident memory in the step",
  );

  const reports: WorkloadReport[] = [];
  let profiled: StepResult | undefined;
  try {
    for (const workload of options.workloads) {
      const rates = workload === "fanout" ? options.fanoutRates : options.rates;
      const mine: WorkloadReport[] = options.tracing.map((tracing) => ({
        workload,
        tracing,
        runs: [],
        highestHeld: [],
        highestClean: [],
      }));
      for (let run = 1; run <= options.repeat; run++) {
        console.log(
          `\n== ${DESCRIPTIONS[workload]}${options.repeat > 1 ? ` — sweep ${run}/${options.repeat}` : ""} ==`,
        );
        console.log(tracedHeader(workload, options));
        const swept = await sweep(ctx, workload, rates, options, sink, run - 1);
        for (const [i, steps] of swept.entries()) {
          const report = mine[i];
          if (!report) continue;
          report.runs.push(steps);
          report.highestHeld.push(highest(steps, (s) => s.held));
          report.highestClean.push(highest(steps, clean));
        }
      }
      reports.push(...mine);
    }
    printSummary(reports, options);
    printTracingCost(reports, options);
    if (options.profile) {
      const swept = reports.find(
        (r) => r.workload === options.profileWorkload && r.tracing === options.profileTracing,
      );
      const fallback = options.profileWorkload === "fanout" ? 200 : 2000;
      const rate = options.profileRate ?? (swept ? median(swept.highestHeld) : undefined) ?? 0;
      profiled = await profileStep(ctx, rate || fallback, options, sink);
    }
  } finally {
    await stopAll(3_000);
    await sink?.close();
    if (!options.keep) rmSync(scratch, { recursive: true, force: true });
    else console.log(`\nscratch directory kept: ${scratch}`);
  }
  console.log(`\nload average at end: ${load()}`);
  if (options.json) {
    writeFileSync(
      options.json,
      `${JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          machine: machine(),
          code,
          options,
          reports,
          ...(profiled ? { profiled } : {}),
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
      `bench:sip: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exitCode = 1;
  },
);
