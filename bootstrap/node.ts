// bootstrap: assembles one node — actor system, router, SIP endpoint, ingress, actors, admin HTTP —
// and takes it down cleanly (final NOTIFYs first, then sockets).

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { performance } from "node:perf_hooks";
import { start as startActorSystem, stop as stopActorSystem } from "nact";
import { ALLOW, Ingress } from "../actors/ingress.js";
import {
  RESOURCE_KIND,
  type ResourceCommand,
  type ResourceSnapshot,
  spawnPresenceResource,
} from "../actors/presence-resource.js";
import { SERVER_ID, SERVER_KIND, spawnPresenceServer, WatchHub } from "../actors/server.js";
import {
  type NodeStats,
  newNodeStats,
  type PresenceSettings,
  type SipPort,
  WatcherTally,
} from "../actors/services.js";
import { SourceManager, type SourceView } from "../actors/sources/manager.js";
import { loadSources } from "../actors/sources/registry.js";
import { SUBSCRIBER_KIND, type SubscriberCommand, spawnSubscriber } from "../actors/subscriber.js";
import {
  type PlaceAnswer,
  SUPERVISOR_ID,
  SUPERVISOR_KIND,
  type SupervisorCommand,
  type SupervisorView,
  spawnSupervisor,
} from "../actors/supervisor/supervisor.js";
import type { Address } from "../transport/envelope.js";
import type { MemberInfo } from "../transport/membership.js";
import { homeOf } from "../transport/placement.js";
import { Router } from "../transport/router.js";
import { SipEndpoint } from "../transport/sip-endpoint.js";
import { keepTrace, type SpanAttributes } from "../transport/tracing.js";
import type { ActorTransport } from "../transport/transport.js";
import { type AdminServer, startAdmin } from "./admin.js";
import type { HostPort, NodeConfig, Role } from "./config.js";
import { Homes } from "./homes.js";
import type { Logger } from "./log.js";
import { createMetrics } from "./metrics.js";

export type NodeView = Omit<MemberInfo, "role"> & { role: Role };

export interface ClusterView {
  node: NodeView;
  subscriptions: number;
  presentities: number;
  publications: number;
  nodes: NodeView[];
  /** The nodes presentities are placed on, as this node sees them. */
  homes: string[];
  /** This node's load level as it reports it. */
  load: number;
  /** On the primary: the supervisor's load table, pool, assignments and last decisions. */
  supervisor?: SupervisorView;
  stats: NodeStats & { watchedPresentities: number; pendingTransactions: number };
  mail: ReturnType<Router["stats"]>;
  sip: ReturnType<SipEndpoint["stats"]>;
  /** Presence sources: where each runs and how it does on this node. */
  sources: SourceView[];
}

export interface RunningNode {
  readonly id: string;
  /** The role the node started with (a pool node may be promoted, a server drained). */
  readonly role: Role;
  readonly sip: HostPort;
  readonly http: HostPort;
  view(): Promise<ClusterView>;
  /** Ends every subscription with a final NOTIFY, then closes sockets. Idempotent. */
  stop(): Promise<void>;
}

/** Subscriptions ended per batch when a server drains (RFC 6665 deactivated: they come back at once). */
const DRAIN_BATCH = 50;

/** Waits until every local presentity has moved to its new home (or the time is up). */
async function handedOff(resources: ReadonlySet<string>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (resources.size > 0 && Date.now() < deadline) {
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
  }
}

/** The default load metric: watched resources (subscriptions) / 10 (DESIGN.md §4). */
const WATCHERS_PER_LOAD = 10;
/** How long a presence source's publication lasts between refreshes (within the expiry bounds). */
const SOURCE_PUBLICATION_SECONDS = 300;

async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  return (await lookup(host, { family: 4 })).address;
}

export async function startNode(
  config: NodeConfig,
  deps: { transport: ActorTransport; log: Logger },
): Promise<RunningNode> {
  const log = deps.log.child({ node: config.id });
  // Bad source modules or options stop the node before it binds anything.
  const loadedSources = await loadSources(config);
  const system = startActorSystem({ name: `presence-${config.id}` } as never);
  // One object per role: the spans of a chunk posted to the export worker share it (cloned once).
  const nodeAttributes = new Map<Role, SpanAttributes>();
  const spanAttributes = (): SpanAttributes => {
    let attributes = nodeAttributes.get(role);
    if (!attributes) {
      attributes = { "presence.node.id": config.id, "presence.node.role": role };
      nodeAttributes.set(role, attributes);
    }
    return attributes;
  };
  const router = new Router({
    nodeId: config.id,
    transport: deps.transport,
    log,
    askTimeoutMs: config.askTimeoutMs,
    mailLatency: (ms) => metrics.mailLatency(ms),
    spanAttributes,
    traceLocalMail: config.traceMail === "all",
  });
  const stats = newNodeStats();
  const watchers = new WatcherTally();
  const settings: PresenceSettings = {
    minExpires: config.minExpires,
    maxExpires: config.maxExpires,
    defaultExpires: config.defaultExpires,
    maxQueuedNotifies: config.maxQueuedNotifies,
    maxMailbox: config.maxMailbox,
  };
  const homes = new Homes(config.id);
  router.placed(RESOURCE_KIND, (presentity) => homes.homeOf(presentity));
  const resourceOf = (presentity: string): Address =>
    router.address(RESOURCE_KIND, presentity, homes.homeOf(presentity));
  const resources = new Set<string>();
  const serverOf = (node: string): Address => router.address(SERVER_KIND, SERVER_ID, node);
  const hub = new WatchHub(router, resourceOf, config.askTimeoutMs);
  const subscribers = new Set<string>();
  let role: Role = config.role;
  let sessionUp = false;
  const supervisorAddress = (node: string): Address =>
    router.address(SUPERVISOR_KIND, SUPERVISOR_ID, node);
  const metrics = createMetrics(
    { node: config.id, role: config.role },
    {
      stats: () => stats,
      mail: () => router.stats(),
      sipResponses: () => ingress.responseCounts(),
      load: () => lastLoad,
      sessionUp: () => role === "primary" || sessionUp,
      ...(config.role === "primary"
        ? {
            supervisor: async () =>
              (
                await router.ask<SupervisorView>(
                  supervisorAddress(config.id),
                  { type: "inspect" } satisfies SupervisorCommand,
                  config.askTimeoutMs,
                )
              ).counters,
          }
        : {}),
    },
  );
  const primaryMember = (): MemberInfo | undefined =>
    deps.transport.members().find((m) => m.role === "primary");

  // What one new watcher adds to a load level at the least, until a report shows its real weight.
  const loadPerWatcher = config.loadMetric === "watchers" ? 1 / WATCHERS_PER_LOAD : 0.5;
  let elu = performance.eventLoopUtilization();
  let lastLoad = 0;
  const loadLevel = (): number => {
    if (config.loadMetric === "watchers") {
      lastLoad = stats.subscriptions / WATCHERS_PER_LOAD;
      return lastLoad;
    }
    const now = performance.eventLoopUtilization();
    lastLoad = performance.eventLoopUtilization(now, elu).utilization * 100;
    elu = now;
    return lastLoad;
  };
  const sources = new SourceManager({
    system,
    router,
    log,
    maxMailbox: config.maxMailbox,
    askTimeoutMs: config.askTimeoutMs,
    resourceOf,
    publicationSeconds: Math.min(
      Math.max(SOURCE_PUBLICATION_SECONDS, config.minExpires),
      config.maxExpires,
    ),
    backoff: { initialMs: config.sourceBackoffMs, maxMs: config.sourceBackoffMaxMs },
    sources: loadedSources,
    placement: homes,
    settleMs: config.heartbeatMs,
  });

  // The ingress is created before the endpoint so that no request arrives to a missing handler.
  let endpoint: SipEndpoint | undefined;
  const advertised = (): HostPort =>
    config.sipAdvertise ?? { host: config.sip.host, port: endpoint?.port ?? config.sip.port };
  const sip: SipPort = {
    respond: (tx, spec) => ingress.respond(tx, spec),
    request: (request, hop) => {
      // The host is resolved first: the transaction's span stays in the caller's trace.
      const send = keepTrace((address: string) => {
        if (!endpoint) throw new Error("SIP endpoint not started");
        return endpoint.request(request, { ...hop, address });
      });
      return resolveHost(hop.address).then(send);
    },
    contact: (transport) =>
      `sip:${config.id}@${advertised().host}:${advertised().port};transport=${transport}`,
  };
  const ingress: Ingress = new Ingress({
    router,
    log,
    settings,
    hub,
    sip,
    resourceOf,
    askTimeoutMs: config.askTimeoutMs,
    role: () => role,
    sessionUp: () => sessionUp,
    dispatchMode: config.dispatch,
    place: (watcher) =>
      router.ask<PlaceAnswer>(
        supervisorAddress(config.id),
        { type: "place", watcher } satisfies SupervisorCommand,
        config.askTimeoutMs,
      ),
    primarySip: () => primaryMember()?.sip,
    spawnSubscriber: (address, init) => {
      subscribers.add(address.id);
      spawnSubscriber(
        {
          system,
          router,
          log,
          sip,
          stats,
          watchers,
          settings,
          released: (presentity, self) => {
            subscribers.delete(self.id);
            hub.remove(presentity, self.id);
          },
        },
        address,
        init,
      );
    },
  });

  // `timeoutMs` bounds the whole procedure, not each batch: shutdown takes at most that long.
  const endSubscriptions = async (ending: SubscriberCommand, timeoutMs: number): Promise<void> => {
    const ids = [...subscribers];
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < ids.length; i += DRAIN_BATCH) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await Promise.allSettled(
        ids
          .slice(i, i + DRAIN_BATCH)
          .map((id) => router.ask(router.address(SUBSCRIBER_KIND, id), ending, left)),
      );
    }
  };

  spawnPresenceServer({
    system,
    router,
    log,
    stats,
    settings,
    hub,
    control: {
      router,
      log,
      reportIntervalMs: config.reportIntervalMs,
      significantLoad: Math.max(0.1, config.maxLoad / 10),
      askTimeoutMs: config.askTimeoutMs,
      supervisorOf: supervisorAddress,
      loadLevel,
      users: () => watchers.size,
      hasUser: (user) => watchers.has(user),
      loadPerWatcher,
      sessionChanged: (up) => {
        sessionUp = up;
      },
      setRole: (next) => {
        if (role === next) return;
        log.info("role changed", { from: role, to: next });
        role = next;
        deps.transport.announce(nodeView());
      },
      endSubscriptions: () =>
        endSubscriptions({ type: "terminate", reason: "deactivated" }, config.shutdownTimeoutMs),
      resourcesGone: () => handedOff(resources, config.shutdownTimeoutMs),
      importSnapshots: async (snapshots) => {
        await Promise.all(
          snapshots.map((snapshot) =>
            router.ask(
              router.address(RESOURCE_KIND, snapshot.presentity),
              { type: "adopt", snapshot } satisfies ResourceCommand,
              config.askTimeoutMs,
              { pinned: true },
            ),
          ),
        );
      },
    },
    exportFor: async (candidates, target, after, maxBytes) => {
      const moving = [...resources]
        .filter((p) => homeOf(p, candidates) === target && (after === undefined || p > after))
        .sort();
      const page: ResourceSnapshot[] = [];
      let bytes = 0;
      for (const presentity of moving) {
        const snapshot = await router
          .ask<ResourceSnapshot>(router.address(RESOURCE_KIND, presentity), { type: "snapshot" })
          .catch(() => undefined);
        if (!snapshot || snapshot.publications.publications.length === 0) continue;
        // Pages stay well under NATS's max_payload (1 MB by default), however large the documents.
        bytes += JSON.stringify(snapshot).length;
        if (page.length > 0 && bytes > maxBytes)
          return { snapshots: page, next: page.at(-1)?.presentity };
        page.push(snapshot);
      }
      return { snapshots: page, next: undefined };
    },
  });
  router.onDemand(RESOURCE_KIND, (address) => {
    resources.add(address.id);
    return spawnPresenceResource(
      {
        system,
        router,
        log,
        stats,
        settings,
        serverOf,
        released: (presentity) => resources.delete(presentity),
        previousHomeOf: (presentity) => homes.previousHomeOf(presentity),
      },
      address,
    );
  });

  endpoint = await SipEndpoint.listen(
    {
      host: config.sip.host,
      port: config.sip.port,
      maxMessageBytes: config.maxBodyBytes,
      udpReceiveBufferBytes: config.udpBufferBytes,
      log,
      timers: { t1: config.sipT1 },
      spanAttributes: router.spanAttributes,
    },
    (incoming) => ingress.handle(incoming),
  );
  const sipAddress: HostPort = config.sipAdvertise ?? { host: endpoint.host, port: endpoint.port };
  if (config.role === "primary") {
    spawnSupervisor({
      system,
      router,
      log,
      stats,
      settings: {
        maxLoad: config.maxLoad,
        minLoad: config.minLoad,
        deadAfterMs: config.deadAfterMs,
        scaleInAfterMs: config.scaleInAfterMs,
        cooldownMs: config.scaleCooldownMs,
        dispatch: config.dispatch,
        reportIntervalMs: config.reportIntervalMs,
        loadPerWatcher,
        syncBatch: config.syncBatch,
        askTimeoutMs: config.askTimeoutMs,
        maxMailbox: config.maxMailbox,
      },
      localLoad: loadLevel,
      localUsers: () => watchers.size,
      localHas: (watcher) => watchers.has(watcher),
      localSip: () => `${sipAddress.host}:${sipAddress.port}`,
      serverOf,
    });
  }

  let state: NodeView["state"] = "ready";
  const startedAt = Date.now();
  const nodeView = (): NodeView => ({
    id: config.id,
    role,
    sip: `${sipAddress.host}:${sipAddress.port}`,
    http: `${admin.host}:${admin.port}`,
    state,
    startedAt,
  });
  const view = async (): Promise<ClusterView> => ({
    node: nodeView(),
    subscriptions: stats.subscriptions,
    presentities: stats.presentities,
    publications: stats.publications,
    nodes: deps.transport.members().map((m) => ({ ...m, role: m.role as Role })),
    homes: [...homes.list()],
    load: Math.round(loadLevel() * 100) / 100,
    ...(config.role === "primary"
      ? {
          supervisor: await router.ask<SupervisorView>(
            supervisorAddress(config.id),
            { type: "inspect" } satisfies SupervisorCommand,
            config.askTimeoutMs,
          ),
        }
      : {}),
    stats: {
      ...stats,
      watchedPresentities: hub.watchedPresentities(),
      pendingTransactions: ingress.pendingTransactions(),
    },
    mail: router.stats(),
    sip: sipStats(),
    sources: sources.view(),
  });
  const sipStats = (): ReturnType<SipEndpoint["stats"]> => {
    if (!endpoint) throw new Error("SIP endpoint not started");
    return endpoint.stats();
  };

  // A change of the candidate set moves the presentities whose home changed, state and all.
  const rehome = (members: readonly MemberInfo[]): void => {
    if (!homes.update(members)) return;
    sources.placementChanged();
    const alive = members.map((m) => m.id);
    log.info("presentity homes changed", { candidates: homes.list(), local: resources.size });
    for (const presentity of resources) {
      const command: ResourceCommand = { type: "rehome", home: homes.homeOf(presentity), alive };
      router.send(router.address(RESOURCE_KIND, presentity), command);
    }
  };
  deps.transport.onMembersChanged((members) => {
    if (config.role === "primary") {
      router.send(supervisorAddress(config.id), {
        type: "members",
        members: [...members],
      } satisfies SupervisorCommand);
    }
    rehome(members);
  });
  deps.transport.onReconnected(() => hub.resync());

  let admin: AdminServer;
  try {
    admin = await startAdmin(
      config.http,
      {
        view,
        ready: () => state === "ready",
        readyForWatchers: () => {
          if (state !== "ready") return { ready: false, status: state };
          if (role === "pool") return { ready: false, status: "pool" };
          if (role === "server" && !sessionUp) return { ready: false, status: "no-session" };
          return { ready: true, status: "ok" };
        },
        metrics: () => metrics.render(),
        source: (name, request) => sources.http(name, request),
      },
      log,
    );
  } catch (error) {
    await endpoint.close();
    throw error;
  }
  ingress.open();
  deps.transport.announce(nodeView());
  sources.open();
  log.info("node ready", {
    role: config.role,
    sip: `${sipAddress.host}:${sipAddress.port}`,
    http: `${admin.host}:${admin.port}`,
    allow: ALLOW,
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      state = "draining";
      ingress.drain();
      deps.transport.announce(nodeView());
      // Sources go first, handing their publications to their next home.
      await sources.close();
      // In a cluster the watcher should come back through the primary at once (deactivated);
      // alone, it should wait a while (probation) for the node to come back.
      const inCluster = homes.othersCanHost();
      const ending: SubscriberCommand = inCluster
        ? { type: "terminate", reason: "deactivated" }
        : { type: "terminate", reason: "probation", retryAfter: config.shutdownRetryAfter };
      log.info("shutting down: ending subscriptions", {
        subscriptions: subscribers.size,
        reason: ending.reason,
      });
      await endSubscriptions(ending, config.shutdownTimeoutMs);
      if (inCluster) await handedOff(resources, config.shutdownTimeoutMs);
      ingress.close();
      await endpoint?.close();
      await admin.close();
      router.close();
      await deps.transport.close();
      stopActorSystem(system);
      log.info("node stopped", { presentitiesLeft: resources.size });
    })();
    return stopping;
  };

  return {
    id: config.id,
    role: config.role,
    sip: { host: endpoint.host, port: endpoint.port },
    http: { host: admin.host, port: admin.port },
    view,
    stop,
  };
}
