// scripts/bench: the processes a benchmark run starts — the node under test and SIPp — and what /proc says about them.
// Owns the registry of live children so that Ctrl-C, an error or a normal end stops every one of them.

import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync } from "node:fs";
import { join } from "node:path";

const live = new Set<ChildProcess>();

/** Spawns a child that is stopped by `stopAll` (and by `stop`); stdio as given. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child has exited (at once if it already has). */
export function exitOf(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** SIGTERM, then SIGKILL after `graceMs`: the node needs the SIGTERM to write its CPU profile. */
export async function stop(child: ChildProcess, graceMs: number): Promise<void> {
  if (exited(child)) return;
  child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      if (!exited(child)) child.kill("SIGKILL");
      resolve();
    }, graceMs);
  });
  await Promise.race([exitOf(child), killed]);
  clearTimeout(timer);
  await exitOf(child);
}

export async function stopAll(graceMs: number): Promise<void> {
  await Promise.all([...live].map((child) => stop(child, graceMs)));
}

/** Last resort on process exit: no time to wait, so every child still alive gets SIGKILL. */
export function killAllNow(): void {
  for (const child of live) {
    if (!exited(child)) child.kill("SIGKILL");
  }
}

// ---- the node under test ------------------------------------------------------------------------

/**
 * Copies the compiled node (dist/ without its tests) next to a link to node_modules and a copy of
 * package.json, and returns that root: builds that others run in the tree meanwhile cannot change
 * the code under test halfway through a run.
 */
export function snapshotNode(root: string, into: string): string {
  mkdirSync(into, { recursive: true });
  cpSync(join(root, "dist"), join(into, "dist"), {
    recursive: true,
    filter: (source) => source !== join(root, "dist", "test"),
  });
  cpSync(join(root, "package.json"), join(into, "package.json"));
  symlinkSync(join(root, "node_modules"), join(into, "node_modules"), "dir");
  return into;
}

export interface NodeProcess {
  child: ChildProcess;
  pid: number;
  sipPort: number;
  httpPort: number;
  /** Everything the node wrote on stderr (warnings and errors at --log-level warn), capped. */
  stderr: () => string;
}

export interface NodeLaunch {
  cli: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags: readonly string[];
  /** Extra node CLI options after `node`. */
  options: readonly string[];
  /** Variables added to the node's environment (the benchmark's own OTEL_* are never passed on). */
  env?: Readonly<Record<string, string>>;
  startTimeoutMs: number;
}

/** This process's environment without OTEL_*: whether the node traces is the benchmark's choice. */
function nodeEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("OTEL_")),
  );
  return { ...env, ...extra };
}

const stderrCap = 64 * 1024;

/**
 * Starts `cli node` with SIP and HTTP on port 0 and reads the ports it chose from its ready banner
 * ("SIP    udp+tcp 127.0.0.1:<port>", "admin  http://127.0.0.1:<port>/api/cluster").
 */
export function startNode(launch: NodeLaunch): Promise<NodeProcess> {
  const child = track(
    spawn(
      process.execPath,
      [
        ...launch.nodeFlags,
        launch.cli,
        "node",
        "--id",
        "bench",
        "--sip",
        "udp://127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--log-level",
        "warn",
        ...launch.options,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: nodeEnv(launch.env) },
    ),
  );
  let out = "";
  let err = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    if (err.length < stderrCap) err += chunk;
  });
  return new Promise((resolve, reject) => {
    let ready = false;
    const fail = (error: Error): void => {
      if (ready) return;
      ready = true;
      clearTimeout(timer);
      void stop(child, 1_000);
      reject(new Error(`${error.message}\nnode stderr:\n${err.slice(0, 4_000)}`));
    };
    const timer = setTimeout(() => {
      fail(new Error(`node did not print its ready banner within ${launch.startTimeoutMs} ms`));
    }, launch.startTimeoutMs);
    child.once("error", fail);
    child.once("exit", (code, signal) => {
      fail(new Error(`node exited before it was ready (code ${code}, signal ${signal})`));
    });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      if (ready || out.length > stderrCap) return;
      out += chunk;
      const sip = /udp\+tcp 127\.0\.0\.1:(\d+)/.exec(out);
      const http = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (!sip?.[1] || !http?.[1] || child.pid === undefined) return;
      ready = true;
      clearTimeout(timer);
      resolve({
        child,
        pid: child.pid,
        sipPort: Number(sip[1]),
        httpPort: Number(http[1]),
        stderr: () => err,
      });
    });
  });
}

/** GET /api/cluster: the node's counters (subscriptions, stats.notifiesSent, sip.udpIn, …). */
export async function clusterView(node: NodeProcess): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${node.httpPort}/api/cluster`, {
    signal: AbortSignal.timeout(5_000),
  });
  return (await response.json()) as Record<string, unknown>;
}

// ---- /proc readings ---------------------------------------------------------------------------

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const userHz = 100;

/**
 * CPU seconds (user + system) a process has used so far, all its threads, or only its main
 * thread (the event loop of a Node.js process; its task id is the pid); undefined once it is gone.
 */
export function cpuSeconds(pid: number, mainThread = false): number | undefined {
  try {
    const path = mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`;
    const stat = readFileSync(path, "utf8");
    // Fields after the command name, which may itself hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / userHz;
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine has been busy, all cores (/proc/stat without idle and iowait). */
function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    // cpu user nice system idle iowait irq softirq steal (guest time is inside user)
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (f[i] ?? 0), 0);
    return busy / userHz;
  } catch {
    return undefined;
  }
}

/** Peak resident set size in MiB (VmHWM). */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    return kib ? Number(kib) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Datagrams the kernel dropped because a UDP socket of this process had a full receive buffer
 * (the `drops` column of /proc/net/udp, matched to the process by socket inode).
 */
export function udpDrops(pid: number): number | undefined {
  let inodes: Set<string>;
  try {
    const fdDir = `/proc/${pid}/fd`;
    inodes = new Set();
    for (const fd of readdirSync(fdDir)) {
      try {
        const target = readlinkSync(join(fdDir, fd));
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode) inodes.add(inode);
      } catch {
        // The descriptor closed while we listed them.
      }
    }
  } catch {
    return undefined;
  }
  let drops = 0;
  for (const line of readFileSync("/proc/net/udp", "utf8").split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    const inode = cols[9];
    if (inode && inodes.has(inode)) drops += Number(cols[12] ?? 0);
  }
  return drops;
}

/** CPU seconds of one process sampled over time (epoch ms), to read the load of any window. */
export class CpuTrace {
  readonly samples: Array<{ at: number; cpu: number }> = [];

  add(at: number, cpu: number): void {
    this.samples.push({ at, cpu });
  }

  /** CPU seconds at `at`, interpolated between the samples around it. */
  private cpuAt(at: number): number {
    const { samples } = this;
    const first = samples[0];
    if (!first) return 0;
    if (at <= first.at) return first.cpu;
    for (let i = 1; i < samples.length; i++) {
      const before = samples[i - 1];
      const after = samples[i];
      if (!before || !after || at > after.at) continue;
      const span = after.at - before.at;
      return span > 0
        ? before.cpu + ((after.cpu - before.cpu) * (at - before.at)) / span
        : after.cpu;
    }
    return samples[samples.length - 1]?.cpu ?? 0;
  }

  /** Cores busy on average between two instants (1.0 = one core all the time). */
  cores(from: number, to: number): number {
    if (!(to > from)) return 0;
    return (this.cpuAt(to) - this.cpuAt(from)) / ((to - from) / 1000);
  }
}

/**
 * Polls the CPU time (every 100 ms) and UDP drops (every 500 ms) of a process, or the busy time of
 * the whole machine, until `finish`; with `mainThread`, also the CPU time of the process's main
 * thread alone.
 */
export class ProcessMeter {
  private readonly trace = new CpuTrace();
  /** The process's main thread alone (empty unless asked for). */
  private readonly mainTrace = new CpuTrace();
  private lastDrops = 0;
  private ticks = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly target: number | "machine",
    private readonly options: { mainThread?: boolean } = {},
  ) {
    this.sample(true);
    this.timer = setInterval(() => this.sample(this.ticks++ % 5 === 0), 100);
    this.timer.unref();
  }

  private sample(withDrops: boolean): void {
    const { target } = this;
    const cpu = target === "machine" ? machineBusySeconds() : cpuSeconds(target);
    const at = Date.now();
    if (cpu !== undefined) this.trace.add(at, cpu);
    if (this.options.mainThread && target !== "machine") {
      const main = cpuSeconds(target, true);
      if (main !== undefined) this.mainTrace.add(at, main);
    }
    if (!withDrops || target === "machine") return;
    const drops = udpDrops(target);
    if (drops !== undefined) this.lastDrops = drops;
  }

  /** Stops polling; the CPU traces and the UDP drops last seen (the process may have exited). */
  finish(): { cpu: CpuTrace; mainCpu: CpuTrace; drops: number } {
    this.sample(true);
    clearInterval(this.timer);
    return { cpu: this.trace, mainCpu: this.mainTrace, drops: this.lastDrops };
  }
}
