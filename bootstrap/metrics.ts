// bootstrap: the node's Prometheus metrics (prom-client), served as text on /metrics by the admin port.
// Counters are read from the node's own stats at scrape time, so hot paths only bump plain numbers.

import { performance } from "node:perf_hooks";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { NodeStats } from "../actors/services.js";
import type { SupervisorCounters } from "../actors/supervisor/supervisor.js";
import type { RouterStats } from "../transport/router.js";

/** What the metrics read from the node at each scrape. */
export interface MetricSources {
  stats: () => NodeStats;
  mail: () => RouterStats;
  /** Responses sent by the SIP ingress, keyed "<method> <status>". */
  sipResponses: () => ReadonlyMap<string, number>;
  /** This node's load level as last measured (0–100). */
  load: () => number;
  /** 1 when this server's control session with the primary is up (primary: always 1). */
  sessionUp: () => boolean;
  /** The supervisor's counters (primary only). */
  supervisor?: () => Promise<SupervisorCounters>;
}

export interface NodeMetrics {
  readonly registry: Registry;
  /** Records the age of a piece of mail received from another node. */
  mailLatency(ms: number): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; text: string }>;
}

/** Mail latency buckets in seconds: sub-millisecond local hops up to a congested second. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A counter whose value is set from a running total at scrape time. */
function totalOf(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Promise<number>,
): void {
  new Counter({
    name,
    help,
    registers: [registry],
    async collect() {
      this.reset();
      this.inc(await read());
    },
  });
}

function gaugeOf(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

export function createMetrics(
  labels: { node: string; role: string },
  sources: MetricSources,
): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: labels.node });
  collectDefaultMetrics({ register: registry });

  gaugeOf(
    registry,
    "presence_subscriptions",
    "Active watcher subscriptions on this node.",
    () => sources.stats().subscriptions,
  );
  gaugeOf(
    registry,
    "presence_publications",
    "Active publications held by presentities homed here.",
    () => sources.stats().publications,
  );
  gaugeOf(
    registry,
    "presence_presentities",
    "Presentities homed on this node.",
    () => sources.stats().presentities,
  );
  totalOf(
    registry,
    "presence_notifies_sent_total",
    "NOTIFY requests answered 2xx.",
    () => sources.stats().notifiesSent,
  );
  totalOf(
    registry,
    "presence_notifies_failed_total",
    "NOTIFY requests that failed or timed out.",
    () => sources.stats().notifiesFailed,
  );
  totalOf(
    registry,
    "presence_publishes_applied_total",
    "PUBLISH requests applied to a presentity.",
    () => sources.stats().publishesApplied,
  );
  totalOf(
    registry,
    "presence_actor_crashes_total",
    "Actor crashes (the actor resumed).",
    () => sources.stats().actorCrashes,
  );

  new Counter({
    name: "presence_sip_responses_total",
    help: "SIP responses sent by the ingress, by request method and status code.",
    labelNames: ["method", "status"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, count] of sources.sipResponses()) {
        const [method = "", status = ""] = key.split(" ");
        this.inc({ method, status }, count);
      }
    },
  });

  totalOf(
    registry,
    "presence_mail_sent_total",
    "Actor mail sent to another node.",
    () => sources.mail().remoteSent,
  );
  totalOf(
    registry,
    "presence_mail_received_total",
    "Actor mail received from another node.",
    () => sources.mail().remoteReceived,
  );
  totalOf(
    registry,
    "presence_mail_local_total",
    "Actor mail delivered to a mailbox on this node.",
    () => sources.mail().localDelivered,
  );
  totalOf(
    registry,
    "presence_mail_dropped_total",
    "Actor mail dropped (no actor, full mailbox, unreachable node).",
    () => sources.mail().dropped,
  );
  totalOf(
    registry,
    "presence_mail_ask_timeouts_total",
    "Asks that got no answer in time.",
    () => sources.mail().askTimeouts,
  );
  const latency = new Histogram({
    name: "presence_mail_latency_seconds",
    help: "Age of actor mail from another node when it arrives (envelope sentAt to receive).",
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  gaugeOf(
    registry,
    "presence_load_level",
    "This node's load level (0-100) as last measured.",
    sources.load,
  );
  let elu = performance.eventLoopUtilization();
  gaugeOf(
    registry,
    "presence_event_loop_utilization",
    "Event-loop utilisation (0-1) since the previous scrape.",
    () => {
      const now = performance.eventLoopUtilization();
      const value = performance.eventLoopUtilization(now, elu).utilization;
      elu = now;
      return value;
    },
  );
  gaugeOf(
    registry,
    "presence_control_session_up",
    `1 when the node's control session is up (role at start: ${labels.role}).`,
    () => (sources.sessionUp() ? 1 : 0),
  );

  const supervisor = sources.supervisor;
  if (supervisor) {
    let counters: Promise<SupervisorCounters> | undefined;
    // One ask per scrape, shared by the supervisor's counters.
    const read = (pick: (c: SupervisorCounters) => number) => async (): Promise<number> => {
      counters ??= supervisor().finally(() => {
        counters = undefined;
      });
      return pick(await counters);
    };
    totalOf(
      registry,
      "presence_promotions_total",
      "Pool servers promoted by the supervisor.",
      read((c) => c.promotions),
    );
    totalOf(
      registry,
      "presence_drains_total",
      "Servers drained by the supervisor (scale-in).",
      read((c) => c.drains),
    );
    totalOf(
      registry,
      "presence_placements_total",
      "Watchers placed by the supervisor.",
      read((c) => c.placed),
    );
    totalOf(
      registry,
      "presence_pool_exhausted_total",
      "Times the supervisor found no pool server to promote.",
      read((c) => c.poolExhausted),
    );
    totalOf(
      registry,
      "presence_servers_declared_dead_total",
      "Servers the supervisor declared dead.",
      read((c) => c.declaredDead),
    );
  }

  return {
    registry,
    mailLatency: (ms) => latency.observe(Math.max(0, ms) / 1000),
    render: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  };
}
