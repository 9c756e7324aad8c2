// protocol/sip: the notifier side of one RFC 6665 subscription as a pure state machine.
// Input events in, new state plus the actions to perform (respond, NOTIFY, end) out; no timers, no I/O.

/** RFC 6665 §4.1.3 / §8.3.1 termination reasons used by this notifier. */
export type TerminationReason = "timeout" | "deactivated" | "probation" | "rejected" | "noresource";

export type SubscriptionPhase = "init" | "pending" | "active" | "terminated";

export interface SubscriptionState {
  phase: SubscriptionPhase;
  /** ms epoch at which the subscription expires (meaningful while pending/active). */
  expiresAt: number;
}

export type SubscriptionEvent =
  /** The dialog-creating SUBSCRIBE, already validated (Expires granted by the caller). */
  | { type: "subscribe"; expires: number; authorized: boolean; now: number }
  /** An in-dialog SUBSCRIBE (refresh, or Expires: 0 to unsubscribe). */
  | { type: "refresh"; expires: number; now: number }
  | { type: "authorize"; now: number }
  | { type: "expired"; now: number }
  /** The notifier ends the subscription itself (shutdown, migration, policy). */
  | { type: "terminate"; reason: TerminationReason; retryAfter?: number }
  /** The final response to a NOTIFY we sent. */
  | { type: "notify-response"; status: number }
  /** The resource's state changed. */
  | { type: "state-changed"; now: number };

export type SubscriptionAction =
  | { type: "respond"; status: number; reason: string; expires?: number }
  /** Send a NOTIFY with this Subscription-State value; `body` false for a NOTIFY without state. */
  | { type: "notify"; subscriptionState: string; body: boolean }
  /** The subscription is over: release its resources (after any NOTIFY above is sent). */
  | { type: "end" };

export interface Transition {
  state: SubscriptionState;
  actions: SubscriptionAction[];
}

export const initialSubscription: SubscriptionState = { phase: "init", expiresAt: 0 };

function remaining(state: SubscriptionState, now: number): number {
  return Math.max(0, Math.round((state.expiresAt - now) / 1000));
}

function liveState(state: SubscriptionState, now: number): string {
  return `${state.phase};expires=${remaining(state, now)}`;
}

function terminatedState(reason: TerminationReason, retryAfter?: number): string {
  return retryAfter === undefined
    ? `terminated;reason=${reason}`
    : `terminated;reason=${reason};retry-after=${retryAfter}`;
}

const unchanged = (state: SubscriptionState): Transition => ({ state, actions: [] });

function end(reason: TerminationReason, retryAfter?: number): Transition {
  return {
    state: { phase: "terminated", expiresAt: 0 },
    actions: [
      { type: "notify", subscriptionState: terminatedState(reason, retryAfter), body: true },
      { type: "end" },
    ],
  };
}

/**
 * One step of the notifier state machine.
 *
 * - §4.2.1.1: "the notifier MUST send a NOTIFY request immediately" after accepting or
 *   refreshing a subscription, so every 200 to a SUBSCRIBE is followed by a NOTIFY.
 * - §4.2.1.4 / §4.1.2.3: an Expires of 0 unsubscribes; the notifier answers 200 and sends a
 *   final NOTIFY with `terminated` (for an initial SUBSCRIBE this is a one-shot fetch).
 * - §4.2.2: "If the NOTIFY request fails due to expiration of SIP Timer F (transaction
 *   timeout), the notifier SHOULD remove the subscription"; a 481 means the dialog is gone
 *   (RFC 5057 §5.1.1 usage-ending responses), and any other non-2xx final response also
 *   ends the subscription except 3xx/401/407/491 style retries, which this notifier does not make.
 * - §3.2.1 / §4.2.2: state changes are only notified while pending or active.
 */
export function step(state: SubscriptionState, event: SubscriptionEvent): Transition {
  switch (event.type) {
    case "subscribe": {
      if (state.phase !== "init") return unchanged(state);
      if (event.expires === 0) {
        const final = end("timeout");
        return {
          state: final.state,
          actions: [{ type: "respond", status: 200, reason: "OK", expires: 0 }, ...final.actions],
        };
      }
      const next: SubscriptionState = {
        phase: event.authorized ? "active" : "pending",
        expiresAt: event.now + event.expires * 1000,
      };
      return {
        state: next,
        actions: [
          {
            type: "respond",
            status: event.authorized ? 200 : 202,
            reason: event.authorized ? "OK" : "Accepted",
            expires: event.expires,
          },
          { type: "notify", subscriptionState: liveState(next, event.now), body: event.authorized },
        ],
      };
    }
    case "refresh": {
      if (state.phase === "init" || state.phase === "terminated") {
        return {
          state,
          actions: [{ type: "respond", status: 481, reason: "Subscription Does Not Exist" }],
        };
      }
      if (event.expires === 0) {
        const final = end("timeout");
        return {
          state: final.state,
          actions: [{ type: "respond", status: 200, reason: "OK", expires: 0 }, ...final.actions],
        };
      }
      const next: SubscriptionState = { ...state, expiresAt: event.now + event.expires * 1000 };
      return {
        state: next,
        actions: [
          { type: "respond", status: 200, reason: "OK", expires: event.expires },
          {
            type: "notify",
            subscriptionState: liveState(next, event.now),
            body: next.phase === "active",
          },
        ],
      };
    }
    case "authorize": {
      if (state.phase !== "pending") return unchanged(state);
      const next: SubscriptionState = { ...state, phase: "active" };
      return {
        state: next,
        actions: [{ type: "notify", subscriptionState: liveState(next, event.now), body: true }],
      };
    }
    case "expired":
      if (state.phase !== "pending" && state.phase !== "active") return unchanged(state);
      if (event.now < state.expiresAt) return unchanged(state);
      return end("timeout");
    case "terminate":
      if (state.phase !== "pending" && state.phase !== "active") return unchanged(state);
      return end(event.reason, event.retryAfter);
    case "notify-response":
      if (event.status >= 200 && event.status < 300) return unchanged(state);
      if (state.phase === "terminated") return unchanged(state);
      return { state: { phase: "terminated", expiresAt: 0 }, actions: [{ type: "end" }] };
    case "state-changed":
      if (state.phase !== "active") return unchanged(state);
      return {
        state,
        actions: [{ type: "notify", subscriptionState: liveState(state, event.now), body: true }],
      };
  }
}
