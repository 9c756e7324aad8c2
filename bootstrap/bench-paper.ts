// bootstrap: the flags of `presence-cluster bench paper` (the paper's parameters as defaults) and the figures
// they drive; the experiment itself is in scripts/bench/paper, loaded only when the command runs.

import { type Command, InvalidArgumentError, Option } from "commander";

export type Measure = "subscription" | "notification";

export interface Figure {
  id: 6 | 7 | 8 | 9;
  title: string;
  measure: Measure;
  resources: number;
  pidfBytes: number;
  /** Each resource publishes this often (ms); undefined: its first state only. */
  updateIntervalMs: number | undefined;
  /** The paper's reduction of the average time (%) by number of users, where the text gives one. */
  paper: Readonly<Record<number, number>>;
}

export interface PaperOptions {
  figures: Figure[];
  users: number[];
  /** Each user starts one new subscription this often (ms). */
  subscribeIntervalMs: number;
  maxLoad: number;
  pool: number;
  durationS: number;
  joinRate: number;
  nodeCpu: number | undefined;
  out: string;
  quick: boolean;
}

/** The reductions the paper reports (PAPER.md, "Experiment"); 100 users in Fig. 6 is "the same". */
const PAPER: Readonly<Record<Figure["id"], Readonly<Record<number, number>>>> = {
  6: { 100: 0, 200: 66.7, 400: 60.1, 600: 69.2 },
  7: { 100: 40.8, 400: 65.2, 600: 67.5 },
  8: { 200: 29.4, 400: 46.7, 600: 56.1 },
  9: { 100: 33.3, 200: 41.7, 400: 58.6, 600: 62.7 },
};

/** --quick: users and max-load scaled by 1/10 together (so servers are added at the same points). */
const QUICK = {
  users: "10,20",
  maxLoad: "10",
  duration: "4",
  joinRate: "10",
  updateRate: "0.5",
} as const;

function list(flag: string, min: number) {
  return (raw: string): number[] => {
    const values = raw.split(",").map((v) => Number(v.trim()));
    if (values.length === 0 || values.some((v) => !Number.isFinite(v) || v < min)) {
      throw new InvalidArgumentError(`${flag} takes numbers ≥ ${min} separated by commas`);
    }
    return values;
  };
}

function number(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${flag} takes a number from ${min} to ${max}`);
    }
    return value;
  };
}

/** Adds the command's flags; every one is a parameter of the experiment. */
export function paperFlags(command: Command): Command {
  const flags: Array<[string, string, string | undefined, (raw: string) => unknown]> = [
    ["--figures <list>", "figures to run", "6,7,8,9", list("--figures", 1)],
    ["--users <list>", "numbers of users (one point each)", "100,200,400,600", list("--users", 1)],
    [
      "--resources <n>",
      "presence resources per user (figs. 6, 8, 9)",
      "10",
      number("--resources", 1, 100),
    ],
    [
      "--resources-fig7 <n>",
      "presence resources per user in fig. 7",
      "20",
      number("--resources-fig7", 1, 100),
    ],
    [
      "--subscribe-rate <n>",
      "new subscriptions per user per second",
      "1",
      number("--subscribe-rate", 0.01, 100),
    ],
    [
      "--update-rate <n>",
      "PIDF updates per resource per second (figs. 8, 9)",
      "1",
      number("--update-rate", 0.001, 100),
    ],
    [
      "--state-kb <n>",
      "PIDF size of each resource's state in figs. 6, 7 (the paper sizes only notifications)",
      "1",
      number("--state-kb", 1, 60),
    ],
    [
      "--pidf-kb <list>",
      "PIDF size of the notifications of fig. 8, then of fig. 9 (KB)",
      "25,50",
      list("--pidf-kb", 1),
    ],
    [
      "--max-load <n>",
      "max-load of the cluster (load = watched resources / 10)",
      "100",
      number("--max-load", 1),
    ],
    [
      "--pool <n>",
      "pool servers of the cluster (default: as many as the largest point needs)",
      undefined,
      number("--pool", 0, 64),
    ],
    ["--duration <s>", "measured seconds per point", "20", number("--duration", 1, 3600)],
    [
      "--join-rate <n>",
      "users joining per second while a point is set up",
      "20",
      number("--join-rate", 1, 10000),
    ],
    [
      "--node-cpu <cores>",
      "CPU quota of each node process (cgroups), e.g. 0.25",
      undefined,
      number("--node-cpu", 0.01, 64),
    ],
    ["--out <dir>", "where the CSV and SVG files go", "bench-paper", (raw) => raw],
  ];
  for (const [spec, description, fallback, parse] of flags) {
    const option = new Option(spec, description).argParser(parse);
    command.addOption(fallback === undefined ? option : option.default(parse(fallback), fallback));
  }
  return command.option(
    "--quick",
    `a scaled-down run for CI (< 3 min): users ${QUICK.users}, max-load ${QUICK.maxLoad}, ` +
      `${QUICK.duration} s per point, ${QUICK.updateRate} updates/s; flags given still win`,
  );
}

/** The experiment from parsed flags; `given` names the flags set on the command line. */
export function paperOptions(
  raw: Record<string, unknown>,
  given: (name: string) => boolean,
): PaperOptions {
  const quick = raw.quick === true;
  const pick = <T>(name: string, quickValue: T): T =>
    quick && !given(name) ? quickValue : (raw[name] as T);
  const users = [...new Set(pick("users", list("--users", 1)(QUICK.users)))].sort((a, b) => a - b);
  const maxLoad = pick("maxLoad", Number(QUICK.maxLoad));
  const subscribeIntervalMs = 1000 / (raw.subscribeRate as number);
  const updateIntervalMs = 1000 / pick("updateRate", Number(QUICK.updateRate));
  const [kb8 = 25, kb9 = kb8] = raw.pidfKb as number[];
  const stateKb = raw.stateKb as number;
  const resources = raw.resources as number;
  const resources7 = raw.resourcesFig7 as number;
  const all: Figure[] = [
    {
      id: 6,
      title: "subscription processing time",
      measure: "subscription",
      resources,
      pidfBytes: stateKb * 1024,
      updateIntervalMs: undefined,
      paper: PAPER[6],
    },
    {
      id: 7,
      title: "subscription processing time",
      measure: "subscription",
      resources: resources7,
      pidfBytes: stateKb * 1024,
      updateIntervalMs: undefined,
      paper: PAPER[7],
    },
    {
      id: 8,
      title: "notification processing time",
      measure: "notification",
      resources,
      pidfBytes: kb8 * 1024,
      updateIntervalMs,
      paper: PAPER[8],
    },
    {
      id: 9,
      title: "notification processing time",
      measure: "notification",
      resources,
      pidfBytes: kb9 * 1024,
      updateIntervalMs,
      paper: PAPER[9],
    },
  ];
  const wanted = raw.figures as number[];
  const unknown = wanted.filter((id) => !all.some((f) => f.id === id));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `--figures: no figure ${unknown.join(", ")} (the paper has 6, 7, 8, 9)`,
    );
  }
  const figures = all.filter((f) => wanted.includes(f.id));
  const largest = Math.max(...users) * Math.max(...figures.map((f) => f.resources));
  // Servers needed at the largest point, the primary being one: each holds up to max-load.
  const needed = Math.ceil(largest / 10 / maxLoad);
  return {
    figures,
    users,
    subscribeIntervalMs,
    maxLoad,
    pool: (raw.pool as number | undefined) ?? Math.max(1, needed),
    durationS: pick("duration", Number(QUICK.duration)),
    joinRate: pick("joinRate", Number(QUICK.joinRate)),
    nodeCpu: raw.nodeCpu as number | undefined,
    out: raw.out as string,
    quick,
  };
}
