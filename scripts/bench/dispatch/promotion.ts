// scripts/bench/dispatch: one promotion run — primary, one server and one pool node; presentities
// published first, then watchers until every active server is above max-load; times the promotion.

import { mkdtempSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { Decision } from "../../../actors/supervisor/supervisor.js";
import { runSipp } from "../sipp.js";
import { type DispatchContext, parseArrivals } from "./arrival.js";
import {
  type Cluster,
  crashOf,
  decisionsOf,
  exitOf,
  type Member,
  startCluster,
  stopCluster,
  supervisorOf,
  viewOf,
  WaitAborted,
  waitUntil,
} from "./cluster.js";
import { type PublishOutcome, publishPresentities } from "./publisher.js";

export interface PromotionOptions {
  presentities: number;
  bodyBytes: number;
  /** PUBLISHes in flight at most while the presentities are set up. */
  concurrency: number;
  maxLoad: number;
  /** New watchers per second while the load is pushed over max-load. */
  watcherRate: number;
  /** Watchers sent beyond the number that puts both active servers above max-load (they keep
   * arriving during the promotion; those after it show where new watchers go). */
  extraWatchers: number;
  syncBatch: number;
  /** Give up on the promotion after this long from the first watcher. */
  timeoutMs: number;
}

export interface PromotionRun {
  run: number;
  /** 1-minute load average when the run began. */
  load: number;
  publish: PublishOutcome;
  /** Publications each node holds before the watchers come (homes by rendezvous hashing). */
  publicationsBefore: Record<string, number>;
  watchers: { calls: number; successful: number; failed: number; onPromoted: number };
  /** The supervisor's decisions (ISO times on the primary's clock) and the loads it saw. */
  promote?: Decision;
  promoted?: Decision;
  /** promote → promoted, ms: the promoted server's INVITE, SUBSCRIBE, NOTIFY batches, INFO ready. */
  promotionMs?: number;
  /** The primary's log line "presence data delivered to the promoted server" (logged once the
   * answer to the last batch is back, so usually a little after "promoted"). */
  delivered?: { at: string; presentities: number; batches: number };
  /** promote → the pool node's "role changed" log line: last batch imported, it becomes a server, ms. */
  importedMs?: number;
  /** What the promoted node holds once its counts stop changing. */
  promotedHolds?: { presentities: number; publications: number; subscriptions: number };
  /** Presentities whose home rendezvous hashing moves to the promoted node: about 1/3. */
  expectedShare: number;
  error?: string;
  /** Warnings and errors the nodes logged (first few). */
  warnings: string[];
  /** Nodes that exited by themselves, with the start of what they wrote on stderr. */
  nodeExits: string[];
}

interface LogLine {
  time?: string;
  level?: string;
  msg?: string;
  [field: string]: unknown;
}

function logLines(member: Member): LogLine[] {
  const out: LogLine[] = [];
  for (const line of member.stderr().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // A line cut by the stderr cap.
    }
  }
  return out;
}

function warningsOf(members: readonly Member[]): string[] {
  return members.flatMap((m) =>
    logLines(m)
      .filter((l) => l.level === "warn" || l.level === "error")
      .slice(0, 3)
      .map((l) => `${m.id}: ${l.msg ?? ""} ${JSON.stringify(l).slice(0, 200)}`),
  );
}

/** Waits until `read` gives the same number twice 500 ms apart (bounded). */
async function settled(read: () => Promise<number>, timeoutMs: number): Promise<void> {
  let before = -1;
  await waitUntil(
    async () => {
      const now = await read();
      const same = now === before;
      before = now;
      return same ? true : undefined;
    },
    timeoutMs,
    () => "for the promoted node's counts to settle",
    500,
  ).catch(() => undefined);
}

export async function runPromotion(
  ctx: DispatchContext,
  options: PromotionOptions,
  run: number,
): Promise<PromotionRun> {
  const load = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(ctx.scratch, `promotion-${run}-`));
  const info = ["--log-level", "info"];
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster({
      cli: ctx.cli,
      dir,
      members: [
        { id: "p", role: "primary", options: info },
        { id: "s1", role: "server" },
        { id: "q1", role: "pool", options: info },
      ],
      options: [
        "--max-load",
        String(options.maxLoad),
        "--min-load",
        "0",
        "--scale-in-after",
        "86400000",
        "--sync-batch",
        String(options.syncBatch),
      ],
      readyTimeoutMs: 20_000,
      natsMaxPayload: ctx.natsMaxPayload,
    });
    const primary = cluster.primary;
    const s1 = cluster.member("s1");
    const q1 = cluster.member("q1");
    const prefix = `r${run}u`;

    const publish = await publishPresentities({
      ports: [primary.sipPort, s1.sipPort],
      prefix,
      count: options.presentities,
      bodyBytes: options.bodyBytes,
      concurrency: options.concurrency,
      expires: 3600,
      retries: 2,
      timeoutMs: 300_000,
    });
    const publicationsBefore: Record<string, number> = {};
    for (const m of cluster.members) {
      publicationsBefore[m.id] = (await viewOf(m).catch(() => undefined))?.publications ?? -1;
    }

    // Load = watchers / 10: p and s1 are above max-load once each has 10 × max-load + 1 watchers.
    const threshold = 2 * (Math.floor(options.maxLoad * 10) + 1);
    const calls = threshold + options.extraWatchers;
    const firstWatcher = Date.now();
    const watching = runSipp({
      scenario: join(ctx.scenarioDir, "watcher-arrive.xml"),
      dir,
      target: { host: "127.0.0.1", port: primary.sipPort },
      rate: options.watcherRate,
      calls,
      limit: Math.max(200, options.watcherRate),
      keys: { prefix, expires: 600 },
      timeoutMs: (calls / options.watcherRate) * 2_000 + 30_000,
    });
    let promotedDecision: Decision | undefined;
    let waitError: string | undefined;
    try {
      const members = cluster.members;
      promotedDecision = await waitUntil(
        async () => {
          const gone = members.find((m) => exitOf(m) !== undefined);
          if (gone) throw new WaitAborted(`${exitOf(gone)} ${crashOf(gone) ?? ""}`);
          return decisionsOf(await supervisorOf(primary), "promoted")[0];
        },
        options.timeoutMs,
        () =>
          `for the "promoted" decision (${Date.now() - firstWatcher} ms after the first watcher)`,
      );
    } catch (error) {
      waitError = error instanceof Error ? error.message : String(error);
    }
    const sipp = await watching;
    const view = await supervisorOf(primary).catch(() => undefined);
    const promote = view ? decisionsOf(view, "promote")[0] : undefined;
    const promoted = promotedDecision ?? (view ? decisionsOf(view, "promoted")[0] : undefined);
    const arrivals = parseArrivals(sipp.logLines);

    let promotedHolds: PromotionRun["promotedHolds"];
    if (promoted && exitOf(q1) === undefined) {
      await settled(async () => (await viewOf(q1)).publications, 10_000);
      const v = await viewOf(q1).catch(() => undefined);
      if (v) {
        promotedHolds = {
          presentities: v.presentities,
          publications: v.publications,
          subscriptions: v.subscriptions,
        };
      }
    }
    const line = logLines(primary).find(
      (l) => l.msg === "presence data delivered to the promoted server",
    );
    const delivered =
      line && typeof line.time === "string"
        ? {
            at: line.time,
            presentities: Number(line.presentities),
            batches: Number(line.batches),
          }
        : undefined;
    const roleChanged = logLines(q1).find((l) => l.msg === "role changed" && l.to === "server");
    const ms = (from: Decision | undefined, to: unknown): number | undefined =>
      from && typeof to === "string" ? Date.parse(to) - Date.parse(from.at) : undefined;
    const promotionMs = ms(promote, promoted?.at);
    const importedMs = ms(promote, roleChanged?.time);
    return {
      run,
      load,
      publish,
      publicationsBefore,
      watchers: {
        calls,
        successful: sipp.successful,
        failed: sipp.failed,
        onPromoted: arrivals.filter((a) => a.notifierPort === q1.sipPort).length,
      },
      ...(promote ? { promote } : {}),
      ...(promoted ? { promoted } : {}),
      ...(promotionMs !== undefined ? { promotionMs } : {}),
      ...(delivered ? { delivered } : {}),
      ...(importedMs !== undefined ? { importedMs } : {}),
      ...(promotedHolds ? { promotedHolds } : {}),
      expectedShare: Math.round(options.presentities / 3),
      ...(waitError ? { error: waitError } : {}),
      warnings: warningsOf(cluster.members),
      nodeExits: cluster.members.flatMap((m) => {
        const exit = exitOf(m);
        return exit ? [`${exit}${crashOf(m) ? `: ${crashOf(m)}` : ""}`] : [];
      }),
    };
  } finally {
    if (cluster) await stopCluster(cluster, 1_000);
  }
}
