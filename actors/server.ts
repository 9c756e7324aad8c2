// actors: PresenceServer, one per node, and the node's watch hub it drives.
// Receives one presence-changed message per node per change and hands it to that node's Subscribers.

import type { Ref } from "nact";
import type { Logger } from "../bootstrap/log.js";
import type { Address } from "../transport/envelope.js";
import type { Router } from "../transport/router.js";
import { type ActorHandle, spawnActor } from "./actor.js";
import { type ControlMail, type ControlReply, toMail } from "./control.js";
import {
  type PresenceChanged,
  type PresenceState,
  RESOURCE_KIND,
  type ResourceCommand,
  type ResourceSnapshot,
  type ServerRelease,
} from "./presence-resource.js";
import {
  answerControl,
  type ControlEvent,
  newServerControl,
  onControlEvent,
  type ServerControlDeps,
  type ServerControlState,
  stopReporting,
} from "./server-control.js";
import type { NodeStats, PresenceSettings } from "./services.js";
import type { SubscriberCommand } from "./subscriber.js";

export const SERVER_KIND = "server";

/** One page of exported presentity state; `next` is where the following page starts. */
export interface ExportPage {
  snapshots: ResourceSnapshot[];
  next: string | undefined;
}
export const SERVER_ID = "server";

// ---- mail protocol ----------------------------------------------------------------------------

export type ServerCommand =
  | PresenceChanged
  | ServerRelease
  /** A SIP request of the control session with the primary (ask, except ACK). */
  | ControlMail
  /**
   * The presentities homed here that move to `target` under `candidates`, in presentity order
   * after `after`, at most about `maxBytes` of them (ask): ExportPage.
   */
  | { type: "export"; candidates: string[]; target: string; after?: string; maxBytes: number }
  | ControlEvent;

// ---- the watch hub ----------------------------------------------------------------------------

/**
 * Which local Subscribers watch which presentity, and the latest state seen for each. The node
 * watches a presentity's home resource once, however many local subscriptions it has, so a
 * change costs one message per watching node rather than one per watcher.
 */
export class WatchHub {
  private readonly subscribers = new Map<string, Set<string>>();
  private readonly latest = new Map<string, PresenceState>();
  private readonly watching = new Map<string, Promise<void>>();

  constructor(
    private readonly router: Router,
    private readonly resourceOf: (presentity: string) => Address,
    private readonly askTimeoutMs: number,
  ) {}

  /** Adds a local Subscriber (by actor id) as a watcher of `presentity`. */
  add(presentity: string, subscriberId: string): void {
    let set = this.subscribers.get(presentity);
    if (!set) {
      set = new Set();
      this.subscribers.set(presentity, set);
    }
    set.add(subscriberId);
  }

  remove(presentity: string, subscriberId: string): void {
    const set = this.subscribers.get(presentity);
    if (!set?.delete(subscriberId) || set.size > 0) return;
    this.subscribers.delete(presentity);
    this.latest.delete(presentity);
    if (this.watching.delete(presentity)) {
      const unwatch: ResourceCommand = { type: "unwatch", node: this.router.nodeId };
      this.router.send(this.resourceOf(presentity), unwatch);
    }
  }

  /**
   * Makes sure this node watches the presentity's home resource and returns the newest state.
   * Rejects (MailError) when the home cannot be reached: the caller must not accept the
   * subscription then.
   */
  async watch(presentity: string): Promise<PresenceState> {
    let pending = this.watching.get(presentity);
    if (!pending) {
      const watch: ResourceCommand = { type: "watch", node: this.router.nodeId };
      const asked: Promise<void> = this.router
        .ask<PresenceState>(this.resourceOf(presentity), watch, this.askTimeoutMs)
        .then((state) => {
          this.remember(state);
        });
      this.watching.set(presentity, asked);
      asked.catch(() => {
        if (this.watching.get(presentity) === asked) this.watching.delete(presentity);
      });
      pending = asked;
    }
    await pending;
    const state = this.latest.get(presentity);
    if (!state) throw new Error(`no state for ${presentity} after watch`);
    return state;
  }

  /** A change from the home resource: fan out to the local Subscribers. */
  changed(state: PresenceState): void {
    if (!this.remember(state)) return;
    const set = this.subscribers.get(state.presentity);
    if (!set) return;
    const mail: SubscriberCommand = { type: "state", state };
    for (const id of set) this.router.send(this.router.address("subscriber", id), mail);
  }

  /**
   * Asks every watched presentity's home again for its state (watch is idempotent) and hands
   * anything newer to the local Subscribers: after a lost connection, changes may have been missed.
   */
  resync(): void {
    for (const presentity of this.subscribers.keys()) {
      const watch: ResourceCommand = { type: "watch", node: this.router.nodeId };
      this.router.ask<PresenceState>(this.resourceOf(presentity), watch, this.askTimeoutMs).then(
        (state) => this.changed(state),
        // An unreachable home is asked again at the next reconnect; its own changes still come.
        () => {},
      );
    }
  }

  watchedPresentities(): number {
    return this.subscribers.size;
  }

  private remember(state: PresenceState): boolean {
    const known = this.latest.get(state.presentity);
    if (known && known.version >= state.version) return false;
    this.latest.set(state.presentity, state);
    return true;
  }
}

// ---- actor ------------------------------------------------------------------------------------

export interface ServerDeps {
  system: Ref<unknown>;
  router: Router;
  log: Logger;
  stats: NodeStats;
  settings: PresenceSettings;
  hub: WatchHub;
  control: ServerControlDeps;
  /** Snapshots of the local presentities whose home under `candidates` is `target`. */
  exportFor: (
    candidates: string[],
    target: string,
    after: string | undefined,
    maxBytes: number,
  ) => Promise<ExportPage>;
}

export function spawnPresenceServer(deps: ServerDeps): ActorHandle {
  return spawnActor<ServerControlState, ServerCommand>(
    deps.system,
    deps.router,
    deps.router.address(SERVER_KIND, SERVER_ID),
    {
      receive(state, message, ctx) {
        switch (message.type) {
          case "presence-changed":
            deps.hub.changed(message);
            break;
          case "control": {
            const response = answerControl(state, deps.control, ctx, message.raw);
            if (response) ctx.reply({ raw: toMail(response).raw } satisfies ControlReply);
            break;
          }
          case "export":
            deps
              .exportFor(message.candidates, message.target, message.after, message.maxBytes)
              .then(
                (snapshots) => deps.router.reply(ctx.replyTo, { ok: true, value: snapshots }),
                (error: unknown) =>
                  deps.router.reply(ctx.replyTo, {
                    ok: false,
                    error: {
                      name: "Error",
                      code: "remote",
                      message: String(error),
                      retryable: true,
                    },
                  }),
              );
            break;
          case "report":
          case "drain-done":
          case "sync-subscribed":
            onControlEvent(state, deps.control, message);
            break;
          case "release": {
            // Only an actor that exists here holds state; asking the router would create one.
            const resource = deps.router.address(RESOURCE_KIND, message.presentity);
            if (deps.router.isBound(resource)) {
              // The mail itself is a valid ResourceCommand "release": the resource answers the ask.
              ctx.redirect(resource);
            } else {
              ctx.reply(null);
            }
            break;
          }
        }
        return state;
      },
      stopped(state) {
        stopReporting(state);
      },
    },
    newServerControl(),
    {
      maxMailbox: deps.settings.maxMailbox,
      log: deps.log,
      onCrash: () => {
        deps.stats.actorCrashes += 1;
      },
    },
  );
}
