// actors: PresenceResource, one per presentity on its home node — the single writer of its state.
// Owns the RFC 3903 publications, the composed PIDF (serialised once per version) and the watching nodes.

import type { Ref } from "nact";
import type { Logger } from "../bootstrap/log.js";
import { composePidf, neutralPidf, type PidfDocument } from "../protocol/pidf/pidf.js";
import {
  type PublicationSnapshot,
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
  /** A node watches (ask, idempotent): replies PresenceState. Also how a node re-syncs. */
  | { type: "watch"; node: string }
  | { type: "unwatch"; node: string }
  /** Membership changed: move to `home` if that is another node, forget watchers not alive. */
  | { type: "rehome"; home: string; alive: string[] }
  /** State of this presentity from its previous home (ask): merged, replies null. */
  | { type: "adopt"; snapshot: ResourceSnapshot }
  /** The new home `to` asks for the state (ask): replies ResourceSnapshot | null, then forwards. */
  | { type: "release"; to: string }
  /** A copy of the state (ask): replies ResourceSnapshot; nothing changes here. */
  | { type: "snapshot" }
  /** Internal: a publication may have expired. */
  | { type: "expire" };

/** Everything a presentity's home holds, as data that can move to another node. */
export interface ResourceSnapshot {
  presentity: string;
  version: number;
  publications: PublicationSnapshot;
  watchers: string[];
}

export type PublishOutcome = PublishResult & { version: number };

/** Internal: how a handoff ended. */
type MoveResult =
  | { type: "moved"; home: string }
  | { type: "move-failed"; home: string; error: string };

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
  /** Ids of the nodes watching (each node watches once, however many subscribers it has). */
  watchers: Set<string>;
  timer: NodeJS.Timeout | undefined;
  /** Set once the state went to another home: mail that still arrives here follows it. */
  movedTo: string | undefined;
  /** A handoff to this node is under way (ask in flight). */
  moving: string | undefined;
  /** False until the state was asked of the previous home (right after a membership change). */
  settled: boolean;
}

export interface ResourceDeps {
  system: Ref<unknown>;
  router: Router;
  log: Logger;
  stats: NodeStats;
  settings: PresenceSettings;
  /** Address of the PresenceServer of a node (where presence-changed mail goes). */
  serverOf: (node: string) => Address;
  /** Called when the actor stops (idle, or after its state moved). */
  released: (presentity: string) => void;
  /** The node that was this presentity's home just before the last membership change, if another. */
  previousHomeOf: (presentity: string) => string | undefined;
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
  return state.store.size === 0 && state.watchers.size === 0 && state.moving === undefined;
}

function snapshotOf(state: ResourceState): ResourceSnapshot {
  return {
    presentity: state.presentity,
    version: state.version,
    publications: state.store.snapshot(),
    watchers: [...state.watchers],
  };
}

/**
 * Takes in state handed over by a previous home. The previous home was authoritative until it
 * handed over, so a snapshot newer than what we hold replaces our publications; an older one
 * (a push overtaken by a pull) only adds what we lack, and that is a change to notify.
 * Watching nodes are always joined. A replaced state keeps its version: the watching nodes
 * already have it, so nothing is sent.
 */
function adopt(state: ResourceState, snapshot: ResourceSnapshot, deps: ResourceDeps): void {
  const before = state.store.size;
  for (const node of snapshot.watchers) state.watchers.add(node);
  if (snapshot.version > state.version) {
    state.store.restore(snapshot.publications);
    state.version = snapshot.version;
    state.body = compose(state);
    deps.stats.publications += state.store.size - before;
    return;
  }
  const added = state.store.merge(snapshot.publications);
  deps.stats.publications += state.store.size - before;
  if (added > 0) changed(state, deps);
}

/**
 * A new home asks the previous one for the state before it serves the presentity, so that a
 * request arriving before the previous home's own handoff never sees an empty presentity (a
 * refresh would get 412). Unreachable or empty previous home: the state starts here.
 */
async function pull(state: ResourceState, ctx: ActorContext, deps: ResourceDeps): Promise<void> {
  state.settled = true;
  const previous = deps.previousHomeOf(state.presentity);
  if (previous === undefined) return;
  const release: ServerRelease = {
    type: "release",
    presentity: state.presentity,
    to: deps.router.nodeId,
  };
  try {
    const snapshot = await deps.router.ask<ResourceSnapshot | null>(
      deps.serverOf(previous),
      release,
    );
    if (snapshot) adopt(state, snapshot, deps);
  } catch (error) {
    ctx.log.info("previous home did not hand the presentity over; starting here", {
      previous,
      error: String(error),
    });
  }
}

/** Asked of a node's PresenceServer: hand over this presentity's state if it lives here. */
export interface ServerRelease {
  type: "release";
  presentity: string;
  to: string;
}

/**
 * Sends the state to its new home and, once that home has it, turns this actor into a
 * forwarder. A failed handoff keeps the state here; the next membership change retries.
 */
function becomeForwarder(state: ResourceState, home: string, deps: ResourceDeps): void {
  state.moving = undefined;
  state.movedTo = home;
  if (state.timer) clearTimeout(state.timer);
  state.timer = undefined;
  deps.stats.publications -= state.store.size;
  deps.stats.resourcesMoved += 1;
}

function handOff(state: ResourceState, home: string, ctx: ActorContext, deps: ResourceDeps): void {
  state.moving = home;
  const adopt: ResourceCommand = { type: "adopt", snapshot: snapshotOf(state) };
  const to = deps.router.address(RESOURCE_KIND, state.presentity, home);
  deps.router.ask(to, adopt, undefined, { pinned: true }).then(
    () => ctx.tell({ type: "moved", home }),
    (error: unknown) => ctx.tell({ type: "move-failed", home, error: String(error) }),
  );
}

function presenceState(state: ResourceState): PresenceState {
  return { presentity: state.presentity, version: state.version, body: state.body };
}

/** Handles one piece of mail at the home, once its state is settled. */
function handle(
  state: ResourceState,
  message: ResourceCommand | MoveResult,
  ctx: ActorContext,
  deps: ResourceDeps,
): ResourceState {
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
      state.watchers.add(message.node);
      ctx.reply(presenceState(state));
      break;
    case "unwatch":
      state.watchers.delete(message.node);
      break;
    case "rehome": {
      const alive = new Set(message.alive);
      for (const node of state.watchers) if (!alive.has(node)) state.watchers.delete(node);
      if (message.home !== deps.router.nodeId && state.moving === undefined) {
        handOff(state, message.home, ctx, deps);
      }
      break;
    }
    case "adopt":
      adopt(state, message.snapshot, deps);
      schedule(state, ctx);
      ctx.reply(null);
      break;
    case "snapshot":
      ctx.reply(snapshotOf(state));
      break;
    case "release":
      if (message.to === deps.router.nodeId) {
        ctx.reply(null);
        break;
      }
      ctx.reply(snapshotOf(state));
      becomeForwarder(state, message.to, deps);
      break;
    case "moved":
      if (state.moving !== message.home) break;
      becomeForwarder(state, message.home, deps);
      break;
    case "move-failed":
      if (state.moving !== message.home) break;
      state.moving = undefined;
      ctx.log.warn("presentity could not move home; kept here", {
        home: message.home,
        error: message.error,
      });
      break;
    case "expire": {
      const expired = state.store.expire(Date.now());
      deps.stats.publications -= expired.length;
      if (expired.length > 0) changed(state, deps);
      schedule(state, ctx);
      break;
    }
  }
  if (state.movedTo !== undefined || idle(state)) ctx.stop();
  return state;
}

export function spawnPresenceResource(deps: ResourceDeps, address: Address): ActorHandle {
  const presentity = address.id;
  deps.stats.presentities += 1;
  const initial: ResourceState = {
    presentity,
    store: new PublicationStore(() => randomToken(12)),
    // An actor stops only when idle (no publication, no watching node), so no node holds an
    // older version of it: each incarnation counts from 0, and state handed over keeps its own.
    version: 0,
    body: neutralPidf(presentity),
    watchers: new Set(),
    timer: undefined,
    movedTo: undefined,
    moving: undefined,
    settled: false,
  };
  return spawnActor<ResourceState, ResourceCommand | MoveResult>(
    deps.system,
    deps.router,
    address,
    {
      async receive(state, message: ResourceCommand | MoveResult, ctx) {
        if (state.movedTo !== undefined) {
          // Not the home any more: mail queued before the move follows the state (reply
          // target included); once the mailbox is empty the actor goes, and the router
          // forwards later mail to the new home by placement.
          if (message.type === "release") ctx.reply(null);
          else if (
            message.type !== "expire" &&
            message.type !== "moved" &&
            message.type !== "move-failed"
          ) {
            ctx.forward(state.movedTo);
          }
          ctx.stop();
          return state;
        }
        if (state.settled) return handle(state, message, ctx, deps);
        await pull(state, ctx, deps);
        // The await left the mail's trace context behind: its handling goes on in it.
        return ctx.resume(() => handle(state, message, ctx, deps));
      },
      stopped(state) {
        if (state.timer) clearTimeout(state.timer);
        deps.stats.presentities -= 1;
        if (state.movedTo === undefined) deps.stats.publications -= state.store.size;
        deps.released(presentity);
      },
    },
    initial,
    {
      maxMailbox: deps.settings.maxMailbox,
      log: deps.log,
      onCrash: () => {
        deps.stats.actorCrashes += 1;
      },
      traceAttributes: { "presence.presentity": presentity },
    },
  );
}
