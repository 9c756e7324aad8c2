// scripts/bench/dispatch: one benchmark cluster — its own nats-server and node processes started
// through the CLI on free ports — ready once the primary holds a control session with every server.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Decision, SupervisorView } from "../../../actors/supervisor/supervisor.js";
import type { ClusterView } from "../../../bootstrap/node.js";
import { clusterView, type NodeProcess, startNode, stop } from "../processes.js";
import { type NatsServer, startNatsServer } from "./nats.js";

export type Role = "primary" | "server" | "pool";

export interface MemberSpec {
  id: string;
  role: Role;
  /** Extra CLI options of this node only (e.g. --log-level info). */
  options?: readonly string[];
  /** Extra Node.js flags of this node only (e.g. --cpu-prof). */
  nodeFlags?: readonly string[];
}

export interface ClusterSpec {
  /** dist/bootstrap/cli.js of the node under test. */
  cli: string;
  /** Where nats-server keeps its (unused) JetStream store. */
  dir: string;
  /** The primary first. */
  members: readonly MemberSpec[];
  /** CLI options of every node (after --nats). */
  options: readonly string[];
  /** nats-server's max_payload in bytes (its default: 1 MB). */
  natsMaxPayload?: number | undefined;
  readyTimeoutMs: number;
}

export interface Member extends NodeProcess {
  id: string;
  role: Role;
}

export interface Cluster {
  /** The run's directory: the nodes' stderr is written there when they stop. */
  dir: string;
  nats: NatsServer;
  members: Member[];
  primary: Member;
  /** The member with this id (throws for an unknown one). */
  member(id: string): Member;
}

/** Thrown by a waitUntil probe when the awaited condition can no longer come true. */
export class WaitAborted extends Error {
  override name = "WaitAborted";
}

/**
 * Polls `probe` every `intervalMs` until it returns a value; throws after `timeoutMs`. A probe
 * that throws counts as "not yet", except with WaitAborted, which ends the wait at once.
 */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  what: () => string,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof WaitAborted) throw error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function viewOf(member: Member): Promise<ClusterView> {
  return (await clusterView(member)) as unknown as ClusterView;
}

export async function supervisorOf(primary: Member): Promise<SupervisorView> {
  const view = await viewOf(primary);
  if (!view.supervisor) throw new Error(`node ${primary.id} shows no supervisor: not the primary?`);
  return view.supervisor;
}

/** How a member ended if it is no longer running ("s1: code 1"), else undefined. */
export function exitOf(member: Member): string | undefined {
  const { exitCode, signalCode } = member.child;
  if (signalCode !== null) return `${member.id}: signal ${signalCode}`;
  if (exitCode !== null) return `${member.id}: code ${exitCode}`;
  return undefined;
}

/** The first lines a member wrote on stderr that are not JSON log lines (a crash's message). */
export function crashOf(member: Member): string | undefined {
  const lines = member
    .stderr()
    .split("\n")
    .filter((l) => l.trim().length > 0 && !l.startsWith("{"));
  return lines.length > 0 ? lines.slice(0, 6).join(" | ").slice(0, 600) : undefined;
}

export function decisionsOf(view: SupervisorView, type: Decision["type"]): Decision[] {
  return view.decisions.filter((d) => d.type === type);
}

/**
 * Starts nats-server, then the primary, then the other members in parallel, and waits until the
 * primary's supervisor has every server up and every pool node in its pool, and every node places
 * presentities over the same active nodes. Stops what it started when that fails.
 */
/**
 * Options of every benchmark node. The watchers left subscribed at the end are SIPp's, gone by
 * then: a clean shutdown would wait for final NOTIFYs nobody answers.
 */
export const BENCH_NODE_OPTIONS: readonly string[] = ["--shutdown-timeout", "0"];

export async function startCluster(spec: ClusterSpec): Promise<Cluster> {
  const nats = await startNatsServer(spec.dir, { maxPayload: spec.natsMaxPayload });
  const members: Member[] = [];
  const launch = async (m: MemberSpec): Promise<Member> => {
    const node = await startNode({
      cli: spec.cli,
      nodeFlags: m.nodeFlags ?? [],
      options: [
        "--id",
        m.id,
        "--role",
        m.role,
        "--nats",
        nats.url,
        ...BENCH_NODE_OPTIONS,
        ...spec.options,
        ...(m.options ?? []),
      ],
      startTimeoutMs: spec.readyTimeoutMs,
    });
    const member = { ...node, id: m.id, role: m.role };
    members.push(member);
    return member;
  };
  const cluster: Cluster = {
    dir: spec.dir,
    nats,
    members,
    get primary(): Member {
      const primary = members.find((m) => m.role === "primary");
      if (!primary) throw new Error("the cluster has no primary");
      return primary;
    },
    member(id: string): Member {
      const found = members.find((m) => m.id === id);
      if (!found) throw new Error(`no member ${id}`);
      return found;
    },
  };
  try {
    const [first, ...rest] = spec.members;
    if (first?.role !== "primary") throw new Error("the first member must be the primary");
    await launch(first);
    await Promise.all(rest.map(launch));
    const active = spec.members.filter((m) => m.role !== "pool").length;
    const pool = spec.members.filter((m) => m.role === "pool").map((m) => m.id);
    let last = "";
    await waitUntil(
      async () => {
        const view = await supervisorOf(cluster.primary);
        const homes = await Promise.all(members.map(async (m) => (await viewOf(m)).homes.length));
        last = `active ${view.activeServers}/${active}, pool [${view.pool.join(",")}], homes ${homes.join("/")}`;
        const ready =
          view.activeServers === active &&
          pool.every((id) => view.pool.includes(id)) &&
          homes.every((h) => h === active);
        return ready ? view : undefined;
      },
      spec.readyTimeoutMs,
      () => `for the cluster to be ready (${last})`,
    );
    return cluster;
  } catch (error) {
    await stopCluster(cluster, 1_000);
    throw error;
  }
}

/**
 * Stops every node (SIGTERM, SIGKILL after `graceMs`), then NATS. The nodes run with
 * --shutdown-timeout 0 (see BENCH_NODE_OPTIONS), so they exit at once and write a CPU profile
 * when asked for one.
 */
export async function stopCluster(cluster: Cluster, graceMs: number): Promise<void> {
  await Promise.all(cluster.members.map((m) => stop(m.child, graceMs)));
  await stop(cluster.nats.child, graceMs);
  // Kept with --keep for post-mortems: what each node wrote on stderr (capped by processes.ts).
  for (const m of cluster.members)
    writeFileSync(join(cluster.dir, `${m.id}.stderr.log`), m.stderr());
}
