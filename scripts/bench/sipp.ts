// scripts/bench: runs one SIPp client against the node and reads back what it recorded.
// SIPp's statistics file (-trace_stat) gives calls and failures; its <log> lines give per-call timings.

import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { type CpuTrace, exitOf, ProcessMeter, stop, track } from "./processes.js";

export const SIPP = "/usr/bin/sipp";

export interface SippRun {
  /** Scenario file (absolute path). */
  scenario: string;
  /** Working directory: SIPp reads [file name=…] bodies and -inf files from it and writes its traces there. */
  dir: string;
  target: { host: string; port: number };
  /** Calls per second (-r) and how many calls in all (-m). */
  rate: number;
  calls: number;
  /** Simultaneous calls at most (-l); beyond it SIPp holds new calls back. */
  limit: number;
  /** Scenario keys (-key name value). */
  keys?: Record<string, string | number>;
  /** Extra SIPp arguments (e.g. -inf). */
  extra?: readonly string[];
  /** SIPp is killed after this long; its unfinished calls count as failed. */
  timeoutMs: number;
}

export interface SippResult {
  exitCode: number | null;
  killed: boolean;
  created: number;
  successful: number;
  failed: number;
  retransmissions: number;
  /** SIPp's own failure counters that were not zero, by name (FailedTimeoutOnRecv, …). */
  failures: Record<string, number>;
  /** The lines of SIPp's <log> action (-trace_logs), one or more per call. */
  logLines: string[];
  /** The most frequent reasons in SIPp's error log, with counts. */
  errors: Array<{ reason: string; count: number }>;
  cpu: CpuTrace;
  udpDrops: number;
}

/** Arguments common to every run: UDP on loopback, big socket buffers, bounded waits. */
function argsOf(run: SippRun): string[] {
  const keys = Object.entries(run.keys ?? {}).flatMap(([k, v]) => ["-key", k, String(v)]);
  return [
    `${run.target.host}:${run.target.port}`,
    "-sf",
    run.scenario,
    "-t",
    "u1",
    "-i",
    "127.0.0.1",
    "-r",
    String(run.rate),
    "-m",
    String(run.calls),
    "-l",
    String(run.limit),
    "-nostdin",
    // No BYE for an aborted call: SUBSCRIBE/PUBLISH dialogs have none, and it would add load.
    "-default_behaviors",
    "none",
    "-buff_size",
    String(4 * 1024 * 1024),
    // Room for four UDP retransmissions (0.5, 1.5, 3.5, 7.5 s) before a call counts as failed.
    "-recv_timeout",
    "10000",
    "-timeout",
    `${Math.ceil(run.timeoutMs / 1000)}s`,
    "-trace_stat",
    "-stf",
    "stat.csv",
    "-fd",
    "1",
    "-trace_logs",
    "-log_file",
    "calls.log",
    "-trace_err",
    "-error_file",
    "errors.log",
    ...keys,
    ...(run.extra ?? []),
  ];
}

export async function runSipp(run: SippRun): Promise<SippResult> {
  const child = track(
    spawn(SIPP, argsOf(run), { cwd: run.dir, stdio: ["ignore", "ignore", "pipe"] }),
  );
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    if (stderr.length < 16_384) stderr += chunk;
  });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once("spawn", () => resolve(true));
    child.once("error", () => resolve(false));
  });
  if (!spawned || child.pid === undefined) throw new Error(`cannot start ${SIPP}`);
  const meter = new ProcessMeter(child.pid);
  let killed = false;
  // SIPp's own -timeout should end it first; this is the backstop if it hangs.
  const backstop = setTimeout(() => {
    killed = true;
    void stop(child, 2_000);
  }, run.timeoutMs + 10_000);
  await exitOf(child);
  clearTimeout(backstop);
  const usage = meter.finish();

  const stat = lastStatRow(join(run.dir, "stat.csv"));
  if (!stat) {
    throw new Error(
      `SIPp wrote no statistics (exit ${child.exitCode}); stderr:\n${stderr.slice(0, 2_000)}`,
    );
  }
  const count = (name: string): number => Number(stat[name] ?? 0);
  const created = count("OutgoingCall(C)");
  const successful = count("SuccessfulCall(C)");
  const failures: Record<string, number> = {};
  for (const [name, value] of Object.entries(stat)) {
    if (name.startsWith("Failed") && name.endsWith("(C)") && name !== "FailedCall(C)") {
      const n = Number(value);
      if (n > 0) failures[name.slice(0, -3)] = n;
    }
  }
  // Calls SIPp never finished (it was stopped) or never started count as failed, too.
  const failed = Math.max(count("FailedCall(C)"), run.calls - successful);
  return {
    exitCode: child.exitCode,
    killed,
    created,
    successful,
    failed,
    retransmissions: count("Retransmissions(C)"),
    failures,
    logLines: readLines(join(run.dir, "calls.log")),
    errors: errorReasons(join(run.dir, "errors.log")),
    cpu: usage.cpu,
    udpDrops: usage.drops,
  };
}

/** The last row of SIPp's ';'-separated statistics file, keyed by the header row. */
function lastStatRow(path: string): Record<string, string> | undefined {
  if (!existsSync(path)) return undefined;
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0);
  const header = lines[0]?.split(";");
  const last = lines.length > 1 ? lines[lines.length - 1]?.split(";") : undefined;
  if (!header || !last) return undefined;
  return Object.fromEntries(header.map((name, i) => [name, last[i] ?? ""]));
}

function readLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.length > 0);
}

/** SIPp's error log can be large when every call fails: only its first megabyte is summarised. */
function errorReasons(path: string): Array<{ reason: string; count: number }> {
  if (!existsSync(path)) return [];
  const fd = openSync(path, "r");
  const buffer = Buffer.alloc(1024 * 1024);
  const length = readSync(fd, buffer, 0, buffer.length, 0);
  closeSync(fd);
  const counts = new Map<string, number>();
  // Each event starts "YYYY-MM-DD<tab>hh:mm:ss.us<tab>epoch: "; its first line says what happened.
  const events = buffer.toString("latin1", 0, length).split(/\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: /);
  for (const event of events.slice(1)) {
    const reason = (event.split(/\r?\n/)[0] ?? "")
      .replace(/'[^']*@[^']*'/g, "<call>")
      .slice(0, 160);
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  return [...counts]
    .map(([reason, count]) => ({ reason, count }))
    .sort((a, b) => b.count - a.count)
    .slice(0, 5);
}

/**
 * SIPp's gettimeofday pairs `[$s] [$us]`, printed as doubles ("1795514498.000000 872604.000000"),
 * to milliseconds since the epoch.
 */
export function epochMs(seconds: string | undefined, micros: string | undefined): number {
  return Number(seconds) * 1000 + Number(micros) / 1000;
}
