// bootstrap: assembles one node — actor system, router, SIP endpoint, ingress, actors, admin HTTP —
// and takes it down cleanly (final NOTIFYs first, then sockets).

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { start as startActorSystem, stop as stopActorSystem } from "nact";
import { ALLOW, Ingress } from "../actors/ingress.js";
import { RESOURCE_KIND, spawnPresenceResource } from "../actors/presence-resource.js";
import { SERVER_ID, SERVER_KIND, spawnPresenceServer, WatchHub } from "../actors/server.js";
import {
  type NodeStats,
  newNodeStats,
  type PresenceSettings,
  type SipPort,
} from "../actors/services.js";
import { SUBSCRIBER_KIND, type SubscriberCommand, spawnSubscriber } from "../actors/subscriber.js";
import type { Address } from "../transport/envelope.js";
import { Router } from "../transport/router.js";
import { SipEndpoint } from "../transport/sip-endpoint.js";
import type { ActorTransport } from "../transport/transport.js";
import { type AdminServer, startAdmin } from "./admin.js";
import type { HostPort, NodeConfig, Role } from "./config.js";
import type { Logger } from "./log.js";

export interface NodeView {
  id: string;
  role: Role;
  sip: string;
  http: string;
  state: "ready" | "draining";
}

export interface ClusterView {
  node: NodeView;
  subscriptions: number;
  presentities: number;
  publications: number;
  nodes: NodeView[];
  stats: NodeStats & { watchedPresentities: number; pendingTransactions: number };
  mail: ReturnType<Router["stats"]>;
  sip: ReturnType<SipEndpoint["stats"]>;
}

export interface RunningNode {
  readonly id: string;
  readonly role: Role;
  readonly sip: HostPort;
  readonly http: HostPort;
  view(): ClusterView;
  /** Ends every subscription with a final NOTIFY, then closes sockets. Idempotent. */
  stop(): Promise<void>;
}

async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  return (await lookup(host, { family: 4 })).address;
}

export async function startNode(
  config: NodeConfig,
  deps: { transport: ActorTransport; log: Logger },
): Promise<RunningNode> {
  const log = deps.log.child({ node: config.id });
  const system = startActorSystem({ name: `presence-${config.id}` } as never);
  const router = new Router({
    nodeId: config.id,
    transport: deps.transport,
    log,
    askTimeoutMs: config.askTimeoutMs,
  });
  const stats = newNodeStats();
  const settings: PresenceSettings = {
    minExpires: config.minExpires,
    maxExpires: config.maxExpires,
    defaultExpires: config.defaultExpires,
    maxQueuedNotifies: config.maxQueuedNotifies,
    maxMailbox: config.maxMailbox,
  };
  const resourceOf = (presentity: string): Address =>
    router.address(RESOURCE_KIND, presentity, config.id);
  const serverOf = (node: string): Address => router.address(SERVER_KIND, SERVER_ID, node);
  const hub = new WatchHub(router, resourceOf, config.askTimeoutMs);
  const subscribers = new Set<string>();

  // The ingress is created before the endpoint so that no request arrives to a missing handler.
  let endpoint: SipEndpoint | undefined;
  const sip: SipPort = {
    respond: (tx, spec) => ingress.respond(tx, spec),
    request: async (request, hop) => {
      if (!endpoint) throw new Error("SIP endpoint not started");
      const address = await resolveHost(hop.address);
      return endpoint.request(request, { ...hop, address });
    },
    contact: (transport) =>
      `sip:${config.id}@${config.sip.host}:${endpoint?.port ?? config.sip.port};transport=${transport}`,
  };
  const ingress: Ingress = new Ingress({
    router,
    log,
    settings,
    hub,
    sip,
    resourceOf,
    askTimeoutMs: config.askTimeoutMs,
    spawnSubscriber: (address, init) => {
      subscribers.add(address.id);
      spawnSubscriber(
        {
          system,
          router,
          log,
          sip,
          stats,
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

  spawnPresenceServer({ system, router, log, stats, settings, hub });
  router.onDemand(RESOURCE_KIND, (address) =>
    spawnPresenceResource({ system, router, log, stats, settings, serverOf }, address),
  );

  endpoint = await SipEndpoint.listen(
    {
      host: config.sip.host,
      port: config.sip.port,
      maxMessageBytes: config.maxBodyBytes,
      log,
      timers: { t1: config.sipT1 },
    },
    (incoming) => ingress.handle(incoming),
  );
  const sipAddress: HostPort = { host: endpoint.host, port: endpoint.port };

  let state: NodeView["state"] = "ready";
  const nodeView = (): NodeView => ({
    id: config.id,
    role: config.role,
    sip: `${sipAddress.host}:${sipAddress.port}`,
    http: `${admin.host}:${admin.port}`,
    state,
  });
  const view = (): ClusterView => ({
    node: nodeView(),
    subscriptions: stats.subscriptions,
    presentities: stats.presentities,
    publications: stats.publications,
    nodes: [nodeView()],
    stats: {
      ...stats,
      watchedPresentities: hub.watchedPresentities(),
      pendingTransactions: ingress.pendingTransactions(),
    },
    mail: router.stats(),
    sip: sipStats(),
  });
  const sipStats = (): ReturnType<SipEndpoint["stats"]> => {
    if (!endpoint) throw new Error("SIP endpoint not started");
    return endpoint.stats();
  };

  let admin: AdminServer;
  try {
    admin = await startAdmin(config.http, { view, ready: () => state === "ready" }, log);
  } catch (error) {
    await endpoint.close();
    throw error;
  }
  ingress.open();
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
      const ending: SubscriberCommand = {
        type: "terminate",
        reason: "probation",
        retryAfter: config.shutdownRetryAfter,
      };
      log.info("shutting down: ending subscriptions", { subscriptions: subscribers.size });
      await Promise.allSettled(
        [...subscribers].map((id) =>
          router.ask(router.address(SUBSCRIBER_KIND, id), ending, config.shutdownTimeoutMs),
        ),
      );
      ingress.close();
      await endpoint?.close();
      await admin.close();
      router.close();
      await deps.transport.close();
      stopActorSystem(system);
      log.info("node stopped");
    })();
    return stopping;
  };

  return {
    id: config.id,
    role: config.role,
    sip: sipAddress,
    http: { host: admin.host, port: admin.port },
    view,
    stop,
  };
}
