// test/unit: the RFC 6665 notifier state machine, as a table of transitions with the section each follows.
// Every row: a starting state, one event, the phase after it and the actions emitted in order.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  initialSubscription,
  type SubscriptionAction,
  type SubscriptionEvent,
  type SubscriptionState,
  step,
} from "../../../../protocol/sip/subscription.js";

const now = 1_000_000;
const active: SubscriptionState = { phase: "active", expiresAt: now + 600_000 };
const pending: SubscriptionState = { phase: "pending", expiresAt: now + 600_000 };
const terminated: SubscriptionState = { phase: "terminated", expiresAt: 0 };

type Row = {
  rfc: string;
  from: SubscriptionState;
  event: SubscriptionEvent;
  phase: SubscriptionState["phase"];
  actions: SubscriptionAction[];
};

const rows: Row[] = [
  {
    rfc: "6665 §4.2.1.1 accept, then NOTIFY at once",
    from: initialSubscription,
    event: { type: "subscribe", expires: 600, authorized: true, now },
    phase: "active",
    actions: [
      { type: "respond", status: 200, reason: "OK", expires: 600 },
      { type: "notify", subscriptionState: "active;expires=600", body: true },
    ],
  },
  {
    rfc: "6665 §4.2.1.1 not yet authorized: 202 and a NOTIFY without state",
    from: initialSubscription,
    event: { type: "subscribe", expires: 60, authorized: false, now },
    phase: "pending",
    actions: [
      { type: "respond", status: 202, reason: "Accepted", expires: 60 },
      { type: "notify", subscriptionState: "pending;expires=60", body: false },
    ],
  },
  {
    rfc: "6665 §4.2.1.1 Expires 0 on the initial SUBSCRIBE is a fetch",
    from: initialSubscription,
    event: { type: "subscribe", expires: 0, authorized: true, now },
    phase: "terminated",
    actions: [
      { type: "respond", status: 200, reason: "OK", expires: 0 },
      { type: "notify", subscriptionState: "terminated;reason=timeout", body: true },
      { type: "end" },
    ],
  },
  {
    rfc: "6665 §4.2.1.2 refresh extends and is followed by a NOTIFY",
    from: active,
    event: { type: "refresh", expires: 300, now: now + 10_000 },
    phase: "active",
    actions: [
      { type: "respond", status: 200, reason: "OK", expires: 300 },
      { type: "notify", subscriptionState: "active;expires=300", body: true },
    ],
  },
  {
    rfc: "6665 §4.2.1.4 unsubscribe: 200 and a final NOTIFY",
    from: active,
    event: { type: "refresh", expires: 0, now },
    phase: "terminated",
    actions: [
      { type: "respond", status: 200, reason: "OK", expires: 0 },
      { type: "notify", subscriptionState: "terminated;reason=timeout", body: true },
      { type: "end" },
    ],
  },
  {
    rfc: "6665 §4.1.2.2 refresh of a finished subscription gets 481",
    from: terminated,
    event: { type: "refresh", expires: 60, now },
    phase: "terminated",
    actions: [{ type: "respond", status: 481, reason: "Subscription Does Not Exist" }],
  },
  {
    rfc: "6665 §4.2.2 a state change is notified to an active subscription",
    from: active,
    event: { type: "state-changed", now: now + 100_000 },
    phase: "active",
    actions: [{ type: "notify", subscriptionState: "active;expires=500", body: true }],
  },
  {
    rfc: "6665 §4.2.2 no state goes to a pending subscription",
    from: pending,
    event: { type: "state-changed", now },
    phase: "pending",
    actions: [],
  },
  {
    rfc: "6665 §4.2.1.1 authorization turns pending into active with state",
    from: pending,
    event: { type: "authorize", now },
    phase: "active",
    actions: [{ type: "notify", subscriptionState: "active;expires=600", body: true }],
  },
  {
    rfc: "6665 §4.1.3 expiry ends with reason=timeout",
    from: active,
    event: { type: "expired", now: now + 600_000 },
    phase: "terminated",
    actions: [
      { type: "notify", subscriptionState: "terminated;reason=timeout", body: true },
      { type: "end" },
    ],
  },
  {
    rfc: "6665 §4.1.3 an early timer (refreshed meanwhile) changes nothing",
    from: active,
    event: { type: "expired", now: now + 1_000 },
    phase: "active",
    actions: [],
  },
  {
    rfc: "6665 §4.2.2 shutdown: probation with retry-after",
    from: active,
    event: { type: "terminate", reason: "probation", retryAfter: 30 },
    phase: "terminated",
    actions: [
      {
        type: "notify",
        subscriptionState: "terminated;reason=probation;retry-after=30",
        body: true,
      },
      { type: "end" },
    ],
  },
  {
    rfc: "6665 §4.1.3 migration: deactivated, re-subscribe at once",
    from: active,
    event: { type: "terminate", reason: "deactivated" },
    phase: "terminated",
    actions: [
      { type: "notify", subscriptionState: "terminated;reason=deactivated", body: true },
      { type: "end" },
    ],
  },
  {
    rfc: "6665 §4.2.2 a 2xx to NOTIFY keeps the subscription",
    from: active,
    event: { type: "notify-response", status: 200 },
    phase: "active",
    actions: [],
  },
  {
    rfc: "6665 §4.2.2 / 5057 a 481 to NOTIFY ends the subscription without another NOTIFY",
    from: active,
    event: { type: "notify-response", status: 481 },
    phase: "terminated",
    actions: [{ type: "end" }],
  },
  {
    rfc: "6665 §4.2.2 Timer F (408) ends the subscription",
    from: active,
    event: { type: "notify-response", status: 408 },
    phase: "terminated",
    actions: [{ type: "end" }],
  },
  {
    rfc: "a failure after the end is not a second end",
    from: terminated,
    event: { type: "notify-response", status: 408 },
    phase: "terminated",
    actions: [],
  },
  {
    rfc: "6665 §4.1.2.1 a second initial SUBSCRIBE event is ignored",
    from: active,
    event: { type: "subscribe", expires: 60, authorized: true, now },
    phase: "active",
    actions: [],
  },
];

describe("subscription - RFC 6665 notifier transitions", () => {
  for (const row of rows) {
    it(`subscription - ${row.rfc}`, () => {
      const result = step(row.from, row.event);
      assert.equal(result.state.phase, row.phase);
      assert.deepEqual(result.actions, row.actions);
    });
  }

  it("subscription - expires counts down in every later NOTIFY", () => {
    const start = step(initialSubscription, {
      type: "subscribe",
      expires: 60,
      authorized: true,
      now,
    });
    const later = step(start.state, { type: "state-changed", now: now + 45_500 });
    assert.deepEqual(later.actions, [
      { type: "notify", subscriptionState: "active;expires=15", body: true },
    ]);
  });
});
