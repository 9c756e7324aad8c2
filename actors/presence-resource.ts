// actors: PresenceResource, one per presentity on its home node — the single writer of its state.
// Owns the RFC 3903 publications, the composed PIDF (serialised once per version) and the watching nodes.

import type { Ref } from "nact";
import type { Logger } from "../bootstrap/log.js";
import { composePidf, neutralPidf, type PidfDocument } from "../protocol/pidf/pidf.js";
import {
  PublicationStore,
  type PublishRequest,
  type PublishResult,
} from "../protocol/presence/publications.js";
import { randomToken } from "../protocol/sip/headers.js";
import type { Address } from "../transport/envelope.js";
import type { Router } from "../transport/router.js";
import { type ActorContext, type ActorHandle, spawnActor } from "./actor.js";
import type { NodeStats, PresenceSettings } from "./services.js";

export const RESOURCE_KIND = "presence";

// ---- mail protocol ----------------------------------------------------------------------------

export type ResourceCommand =
  /** Apply a publication (ask): replies PublishOutcome. */
  | { type: "publish"; request: PublishRequest }
  /** A node starts watching (ask): replies PresenceState. */
  | { type: "watch"; node: string }
  | { type: "unwatch"; node: string }
  /** Internal: a publication may have expired. */
  | { type: "expire" };

export type PublishOutcome = PublishResult & { version: number };

/** The composed state of a presentity at one version; `body` is the serialised PIDF. */
export interface PresenceState {
  presentity: string;
  version: number;
  body: Buffer;
}

/** Sent once per watching node on every change, to that node's PresenceServer. */
export interface PresenceChanged extends PresenceState {
  type: "presence-changed";
}

// ---- actor ------------------------------------------------------------------------------------

interface ResourceState {
  presentity: string;
  store: PublicationStore;
  version: number;
  body: Buffer;
  /** Watching node id → number of watch requests not yet matched by unwatch. */
  watchers: Map<string, number>;
  timer: NodeJS.Timeout | undefined;
}

export interface ResourceDeps {
  system: Ref<unknown>;
  router: Router;
  log: Logger;
  stats: NodeStats;
  settings: PresenceSettings;
  /** Address of the PresenceServer of a node (where presence-changed mail goes). */
  serverOf: (node: string) => Address;
}

function compose(state: ResourceState): Buffer {
  const docs: PidfDocument[] = state.store.list().map((p) => p.document);
  return docs.length === 0 ? neutralPidf(state.presentity) : composePidf(state.presentity, docs);
}

function schedule(state: ResourceState, ctx: ActorContext): void {
  if (state.timer) clearTimeout(state.timer);
  state.timer = undefined;
  const next = state.store.nextExpiry();
  if (next === undefined) return;
  state.timer = setTimeout(() => ctx.tell({ type: "expire" }), Math.max(0, next - Date.now()) + 5);
}

function changed(state: ResourceState, deps: ResourceDeps): void {
  state.version += 1;
  state.body = compose(state);
  const mail: PresenceChanged = {
    type: "presence-changed",
    presentity: state.presentity,
    version: state.version,
    body: state.body,
  };
  for (const node of state.watchers.keys()) {
    if (node !== deps.router.nodeId) deps.stats.fanoutMessages += 1;
    deps.router.send(deps.serverOf(node), mail);
  }
}

function idle(state: ResourceState): boolean {
  return state.store.size === 0 && state.watchers.size === 0;
}

function presenceState(state: ResourceState): PresenceState {
  return { presentity: state.presentity, version: state.version, body: state.body };
}

export function spawnPresenceResource(deps: ResourceDeps, address: Address): ActorHandle {
  const presentity = address.id;
  deps.stats.presentities += 1;
  const initial: ResourceState = {
    presentity,
    store: new PublicationStore(() => randomToken(12)),
    // Versions stay monotonic across incarnations of the actor (it stops when idle).
    version: Date.now() * 1000,
    body: neutralPidf(presentity),
    watchers: new Map(),
    timer: undefined,
  };
  return spawnActor<ResourceState, ResourceCommand>(
    deps.system,
    deps.router,
    address,
    {
      receive(state, message, ctx) {
        switch (message.type) {
          case "publish": {
            const now = Date.now();
            const before = state.store.size;
            // Lapsed publications go first: their ETags must not be refreshed (412) nor composed.
            const lapsed = state.store.expire(now).length;
            const result = state.store.apply(message.request, now);
            deps.stats.publications += state.store.size - before;
            if (result.ok) deps.stats.publishesApplied += 1;
            if (lapsed > 0 || (result.ok && result.changed)) changed(state, deps);
            schedule(state, ctx);
            const outcome: PublishOutcome = { ...result, version: state.version };
            ctx.reply(outcome);
            break;
          }
          case "watch":
            state.watchers.set(message.node, (state.watchers.get(message.node) ?? 0) + 1);
            ctx.reply(presenceState(state));
            break;
          case "unwatch": {
            const count = (state.watchers.get(message.node) ?? 0) - 1;
            if (count > 0) state.watchers.set(message.node, count);
            else state.watchers.delete(message.node);
            break;
          }
          case "expire": {
            const expired = state.store.expire(Date.now());
            deps.stats.publications -= expired.length;
            if (expired.length > 0) changed(state, deps);
            schedule(state, ctx);
            break;
          }
        }
        if (idle(state)) ctx.stop();
        return state;
      },
      stopped(state) {
        if (state.timer) clearTimeout(state.timer);
        deps.stats.presentities -= 1;
        deps.stats.publications -= state.store.size;
      },
    },
    initial,
    {
      maxMailbox: deps.settings.maxMailbox,
      log: deps.log,
      onCrash: () => {
        deps.stats.actorCrashes += 1;
      },
    },
  );
}
