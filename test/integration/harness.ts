// test/integration: the end-to-end harness - real node processes started through the CLI, SIPp and
// nats-server on free ports, SIPp message traces parsed byte-exact, and waits on conditions, never sleeps.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as dgram from "node:dgram";
import { once } from "node:events";
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import * as net from "node:net";
import { basename, delimiter, join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";

/** The repository root: this file runs as dist/test/integration/harness.js. */
export const projectRoot = fileURLToPath(new URL("../../../", import.meta.url));
/** The CLI under test; PRESENCE_TEST_CLI points the suite at another build of it. */
export const cliPath = process.env.PRESENCE_TEST_CLI ?? join(projectRoot, "dist/bootstrap/cli.js");
export const scenarioDir = join(projectRoot, "test/sipp");
const tmpRoot = join(projectRoot, ".test-tmp/integration");
const host = "127.0.0.1";

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

// ---------------------------------------------------------------------------------------------
// Ports and directories

const handedOut = new Set<number>();

async function tryBind(port: number): Promise<number | undefined> {
  const server = net.createServer();
  const socket = dgram.createSocket("udp4");
  try {
    server.listen(port, host);
    await once(server, "listening");
    const address = server.address();
    if (address === null || typeof address === "string") return undefined;
    socket.bind(address.port, host);
    await once(socket, "listening");
    return address.port;
  } catch {
    return undefined;
  } finally {
    server.close();
    try {
      socket.close();
    } catch {
      // never bound: nothing to close
    }
  }
}

/** A port free for both UDP and TCP on 127.0.0.1, never handed out before in this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await tryBind(0);
    if (port !== undefined && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no port free for both UDP and TCP on 127.0.0.1 after 50 attempts");
}

/** A fresh, empty directory under .test-tmp/integration (gitignored), kept after the run for post-mortems. */
export function testDir(...segments: string[]): string {
  const dir = join(tmpRoot, ...segments.map(slug));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A file-name-safe form of `text`; long ones keep a hash of the whole so they stay distinct. */
export function slug(text: string): string {
  const plain = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  if (plain.length <= 80) return plain;
  return `${plain.slice(0, 71)}-${createHash("sha1").update(text).digest("hex").slice(0, 8)}`;
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return `(no ${file})`;
  return readFileSync(file, "utf8")
    .split("\n")
    .slice(-lines - 1)
    .join("\n");
}

// ---------------------------------------------------------------------------------------------
// Waiting

export interface WaitOptions {
  /** What is awaited, in words (evaluated on failure, so it can report the last value seen). */
  what: string | (() => string);
  timeoutMs?: number;
  intervalMs?: number;
  /** Nodes whose log tails the failure message shows. */
  nodes?: readonly NodeHandle[];
}

/** Thrown by a waitFor predicate when the condition can no longer come true (a process exited). */
export class WaitAborted extends Error {
  override name = "WaitAborted";
}

/**
 * Polls `predicate` until it returns something other than undefined, null or false; other errors
 * it throws count as "not yet", a WaitAborted ends the wait at once.
 */
export async function waitFor<T>(
  predicate: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitOptions,
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value !== undefined && value !== null && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      if (error instanceof WaitAborted) {
        throw new Error(
          `${describeWait(options)}: ${error.message}${nodeLogs(options.nodes ?? [])}`,
        );
      }
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
  const cause = lastError instanceof Error ? `\nlast error: ${lastError.message}` : "";
  throw new Error(
    `timed out after ${timeoutMs} ms ${describeWait(options)}${cause}${nodeLogs(options.nodes ?? [])}`,
  );
}

function describeWait(options: WaitOptions): string {
  return `waiting for ${typeof options.what === "string" ? options.what : options.what()}`;
}

/** Runs `body`; when it throws, the error message gains the log tails of `nodes`. */
export async function withNodeLogs<T>(
  nodes: readonly NodeHandle[],
  body: () => Promise<T>,
): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof Error && !error.message.includes("--- log of node")) {
      error.message += await clusterStates(nodes);
      error.message += nodeLogs(nodes);
    }
    throw error;
  }
}

/** Each live node's own view of the cluster (members, homes, counters), for failure messages. */
async function clusterStates(nodes: readonly NodeHandle[]): Promise<string> {
  const views = await Promise.all(
    nodes
      .filter((node) => node.alive())
      .map(async (node) => {
        try {
          const response = await fetch(`http://${node.http}/api/cluster`, {
            signal: AbortSignal.timeout(1000),
          });
          return `\n--- /api/cluster of node ${node.id}:\n${await response.text()}`;
        } catch (error) {
          return `\n--- /api/cluster of node ${node.id}: no answer (${String(error)})`;
        }
      }),
  );
  return views.join("");
}

function nodeLogs(nodes: readonly NodeHandle[]): string {
  return nodes
    .map((node) => `\n--- log of node ${node.id} (${node.logFile}):\n${node.logTail()}`)
    .join("");
}

// ---------------------------------------------------------------------------------------------
// Nodes

export type Role = "primary" | "server" | "pool";

export interface NodeOptions {
  /** Directory for the node's log (stdout and stderr interleaved in `<id>.log`). */
  dir: string;
  id?: string;
  role?: Role;
  /** Further CLI flags, e.g. ["--min-expires", "1"]. */
  args?: readonly string[];
  env?: Readonly<Record<string, string>>;
  readyTimeoutMs?: number;
}

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NodeHandle {
  readonly id: string;
  readonly pid: number;
  readonly sipPort: number;
  readonly httpPort: number;
  /** "127.0.0.1:<sip port>": the SIPp target. */
  readonly sip: string;
  readonly http: string;
  readonly logFile: string;
  readonly exited: Promise<NodeExit>;
  alive(): boolean;
  logTail(lines?: number): string;
  /** SIGTERM, then waits for the exit; resolves to the exit code (null when killed by a signal). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<NodeExit>;
  /** SIGSTOP: the process stays, silent — no heartbeats, no answers (a hung node). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
}

function trackExit(child: ChildProcess): Promise<NodeExit> {
  children.add(child);
  // A process that could not be spawned reports "error" and never "exit".
  child.once("error", () => children.delete(child));
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
}

/** Spawns `node dist/bootstrap/cli.js node ...` and resolves once GET /healthz answers 200. */
export async function startNode(options: NodeOptions): Promise<NodeHandle> {
  const id = options.id ?? "n1";
  const sipPort = await freePort();
  const httpPort = await freePort();
  const logFile = join(options.dir, `${id}.log`);
  mkdirSync(options.dir, { recursive: true });
  const fd = openSync(logFile, "w");
  const args = [
    cliPath,
    "node",
    "--id",
    id,
    "--role",
    options.role ?? "primary",
    "--sip",
    `udp://${host}:${sipPort}`,
    "--http",
    `${host}:${httpPort}`,
    ...(options.args ?? []),
  ];
  writeFileSync(fd, `# ${process.execPath} ${args.join(" ")}\n`);
  const child = spawn(process.execPath, args, {
    cwd: projectRoot,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  let exitInfo: NodeExit | undefined;
  const exited = trackExit(child).then((info) => {
    exitInfo = info;
    return info;
  });
  const handle: NodeHandle = {
    id,
    pid: child.pid ?? -1,
    sipPort,
    httpPort,
    sip: `${host}:${sipPort}`,
    http: `${host}:${httpPort}`,
    logFile,
    exited,
    alive: () => exitInfo === undefined,
    logTail: (lines = 40) => tail(logFile, lines),
    async stop(timeoutMs = 15_000) {
      if (exitInfo === undefined) child.kill("SIGTERM");
      const info = await Promise.race([
        exited,
        new Promise<undefined>((resolve) =>
          setTimeout(() => resolve(undefined), timeoutMs).unref(),
        ),
      ]);
      if (info === undefined) {
        child.kill("SIGKILL");
        await exited;
        throw new Error(
          `node ${id} did not exit within ${timeoutMs} ms of SIGTERM (killed)${nodeLogs([handle])}`,
        );
      }
      return info.code;
    },
    async kill() {
      if (exitInfo === undefined) child.kill("SIGKILL");
      return exited;
    },
    freeze() {
      if (exitInfo === undefined) child.kill("SIGSTOP");
    },
    thaw() {
      if (exitInfo === undefined) child.kill("SIGCONT");
    },
  };
  await waitFor(
    async () => {
      if (exitInfo !== undefined) {
        throw new WaitAborted(`node ${id} exited during startup: ${JSON.stringify(exitInfo)}`);
      }
      const response = await fetch(`http://${handle.http}/healthz`, {
        signal: AbortSignal.timeout(1000),
      });
      await response.arrayBuffer();
      return response.status === 200;
    },
    {
      what: `node ${id} to answer GET /healthz with 200`,
      timeoutMs: options.readyTimeoutMs ?? 15_000,
      intervalMs: 100,
      nodes: [handle],
    },
  ).catch(async (error: unknown) => {
    await handle.kill();
    throw error;
  });
  return handle;
}

export interface ClusterView {
  node: { id: string; role: string; sip: string; http: string; state: string };
  subscriptions: number;
  presentities: number;
  publications: number;
  nodes: unknown[];
}

/** GET /api/cluster of a node. */
export async function cluster(node: NodeHandle): Promise<ClusterView> {
  const response = await fetch(`http://${node.http}/api/cluster`, {
    signal: AbortSignal.timeout(2000),
  });
  if (response.status !== 200) throw new Error(`GET /api/cluster answered ${response.status}`);
  return (await response.json()) as ClusterView;
}

/** Waits until /api/cluster reports `count` active subscription dialogs. */
export function waitForSubscriptions(
  node: NodeHandle,
  count: number,
  timeoutMs = 10_000,
): Promise<ClusterView> {
  let last: number | undefined;
  return waitFor(
    async () => {
      const view = await cluster(node);
      last = view.subscriptions;
      return view.subscriptions === count ? view : undefined;
    },
    {
      what: () => `GET /api/cluster to report ${count} subscriptions (last: ${String(last)})`,
      timeoutMs,
      nodes: [node],
    },
  );
}

/** SIGKILLs every process this harness started that still runs, and waits for their exits. */
export async function killAll(): Promise<void> {
  const pending = [...children].map((child) => {
    const done = once(child, "exit");
    child.kill("SIGKILL");
    return done;
  });
  await Promise.all(pending);
}

// ---------------------------------------------------------------------------------------------
// One test, its own nodes and directory

export interface Scene {
  /** .test-tmp/integration/<area>/<test name>: the nodes' logs and one sub-directory per SIPp run. */
  readonly dir: string;
  /** Starts a node of this test; its log tail joins the failure message. */
  startNode(options?: Omit<NodeOptions, "dir">): Promise<NodeHandle>;
  runSipp(options: Omit<SippOptions, "dir">): Promise<SippResult>;
  startSipp(options: Omit<SippOptions, "dir">): Promise<SippHandle>;
}

const freshAreas = new Set<string>();

/**
 * Wraps a test body: a fresh directory, nodes that only this test sees (so one failure does not
 * cascade into the next test's counts), node log tails on failure, and every process it started
 * killed at the end.
 */
export function scene(
  area: string,
  body: (scene: Scene, t: TestContext) => Promise<void>,
): (t: TestContext) => Promise<void> {
  return async (t) => {
    if (!freshAreas.has(area)) {
      // The first test of an area in this run clears the previous run's directories.
      testDir(area);
      freshAreas.add(area);
    }
    const dir = testDir(area, t.name);
    const nodes: NodeHandle[] = [];
    const current: Scene = {
      dir,
      async startNode(options = {}) {
        const node = await startNode({ ...options, dir });
        nodes.push(node);
        return node;
      },
      runSipp: (options) => runSipp({ ...options, dir }),
      startSipp: (options) => startSipp({ ...options, dir }),
    };
    try {
      await withNodeLogs(nodes, () => body(current, t));
    } finally {
      await killAll();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// SIPp

export type Transport = "udp" | "tcp";
export const transports: readonly Transport[] = ["udp", "tcp"];

export interface SippOptions {
  /** A file name under test/sipp, e.g. "watcher.xml". */
  scenario: string;
  transport: Transport;
  /** host:port of the SIP endpoint. */
  target: string;
  /** Parent directory; each run gets its own sub-directory (its working directory and logs). */
  dir: string;
  localPort?: number;
  /** -s: the user part of the Request-URI (the presentity's user). */
  service?: string;
  /** -key name value: the scenario's [name] keywords. */
  vars?: Readonly<Record<string, string | number>>;
  /** Files written into the run's working directory, for [file name=...] bodies. */
  files?: Readonly<Record<string, string | Buffer>>;
  calls?: number;
  rate?: number;
  /** Keep every message in the trace (default); off for crowds of calls, where it is too big to read. */
  trace?: boolean;
  timeoutS?: number;
  /**
   * Go on with a call that gets a message its scenario does not expect there (SIPp aborts it by
   * default). For crowds on a slow machine: when an answer takes over T1, SIPp sends its request
   * again and then gets the answer twice — the second after the call moved on, which would fail
   * it although nothing was lost. A call that never gets what it waits for still fails.
   */
  continueOnUnexpected?: boolean;
}

export interface SippResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The -trace_msg log. */
  messages: string;
  /** The -trace_err log (unexpected messages, failed checks). */
  errors: string;
  /** The -trace_msg log parsed into messages, bodies byte-exact. */
  trace: SipTraceMessage[];
  runDir: string;
  /** Exit code, errors and the last messages, for assertion messages. */
  describe(): string;
}

export interface SippHandle {
  readonly localPort: number;
  readonly runDir: string;
  /** What the trace holds so far. */
  trace(): SipTraceMessage[];
  /** Waits until the trace holds `count` messages matching `predicate`; resolves to the last of them. */
  waitForMessage(
    predicate: (message: SipTraceMessage) => boolean,
    what: string,
    options?: { count?: number; timeoutMs?: number; nodes?: readonly NodeHandle[] },
  ): Promise<SipTraceMessage>;
  readonly done: Promise<SippResult>;
  kill(): void;
}

let sippRuns = 0;

/** Starts SIPp with one scenario and returns at once; `done` settles when SIPp exits. */
export async function startSipp(options: SippOptions): Promise<SippHandle> {
  const localPort = options.localPort ?? (await freePort());
  sippRuns += 1;
  const runDir = join(
    options.dir,
    `sipp-${String(sippRuns).padStart(3, "0")}-${basename(options.scenario, ".xml")}-${options.transport}`,
  );
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  for (const [name, content] of Object.entries(options.files ?? {})) {
    writeFileSync(join(runDir, name), content);
  }
  const files = {
    messages: join(runDir, "messages.log"),
    errors: join(runDir, "errors.log"),
    stdout: join(runDir, "stdout.log"),
    stderr: join(runDir, "stderr.log"),
  };
  const args = [
    options.target,
    "-sf",
    join(scenarioDir, options.scenario),
    "-t",
    options.transport === "udp" ? "u1" : "t1",
    "-i",
    host,
    "-p",
    String(localPort),
    "-bind_local",
    "-m",
    String(options.calls ?? 1),
    "-r",
    String(options.rate ?? 10),
    "-timeout",
    `${options.timeoutS ?? 20}s`,
    "-timeout_error",
    "-nostdin",
    // Large PIDF documents: socket buffers well above one 64 KB datagram.
    "-buff_size",
    "1048576",
    ...(options.trace === false ? [] : ["-trace_msg", "-message_file", files.messages]),
    ...(options.continueOnUnexpected ? ["-default_behaviors", "all,-abortunexp"] : []),
    "-trace_err",
    "-error_file",
    files.errors,
    "-trace_logs",
    "-log_file",
    join(runDir, "actions.log"),
    "-s",
    options.service ?? "service",
    ...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ["-key", name, String(value)]),
  ];
  writeFileSync(join(runDir, "command.txt"), `sipp ${args.join(" ")}\n`);
  const out = openSync(files.stdout, "w");
  const err = openSync(files.stderr, "w");
  const child = spawn("sipp", args, { cwd: runDir, stdio: ["ignore", out, err] });
  closeSync(out);
  closeSync(err);
  const spawnError = new Promise<never>((_, reject) => {
    child.once("error", (error) =>
      reject(new Error(`cannot run sipp (is SIPp installed?): ${error.message}`)),
    );
  });
  const read = (file: string): string => (existsSync(file) ? readFileSync(file, "utf8") : "");
  const readTrace = (): SipTraceMessage[] =>
    existsSync(files.messages) ? parseTrace(readFileSync(files.messages)) : [];
  const done = Promise.race([trackExit(child), spawnError]).then(({ code, signal }) => {
    const result: SippResult = {
      code,
      signal,
      stdout: read(files.stdout),
      stderr: read(files.stderr),
      messages: read(files.messages),
      errors: read(files.errors),
      trace: readTrace(),
      runDir,
      describe: () => describeRun(result, options),
    };
    return result;
  });
  return {
    localPort,
    runDir,
    trace: readTrace,
    async waitForMessage(predicate, what, waitOptions = {}) {
      const count = waitOptions.count ?? 1;
      let exited = false;
      void done.then(
        () => {
          exited = true;
        },
        () => {
          exited = true;
        },
      );
      let seen = 0;
      return waitFor(
        () => {
          const matching = readTrace().filter(predicate);
          seen = matching.length;
          if (matching.length >= count) return matching[count - 1];
          if (exited) {
            throw new WaitAborted(`SIPp ${options.scenario} exited first; see ${runDir}`);
          }
          return undefined;
        },
        {
          what: () =>
            `${what} in the trace of SIPp ${options.scenario} (${seen} of ${count} so far; ${runDir})`,
          timeoutMs: waitOptions.timeoutMs ?? 10_000,
          nodes: waitOptions.nodes ?? [],
        },
      );
    },
    done,
    kill: () => child.kill("SIGKILL"),
  };
}

/** Runs SIPp with one scenario and waits for it to exit. */
export async function runSipp(options: SippOptions): Promise<SippResult> {
  return (await startSipp(options)).done;
}

const sippExitMeaning: Record<number, string> = {
  0: "all calls successful",
  1: "at least one call failed",
  97: "exit on internal command",
  99: "normal exit without calls processed",
  254: "fatal error binding a socket",
  255: "fatal error (e.g. -timeout reached)",
};

function describeRun(result: SippResult, options: SippOptions): string {
  const meaning = result.code === null ? `signal ${result.signal}` : sippExitMeaning[result.code];
  const last = result.trace
    .slice(-4)
    .map((message) => `  ${message.direction} ${message.startLine}`)
    .join("\n");
  return [
    `SIPp ${options.scenario} over ${options.transport} exited with ${result.code} (${meaning ?? "?"})`,
    `run directory: ${result.runDir}`,
    `stderr: ${result.stderr.trim().split("\n").slice(-6).join("\n  ")}`,
    `errors: ${result.errors.trim().split("\n").slice(-8).join("\n  ")}`,
    `last messages:\n${last}`,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// SIPp message traces

export interface SipTraceMessage {
  direction: "sent" | "received";
  transport: string;
  /** When SIPp sent or received it (ms epoch, from the trace's local time stamp; NaN if absent). */
  at: number;
  /** The whole message, exactly the bytes SIPp sent or received. */
  raw: Buffer;
  startLine: string;
  /** For requests. */
  method?: string;
  /** For responses. */
  status?: number;
  reason?: string;
  /** Header values by lower-case full name (compact forms expanded), in order. */
  headers: ReadonlyMap<string, readonly string[]>;
  body: Buffer;
  /** The first value of a header, by any-case full name. */
  header(name: string): string | undefined;
}

// Compact header names: RFC 3261 section 7.3.3, plus o and u from RFC 6665.
const compactForms: Record<string, string> = {
  i: "call-id",
  m: "contact",
  e: "content-encoding",
  l: "content-length",
  c: "content-type",
  f: "from",
  s: "subject",
  k: "supported",
  t: "to",
  v: "via",
  o: "event",
  u: "allow-events",
};

const entryHeader = /^(\w+) message (sent|received) (?:\((\d+) bytes\):|\[(\d+)\] bytes ?:)$/;

/**
 * Parses a SIPp -trace_msg log. Each entry is a separator line, a line
 * "<TRANSPORT> message sent (N bytes):" or "... received [N] bytes :", a blank line and then
 * exactly N bytes of message, so bodies come out byte-exact. An entry still being written is skipped.
 */
export function parseTrace(log: Buffer): SipTraceMessage[] {
  const messages: SipTraceMessage[] = [];
  const separator = Buffer.from("-----------------------------------------------");
  let position = log.indexOf(separator);
  while (position >= 0) {
    const timestampEnd = log.indexOf(0x0a, position);
    if (timestampEnd < 0) break;
    const headerEnd = log.indexOf(0x0a, timestampEnd + 1);
    if (headerEnd < 0) break;
    const stamp = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3})/.exec(
      log.subarray(position, timestampEnd).toString("latin1"),
    );
    const match = entryHeader.exec(log.subarray(timestampEnd + 1, headerEnd).toString("latin1"));
    if (match === null) {
      position = log.indexOf(separator, headerEnd);
      continue;
    }
    const length = Number(match[3] ?? match[4]);
    const start = headerEnd + 2;
    if (start + length > log.length) break;
    messages.push(
      parseSipMessage(
        log.subarray(start, start + length),
        match[2] === "sent" ? "sent" : "received",
        match[1] ?? "?",
        // Local time, as SIPp writes it.
        stamp ? new Date(`${stamp[1]}T${stamp[2]}`).getTime() : Number.NaN,
      ),
    );
    position = log.indexOf(separator, start + length);
  }
  return messages;
}

function parseSipMessage(
  raw: Buffer,
  direction: "sent" | "received",
  transport: string,
  at: number,
): SipTraceMessage {
  const headEnd = raw.indexOf("\r\n\r\n");
  const head = raw.subarray(0, headEnd < 0 ? raw.length : headEnd).toString("utf8");
  const body = headEnd < 0 ? Buffer.alloc(0) : raw.subarray(headEnd + 4);
  const [startLine = "", ...lines] = head.replace(/\r\n[ \t]+/g, " ").split("\r\n");
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const written = line.slice(0, colon).trim().toLowerCase();
    const name = compactForms[written] ?? written;
    const values = headers.get(name) ?? [];
    values.push(line.slice(colon + 1).trim());
    headers.set(name, values);
  }
  const response = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(startLine);
  const message: SipTraceMessage = {
    direction,
    transport,
    at,
    raw,
    startLine,
    headers,
    body,
    header: (name) => headers.get(name.toLowerCase())?.[0],
  };
  if (response) {
    message.status = Number(response[1]);
    message.reason = response[2] ?? "";
  } else {
    message.method = startLine.split(" ")[0] ?? "";
  }
  return message;
}

/** Requests of one method the trace shows received (by default) or sent. */
export function requests(
  trace: readonly SipTraceMessage[],
  method: string,
  direction: "sent" | "received" = "received",
): SipTraceMessage[] {
  return trace.filter((message) => message.direction === direction && message.method === method);
}

/** Responses to one method (by CSeq) the trace shows received (by default) or sent. */
export function responses(
  trace: readonly SipTraceMessage[],
  method: string,
  direction: "sent" | "received" = "received",
): SipTraceMessage[] {
  return trace.filter(
    (message) =>
      message.direction === direction &&
      message.status !== undefined &&
      message.header("CSeq")?.split(/\s+/)[1] === method,
  );
}

// ---------------------------------------------------------------------------------------------
// Raw traffic

/** Sends datagrams from a fresh UDP socket, one after the other. */
export async function sendDatagrams(port: number, datagrams: readonly Buffer[]): Promise<void> {
  const socket = dgram.createSocket("udp4");
  try {
    for (const datagram of datagrams) {
      await new Promise<void>((resolve, reject) =>
        socket.send(datagram, port, host, (error) => (error ? reject(error) : resolve())),
      );
    }
  } finally {
    socket.close();
  }
}

/**
 * Writes bytes on a fresh TCP connection, half-closes it and waits (bounded) for the peer to close;
 * resolves to what the peer sent. A reset from the peer is an answer too, not a failure.
 */
export async function sendStream(port: number, data: Buffer, timeoutMs = 2000): Promise<Buffer> {
  const socket = net.connect(port, host);
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  await once(socket, "connect");
  // events.once would reject on "error"; a reset still ends in "close".
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.end(data);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  await closed;
  clearTimeout(timer);
  return Buffer.concat(received);
}

// ---------------------------------------------------------------------------------------------
// nats-server

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  stop(): Promise<void>;
  /** SIGKILL: the server vanishes without telling its clients or routes. */
  kill(): Promise<void>;
}

/** Route settings of one member of a NATS cluster. */
export interface NatsClusterMember {
  name: string;
  clusterName: string;
  clusterPort: number;
  routes: readonly number[];
}

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Starts nats-server (from PATH) with JetStream on a free port; resolves once the port accepts. */
export async function startNatsServer(
  dir: string,
  member?: NatsClusterMember,
): Promise<NatsServerHandle> {
  const binary = onPath("nats-server");
  if (binary === undefined) {
    throw new Error(
      "nats-server is not on PATH: install it (Debian: apt-get install nats-server) to run these tests",
    );
  }
  const port = await freePort();
  const storeDir = join(dir, `nats-${port}`);
  mkdirSync(storeDir, { recursive: true });
  const logFile = join(dir, `nats-${port}.log`);
  const fd = openSync(logFile, "w");
  const clusterArgs = member
    ? [
        "-n",
        member.name,
        "--cluster_name",
        member.clusterName,
        "--cluster",
        `nats://${host}:${member.clusterPort}`,
        "--routes",
        member.routes.map((p) => `nats://${host}:${p}`).join(","),
      ]
    : [];
  const child = spawn(
    binary,
    ["-a", host, "-p", String(port), "-js", "-sd", storeDir, ...clusterArgs],
    { stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  const exited = trackExit(child);
  let running = true;
  void exited.then(() => {
    running = false;
  });
  await waitFor(
    async () => {
      if (!running) throw new WaitAborted(`nats-server exited: ${tail(logFile, 10)}`);
      const socket = net.connect(port, host);
      try {
        await once(socket, "connect");
        return true;
      } finally {
        socket.destroy();
      }
    },
    { what: `nats-server to accept connections on ${host}:${port}`, intervalMs: 50 },
  );
  return {
    url: `nats://${host}:${port}`,
    port,
    logFile,
    async stop() {
      if (running) child.kill("SIGTERM");
      await exited;
    },
    async kill() {
      if (running) child.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * A NATS cluster of `size` servers with JetStream, routed to each other; resolves once every
 * server accepts clients and sees all its routes.
 */
export async function startNatsCluster(dir: string, size = 3): Promise<NatsServerHandle[]> {
  const clusterPorts: number[] = [];
  for (let i = 0; i < size; i += 1) clusterPorts.push(await freePort());
  const clusterName = `pc-test-${process.pid}`;
  const servers = await Promise.all(
    clusterPorts.map((clusterPort, i) =>
      startNatsServer(dir, {
        name: `nats${i + 1}`,
        clusterName,
        clusterPort,
        routes: clusterPorts.filter((p) => p !== clusterPort),
      }),
    ),
  );
  await waitFor(
    async () => {
      for (const server of servers) {
        const routes = (
          readFileSync(server.logFile, "utf8").match(/Route connection created/g) ?? []
        ).length;
        if (routes < size - 1) return false;
      }
      return true;
    },
    { what: `every NATS server to route to the ${size - 1} others`, timeoutMs: 15_000 },
  );
  return servers;
}

// ---------------------------------------------------------------------------------------------
// Presence documents and dialogs

/** The presentity URI the node derives from sip:<user>@127.0.0.1:<port>. */
export function entity(user: string): string {
  return `sip:${user}@${host}`;
}

export interface PidfTuple {
  id: string;
  basic: "open" | "closed";
  note?: string;
}

/** A PIDF document (RFC 3863) for one presentity. */
export function pidf(user: string, tuples: readonly PidfTuple[]): string {
  const body = tuples.map((tuple) =>
    [
      `  <tuple id="${tuple.id}">`,
      `    <status><basic>${tuple.basic}</basic></status>`,
      ...(tuple.note === undefined ? [] : [`    <note>${tuple.note}</note>`]),
      "  </tuple>",
    ].join("\n"),
  );
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity(user)}">`,
    ...body,
    "</presence>",
  ].join("\n");
}

/** The ids of the PIDF tuples in a body, in document order (any namespace prefix). */
export function tupleIds(body: Buffer | string): string[] {
  const text = body.toString();
  return [...text.matchAll(/<(?:[\w.-]+:)?tuple\b[^>]*?\bid\s*=\s*["']([^"']*)["']/g)].map(
    (match) => match[1] ?? "",
  );
}

/** The entity attributes of the <presence> elements in a body. */
export function presenceEntities(body: Buffer | string): string[] {
  const text = body.toString();
  return [...text.matchAll(/<(?:[\w.-]+:)?presence\b[^>]*?\bentity\s*=\s*["']([^"']*)["']/g)].map(
    (match) => match[1] ?? "",
  );
}

/** The tag parameter of a From or To value. */
export function tagOf(value: string | undefined): string | undefined {
  return /;\s*tag\s*=\s*([^;\s>,]+)/i.exec(value ?? "")?.[1];
}

/** Subscription-State without whitespace, e.g. "active;expires=599". */
export function subscriptionState(message: SipTraceMessage): string {
  return (message.header("Subscription-State") ?? "").replace(/\s+/g, "").toLowerCase();
}

/** The NOTIFY requests a watcher received, in order. */
export function notifies(trace: readonly SipTraceMessage[]): SipTraceMessage[] {
  return requests(trace, "NOTIFY");
}

/** The SIP-ETag of the last 200 to PUBLISH in a trace. */
export function lastEtag(trace: readonly SipTraceMessage[]): string {
  const ok = responses(trace, "PUBLISH").filter((message) => message.status === 200);
  const etag = ok.at(-1)?.header("SIP-ETag");
  assert.ok(etag, "a 200 to PUBLISH carries SIP-ETag");
  return etag;
}

/** Content-Length must count the body's bytes (UTF-8 bodies break a character count). */
export function assertContentLength(message: SipTraceMessage): void {
  assert.equal(
    Number(message.header("Content-Length")),
    message.body.length,
    `Content-Length of "${message.startLine}" counts the body's bytes`,
  );
}
