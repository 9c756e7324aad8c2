// actors: Subscriber, one per SIP subscription dialog, on the node that accepted the subscription.
// Owns the dialog, the RFC 6665 state machine, expiry, and NOTIFYs sent one at a time in CSeq order.

import type { Ref } from "nact";
import type { Logger } from "../bootstrap/log.js";
import { PIDF_CONTENT_TYPE } from "../protocol/pidf/pidf.js";
import {
  acceptInDialogRequest,
  buildInDialogRequest,
  type Dialog,
  nextHop,
} from "../protocol/sip/dialog.js";
import type { Peer } from "../protocol/sip/message.js";
import {
  initialSubscription,
  type SubscriptionAction,
  type SubscriptionEvent,
  type SubscriptionState,
  step,
  type TerminationReason,
} from "../protocol/sip/subscription.js";
import type { Address, ReplyTo } from "../transport/envelope.js";
import type { Router } from "../transport/router.js";
import { type ActorContext, type ActorHandle, spawnActor } from "./actor.js";
import type { PresenceState } from "./presence-resource.js";
import type { NodeStats, PresenceSettings, SipPort, WatcherTally } from "./services.js";

export const SUBSCRIBER_KIND = "subscriber";

// ---- mail protocol ----------------------------------------------------------------------------

export type SubscriberCommand =
  /** The dialog-creating SUBSCRIBE: answer transaction `tx`, then send the first NOTIFY. */
  | { type: "subscribe"; tx: string; expires: number; state: PresenceState }
  /** An in-dialog SUBSCRIBE (refresh or Expires: 0). */
  | {
      type: "refresh";
      tx: string;
      expires: number;
      cseq: number;
      contact: string | undefined;
    }
  /** The presentity changed (from this node's PresenceServer). */
  | { type: "state"; state: PresenceState }
  /** End the subscription with a final NOTIFY (ask: replies once the NOTIFY is answered). */
  | { type: "terminate"; reason: TerminationReason; retryAfter?: number }
  /** Internal: the expiry timer fired. */
  | { type: "expire" }
  /** Internal: the final response to the NOTIFY with this CSeq. */
  | { type: "notify-done"; cseq: number; status: number };

/** What the ingress needs to know to create a Subscriber. */
export interface SubscriberInit {
  dialog: Dialog;
  presentity: string;
  /** The `id` parameter of the SUBSCRIBE's Event header, echoed in every NOTIFY (RFC 6665 §8.2.1). */
  eventId: string | undefined;
}

// ---- actor ------------------------------------------------------------------------------------

interface QueuedNotify {
  subscriptionState: string;
  /** The state to carry, or undefined for a NOTIFY without body (pending subscriptions). */
  state: PresenceState | undefined;
  final: boolean;
}

interface SubscriberState extends SubscriberInit {
  fsm: SubscriptionState;
  latest: PresenceState | undefined;
  /** Version of the state in the last NOTIFY queued; older or equal states are not re-sent. */
  notifiedVersion: number;
  queue: QueuedNotify[];
  inFlight: number | undefined;
  ended: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Asks waiting for the end of the subscription (terminate). */
  waiting: ReplyTo[];
}

export interface SubscriberDeps {
  system: Ref<unknown>;
  router: Router;
  log: Logger;
  sip: SipPort;
  stats: NodeStats;
  /** Counts the subscription under its watcher while it lasts (the node's users). */
  watchers?: WatcherTally;
  settings: PresenceSettings;
  /** Called once the subscription has ended, so the node stops routing its presentity here. */
  released: (presentity: string, self: Address) => void;
}

function armExpiry(state: SubscriberState, ctx: ActorContext): void {
  if (state.timer) clearTimeout(state.timer);
  state.timer = undefined;
  if (state.fsm.phase !== "active" && state.fsm.phase !== "pending") return;
  const delay = Math.max(0, state.fsm.expiresAt - Date.now());
  state.timer = setTimeout(() => ctx.tell({ type: "expire" }), delay + 5);
}

function newer(state: SubscriberState, incoming: PresenceState): void {
  if (!state.latest || incoming.version > state.latest.version) state.latest = incoming;
}

function enqueue(state: SubscriberState, notify: QueuedNotify, deps: SubscriberDeps): void {
  if (notify.final) {
    // Nothing after the final NOTIFY, and intermediate states are moot once it is queued.
    state.queue = [notify];
    return;
  }
  state.queue.push(notify);
  if (state.queue.length > deps.settings.maxQueuedNotifies) {
    // RFC 6665 §4.2.2 rate control: keep the newest state, drop intermediate ones.
    state.queue.splice(0, state.queue.length - deps.settings.maxQueuedNotifies);
  }
}

function apply(
  state: SubscriberState,
  event: SubscriptionEvent,
  tx: string | undefined,
  deps: SubscriberDeps,
): SubscriptionAction[] {
  const transition = step(state.fsm, event);
  state.fsm = transition.state;
  for (const action of transition.actions) {
    switch (action.type) {
      case "respond":
        if (tx) {
          deps.sip.respond(tx, {
            status: action.status,
            reason: action.reason,
            toTag: state.dialog.localTag,
            headers: {
              contact: [{ uri: state.dialog.localContact, params: {} }],
              ...(action.expires !== undefined ? { expires: String(action.expires) } : {}),
            },
          });
        }
        break;
      case "notify":
        if (action.body && state.latest) state.notifiedVersion = state.latest.version;
        enqueue(
          state,
          {
            subscriptionState: action.subscriptionState,
            state: action.body ? state.latest : undefined,
            final: action.subscriptionState.startsWith("terminated"),
          },
          deps,
        );
        break;
      case "end":
        state.ended = true;
        break;
    }
  }
  return transition.actions;
}

function pump(state: SubscriberState, ctx: ActorContext, deps: SubscriberDeps): void {
  if (state.inFlight !== undefined) return;
  const next = state.queue.shift();
  if (!next) return;
  const headers: Record<string, string> = {
    event: state.eventId ? `presence;id=${state.eventId}` : "presence",
    "subscription-state": next.subscriptionState,
  };
  if (next.state) headers["content-type"] = PIDF_CONTENT_TYPE;
  const built = buildInDialogRequest(
    state.dialog,
    "NOTIFY",
    headers,
    next.state ? next.state.body : Buffer.alloc(0),
  );
  state.dialog = built.dialog;
  const cseq = built.dialog.localSeq;
  state.inFlight = cseq;
  const hop = nextHop(state.dialog);
  const target: Peer = {
    transport: hop.transport,
    address: hop.host,
    port: hop.port,
    ...(hop.transport === "tcp" && state.dialog.peer.connectionId
      ? { connectionId: state.dialog.peer.connectionId }
      : {}),
  };
  deps.sip.request(built.request, target).then(
    (response) => ctx.tell({ type: "notify-done", cseq, status: response.status }),
    () => ctx.tell({ type: "notify-done", cseq, status: 503 }),
  );
}

function finishIfEnded(state: SubscriberState, ctx: ActorContext, deps: SubscriberDeps): void {
  if (!state.ended || state.inFlight !== undefined || state.queue.length > 0) return;
  if (state.timer) clearTimeout(state.timer);
  state.timer = undefined;
  for (const waiter of state.waiting) deps.router.reply(waiter, { ok: true, value: null });
  state.waiting = [];
  ctx.stop();
}

export function spawnSubscriber(
  deps: SubscriberDeps,
  address: Address,
  init: SubscriberInit,
): ActorHandle {
  deps.stats.subscriptions += 1;
  deps.watchers?.add(init.dialog.remoteUri);
  const initial: SubscriberState = {
    ...init,
    fsm: initialSubscription,
    latest: undefined,
    notifiedVersion: 0,
    queue: [],
    inFlight: undefined,
    ended: false,
    timer: undefined,
    waiting: [],
  };
  return spawnActor<SubscriberState, SubscriberCommand>(
    deps.system,
    deps.router,
    address,
    {
      receive(state, message, ctx) {
        const now = Date.now();
        switch (message.type) {
          case "subscribe":
            newer(state, message.state);
            apply(
              state,
              { type: "subscribe", expires: message.expires, authorized: true, now },
              message.tx,
              deps,
            );
            armExpiry(state, ctx);
            break;
          case "refresh": {
            if (state.ended) {
              deps.sip.respond(message.tx, { status: 481, reason: "Subscription Does Not Exist" });
              break;
            }
            const accepted = acceptInDialogRequest(
              state.dialog,
              { cseq: message.cseq, contact: message.contact },
              true,
            );
            if ("status" in accepted) {
              deps.sip.respond(message.tx, { status: accepted.status, reason: accepted.reason });
              break;
            }
            state.dialog = accepted;
            apply(state, { type: "refresh", expires: message.expires, now }, message.tx, deps);
            armExpiry(state, ctx);
            break;
          }
          case "state":
            newer(state, message.state);
            if (state.latest && state.latest.version > state.notifiedVersion) {
              apply(state, { type: "state-changed", now }, undefined, deps);
            }
            break;
          case "terminate":
            if (ctx.replyTo) state.waiting.push(ctx.replyTo);
            apply(
              state,
              {
                type: "terminate",
                reason: message.reason,
                ...(message.retryAfter !== undefined ? { retryAfter: message.retryAfter } : {}),
              },
              undefined,
              deps,
            );
            if (!state.ended) {
              // Not yet (or no longer) live: nothing to notify, the subscription just goes.
              state.ended = true;
              state.queue = [];
            }
            break;
          case "expire":
            apply(state, { type: "expired", now }, undefined, deps);
            armExpiry(state, ctx);
            break;
          case "notify-done":
            if (message.cseq !== state.inFlight) break;
            state.inFlight = undefined;
            if (message.status >= 200 && message.status < 300) {
              deps.stats.notifiesSent += 1;
            } else {
              deps.stats.notifiesFailed += 1;
              ctx.log.info("NOTIFY failed; subscription ends", {
                status: message.status,
                callId: state.dialog.callId,
              });
              apply(state, { type: "notify-response", status: message.status }, undefined, deps);
              state.queue = [];
            }
            break;
        }
        pump(state, ctx, deps);
        finishIfEnded(state, ctx, deps);
        return state;
      },
      stopped(state, ctx) {
        if (state.timer) clearTimeout(state.timer);
        deps.stats.subscriptions -= 1;
        deps.watchers?.remove(state.dialog.remoteUri);
        deps.released(state.presentity, ctx.self);
      },
    },
    initial,
    {
      maxMailbox: deps.settings.maxMailbox,
      log: deps.log,
      onCrash: () => {
        deps.stats.actorCrashes += 1;
      },
      traceAttributes: {
        "presence.presentity": init.presentity,
        "sip.call_id": init.dialog.callId,
      },
    },
  );
}
