// scripts/bench/paper: what `bench paper` writes — a CSV and an SVG chart (vega-lite) per figure, and the
// summary table in the paper's form (users, single, cluster, reduction, the paper's reduction, servers).

import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { stringify } from "csv-stringify/sync";
import { parse as parseVega, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Figure, Measure, PaperOptions } from "../../../bootstrap/bench-paper.js";
import { percentile } from "../stats.js";

export type Mode = "single" | "cluster";

/** One point: a figure, a mode and a number of users, measured over one window. */
export interface PointResult {
  figure: Figure["id"];
  measure: Measure;
  mode: Mode;
  users: number;
  resources: number;
  pidfKb: number;
  /** The measured times (ms) of the exchanges begun in the window. */
  times: number[];
  /** Exchanges begun in the window: new subscriptions, or PUBLISHes answered 200 (notifications). */
  begun: number;
  /** Of those, answered with an error (or, for subscriptions, never followed by a NOTIFY). */
  failed: number;
  /** Every user's subscriptions were open and no promotion under way when the window began. */
  settled: boolean;
  serversActive: number;
  promotions: number;
  /** Cores each node used in the window (1 = one core). */
  cpu: Array<{ id: string; cores: number }>;
  /** Users per node, largest first. */
  placement: number[];
  /** The CPU quota of each node, or "unlimited". */
  quota: string;
}

export function average(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

const fixed = (value: number | undefined, digits = 2): string =>
  value === undefined ? "" : value.toFixed(digits);

/** Reduction of the cluster's average against the single server's, in % (the paper's measure). */
export function reduction(
  single: number | undefined,
  cluster: number | undefined,
): number | undefined {
  if (single === undefined || cluster === undefined || single <= 0) return undefined;
  return ((single - cluster) / single) * 100;
}

const CSV_COLUMNS = [
  "figure",
  "measure",
  "mode",
  "users",
  "resources_per_user",
  "pidf_kb",
  "samples",
  "avg_ms",
  "p50_ms",
  "p95_ms",
  "p99_ms",
  "begun",
  "failed",
  "servers_active",
  "promotions",
  "settled",
  "busiest_node_cores",
  "all_nodes_cores",
  "users_per_server",
  "node_cpu",
] as const;

function csvRow(p: PointResult): Array<string | number> {
  const cores = p.cpu.map((c) => c.cores);
  return [
    p.figure,
    p.measure,
    p.mode,
    p.users,
    p.resources,
    p.pidfKb,
    p.times.length,
    fixed(average(p.times)),
    fixed(percentile(p.times, 50)),
    fixed(percentile(p.times, 95)),
    fixed(percentile(p.times, 99)),
    p.begun,
    p.failed,
    p.serversActive,
    p.promotions,
    p.settled ? "yes" : "no",
    fixed(Math.max(0, ...cores)),
    fixed(cores.reduce((a, b) => a + b, 0)),
    p.placement.join(" "),
    p.quota,
  ];
}

async function chart(figure: Figure, points: readonly PointResult[]): Promise<string> {
  const values = points.flatMap((p) => [
    { users: p.users, mode: p.mode, statistic: "average", ms: average(p.times) ?? null },
    { users: p.users, mode: p.mode, statistic: "p95", ms: percentile(p.times, 95) ?? null },
  ]);
  const size =
    figure.measure === "notification" ? `, PIDF ${Math.round(figure.pidfBytes / 1024)} KB` : "";
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `Fig. ${figure.id}: ${figure.title}`,
      subtitle: `${figure.resources} presence resources per user${size}; single server vs cluster`,
    },
    width: 480,
    height: 300,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "users", type: "quantitative", title: "users" },
      y: { field: "ms", type: "quantitative", title: "processing time (ms)" },
      color: { field: "mode", type: "nominal", title: "system" },
      strokeDash: { field: "statistic", type: "nominal", title: "statistic" },
    },
  };
  const view = new View(parseVega(compile(spec).spec), { renderer: "none" });
  return view.toSVG();
}

function table(figure: Figure, points: readonly PointResult[]): string {
  const users = [...new Set(points.map((p) => p.users))].sort((a, b) => a - b);
  const lines = [
    `Fig. ${figure.id}: average ${figure.title} (${figure.resources} resources/user, PIDF ${Math.round(figure.pidfBytes / 1024)} KB)`,
    "",
    "| users | avg single ms | avg cluster ms | reduction % | paper % | servers (end) | p50 single / cluster | p95 single / cluster | p99 single / cluster | samples single / cluster |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const u of users) {
    const single = points.find((p) => p.users === u && p.mode === "single");
    const cluster = points.find((p) => p.users === u && p.mode === "cluster");
    const s = single?.times ?? [];
    const c = cluster?.times ?? [];
    const pair = (q: number): string =>
      `${fixed(percentile(s, q), 1)} / ${fixed(percentile(c, q), 1)}`;
    const paper = figure.paper[u];
    lines.push(
      `| ${u} | ${fixed(average(s), 1)} | ${fixed(average(c), 1)} | ${fixed(reduction(average(s), average(c)), 1)} | ` +
        `${paper === undefined ? "—" : paper.toFixed(1)} | ${cluster?.serversActive ?? ""} | ${pair(50)} | ${pair(95)} | ` +
        `${pair(99)} | ${s.length} / ${c.length} |`,
    );
  }
  return lines.join("\n");
}

/** Writes figN.csv, figN.svg and summary.md; prints the tables; returns the files written. */
export async function writeReports(
  results: readonly PointResult[],
  options: PaperOptions,
  out: string,
  elapsedS: number,
): Promise<string[]> {
  const files: string[] = [];
  const sections: string[] = [];
  for (const figure of options.figures) {
    const points = results.filter((r) => r.figure === figure.id);
    const csv = join(out, `fig${figure.id}.csv`);
    writeFileSync(csv, stringify([[...CSV_COLUMNS], ...points.map(csvRow)]));
    const svg = join(out, `fig${figure.id}.svg`);
    writeFileSync(svg, await chart(figure, points));
    files.push(csv, svg);
    sections.push(table(figure, points));
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}`;
  const header = [
    `# bench paper — ${new Date().toISOString().slice(0, 10)}`,
    "",
    `${machine}; ${options.quick ? "--quick; " : ""}users ${options.users.join(",")}, max-load ${options.maxLoad}, ` +
      `pool ${options.pool}, ${options.durationS} s per point, join rate ${options.joinRate}/s, ` +
      `node CPU ${results[0]?.quota ?? "unlimited"}; ran ${Math.round(elapsedS)} s`,
  ].join("\n");
  const summary = [header, ...sections].join("\n\n");
  const file = join(out, "summary.md");
  writeFileSync(file, `${summary}\n`);
  files.push(file);
  console.log(`\n${summary}\n`);
  return files;
}
