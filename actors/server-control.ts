// actors: a presence server's side of its control session with the primary (paper, Fig. 5):
// answers the INVITE, reports load in extended CCMP, takes redirected users, copies the presence
// data when promoted, drains when told to, and leaves the session with BYE.

import type { Logger } from "../bootstrap/log.js";
import {
  CcmpError,
  type CcmpMessage,
  decodeCcmp,
  EXTD_CCMP_CONTENT_TYPE,
  type ExtdElements,
  encodeCcmp,
  errorResponse,
} from "../protocol/ccmp/ccmp.js";
import { headerValue, type SipRequest, type SipResponse } from "../protocol/sip/message.js";
import type { Address } from "../transport/envelope.js";
import type { Router } from "../transport/router.js";
import type { ActorContext } from "./actor.js";
import {
  answeringDialog,
  type ControlDialog,
  type ControlReply,
  controlResponse,
  fromMail,
  SYNC_EVENT,
  sendControl,
  toMail,
} from "./control.js";
import type { ResourceSnapshot } from "./presence-resource.js";
import { ExpectedUsers } from "./services.js";

/** What the node offers its control session (closures over the node's own state). */
export interface ServerControlDeps {
  router: Router;
  log: Logger;
  reportIntervalMs: number;
  /** A change of load at least this large is reported at once, not at the next interval. */
  significantLoad: number;
  askTimeoutMs: number;
  supervisorOf: (node: string) => Address;
  loadLevel: () => number;
  users: () => number;
  /** Whether this watcher (AOR) has a subscription here: a redirected user has arrived. */
  hasUser: (user: string) => boolean;
  /** Load one new user adds at the least (the supervisor's own step for a placement). */
  loadPerWatcher: number;
  /** Told when the control session comes up or ends (a server without one takes no users). */
  sessionChanged: (up: boolean) => void;
  /** Takes part as an active server ("server") or goes back to the pool ("pool"). */
  setRole: (role: "server" | "pool") => void;
  /** Ends every subscription with reason=deactivated, in batches. */
  endSubscriptions: () => Promise<void>;
  /** Resolves once no presentity is homed here any more (or the time is up). */
  resourcesGone: () => Promise<void>;
  /** Takes in presentities' state copied from their homes (the promoted server's presence data). */
  importSnapshots: (snapshots: ResourceSnapshot[]) => Promise<void>;
}

export type ControlEvent =
  | { type: "report" }
  | { type: "drain-done" }
  | { type: "sync-subscribed"; ok: boolean };

export interface ServerControlState {
  dialog: ControlDialog | undefined;
  primary: string | undefined;
  session: "none" | "answered" | "up";
  promoted: boolean;
  draining: boolean;
  reported: number | undefined;
  reportedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Users the primary redirected here (`<redirection-usr-addr>`) that have not arrived yet. */
  expected: ExpectedUsers;
}

export function newServerControl(): ServerControlState {
  return {
    dialog: undefined,
    primary: undefined,
    session: "none",
    promoted: false,
    draining: false,
    reported: undefined,
    reportedAt: 0,
    timer: undefined,
    expected: new ExpectedUsers(MAX_EXPECTED),
  };
}

const MAX_EXPECTED = 100_000;

/**
 * The level this server reports: its own, plus what the users it was told to expect will bring
 * (each as much as a user here brings on average, never less than `loadPerWatcher`) until they
 * subscribe or `ARRIVAL_MS` pass. A report sent between the primary's placement and the user's
 * SUBSCRIBE so still counts the placement.
 */
export function loadWithExpected(state: ServerControlState, deps: ServerControlDeps): number {
  const level = deps.loadLevel();
  const pending = state.expected.pending(deps.hasUser, Date.now());
  if (pending === 0) return level;
  const users = deps.users();
  const perUser = users > 0 ? level / users : 0;
  return level + pending * Math.max(deps.loadPerWatcher, perUser);
}

function confUser(deps: ServerControlDeps): string {
  return `xcon-userid:${deps.router.nodeId}@presence-cluster`;
}

function ccmpAnswer(
  request: SipRequest,
  dialog: ControlDialog | undefined,
  message: CcmpMessage,
): SipResponse {
  return controlResponse(request, dialog, 200, {
    body: encodeCcmp(message),
    contentType: EXTD_CCMP_CONTENT_TYPE,
  });
}

function success(deps: ServerControlDeps, extension: string): CcmpMessage {
  return {
    kind: "response",
    confUserID: confUser(deps),
    responseCode: 200,
    responseString: "success",
    extension,
    elements: {},
  };
}

/** Sends an in-dialog request to the primary's Supervisor and resolves with its answer. */
async function toPrimary(
  state: ServerControlState,
  deps: ServerControlDeps,
  method: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<SipResponse> {
  if (!state.dialog || !state.primary) throw new Error("no control session");
  const sent = sendControl(
    deps.router,
    deps.supervisorOf(state.primary),
    state.dialog,
    method,
    headers,
    body,
    deps.askTimeoutMs,
  );
  state.dialog = sent.dialog;
  return sent.response;
}

function loadElements(deps: ServerControlDeps, level: number): ExtdElements {
  return {
    pressvrLoad: [{ svrId: deps.router.nodeId, level }],
    presSysUsers: [{ svrId: deps.router.nodeId, count: deps.users() }],
  };
}

/** An INFO carrying `<pressvr-load>` (extension "load-report", "ready" or "drained"). */
export function report(
  state: ServerControlState,
  deps: ServerControlDeps,
  extension = "load-report",
  measured = loadWithExpected(state, deps),
): Promise<SipResponse | undefined> {
  if (state.session !== "up") return Promise.resolve(undefined);
  const level = Math.round(measured * 100) / 100;
  state.reported = level;
  state.reportedAt = Date.now();
  const message: CcmpMessage = {
    kind: "request",
    confUserID: confUser(deps),
    operation: "update",
    extension,
    elements: loadElements(deps, level),
  };
  return toPrimary(
    state,
    deps,
    "INFO",
    { "content-type": EXTD_CCMP_CONTENT_TYPE },
    encodeCcmp(message),
  ).catch((error: unknown) => {
    deps.log.warn("load report not answered", { error: String(error) });
    return undefined;
  });
}

/** Periodic and on significant change (checked four times per interval). */
export function onReportTick(state: ServerControlState, deps: ServerControlDeps): void {
  if (state.session !== "up" || state.draining) return;
  const level = loadWithExpected(state, deps);
  const due = Date.now() - state.reportedAt >= deps.reportIntervalMs;
  const moved =
    state.reported === undefined || Math.abs(level - state.reported) >= deps.significantLoad;
  if (due || moved) void report(state, deps, "load-report", level);
}

function startReporting(
  state: ServerControlState,
  ctx: ActorContext,
  deps: ServerControlDeps,
): void {
  if (state.timer) return;
  state.timer = setInterval(
    () => ctx.tell({ type: "report" }),
    Math.max(50, deps.reportIntervalMs / 4),
  );
  state.timer.unref();
}

export function stopReporting(state: ServerControlState): void {
  if (state.timer) clearInterval(state.timer);
  state.timer = undefined;
}

/** Answers one control request from the primary; undefined for ACK (no response). */
export function answerControl(
  state: ServerControlState,
  deps: ServerControlDeps,
  ctx: ActorContext,
  raw: Buffer,
): SipResponse | undefined {
  const request = fromMail(raw);
  if (request.kind !== "request") return undefined;
  switch (request.method) {
    case "INVITE": {
      const ccmp = decodeOrError(deps, request, state.dialog);
      if ("answer" in ccmp) return ccmp.answer;
      state.dialog = answeringDialog(request);
      state.primary = /^sip:([^@]+)@/.exec(request.headers.from.uri)?.[1];
      state.session = "answered";
      state.promoted = ccmp.message.kind === "request" && ccmp.message.extension === "promote";
      state.draining = false;
      return ccmpAnswer(request, state.dialog, success(deps, "session"));
    }
    case "ACK":
      if (state.session === "answered") {
        state.session = "up";
        deps.sessionChanged(true);
        startReporting(state, ctx, deps);
        if (state.promoted) subscribeForPresenceData(state, deps, ctx);
        else void report(state, deps);
      }
      return undefined;
    case "INFO": {
      const ccmp = decodeOrError(deps, request, state.dialog);
      if ("answer" in ccmp) return ccmp.answer;
      const message = ccmp.message;
      if (message.kind === "request" && message.extension === "drain" && !state.draining) {
        state.draining = true;
        state.expected.clear();
        drain(deps, ctx);
      }
      const user = message.kind === "request" ? message.elements.redirectionUsrAddr : undefined;
      if (user) state.expected.expect(user, Date.now());
      return ccmpAnswer(
        request,
        state.dialog,
        success(deps, message.kind === "request" ? message.extension : "load-report"),
      );
    }
    case "NOTIFY":
      if (!(headerValue(request, "event") ?? "").startsWith(SYNC_EVENT)) {
        return controlResponse(request, state.dialog, 489);
      }
      importBatch(state, deps, ctx, request);
      return undefined;
    case "BYE":
      state.session = "none";
      state.expected.clear();
      state.dialog = undefined;
      deps.sessionChanged(false);
      stopReporting(state);
      return controlResponse(request, undefined, 200);
    default:
      return controlResponse(request, state.dialog, 405, {
        headers: { allow: "INVITE, ACK, INFO, NOTIFY, BYE" },
      });
  }
}

function decodeOrError(
  deps: ServerControlDeps,
  request: SipRequest,
  dialog: ControlDialog | undefined,
): { message: CcmpMessage } | { answer: SipResponse } {
  try {
    return { message: decodeCcmp(request.body) };
  } catch (error) {
    const ccmpError =
      error instanceof CcmpError ? error : new CcmpError(400, "undecodable CCMP body");
    deps.log.warn("malformed CCMP from the primary", { reason: ccmpError.reason });
    return { answer: ccmpAnswer(request, dialog, errorResponse(ccmpError, confUser(deps))) };
  }
}

/** Fig. 5: the added server SUBSCRIBEs to the primary and receives the presence data by NOTIFY. */
function subscribeForPresenceData(
  state: ServerControlState,
  deps: ServerControlDeps,
  ctx: ActorContext,
): void {
  toPrimary(state, deps, "SUBSCRIBE", {
    event: SYNC_EVENT,
    expires: "60",
    accept: "application/json",
  }).then(
    (response) => ctx.tell({ type: "sync-subscribed", ok: response.status < 300 }),
    () => ctx.tell({ type: "sync-subscribed", ok: false }),
  );
}

/**
 * One NOTIFY batch of the presence data: imported before it is answered (so the primary's next
 * batch waits for this one), and on the last one the server starts taking part and says so.
 */
function importBatch(
  state: ServerControlState,
  deps: ServerControlDeps,
  ctx: ActorContext,
  request: SipRequest,
): void {
  const replyTo = ctx.replyTo;
  const answer = (response: SipResponse): void =>
    deps.router.reply(replyTo, {
      ok: true,
      value: { raw: toMail(response).raw } satisfies ControlReply,
    });
  let snapshots: ResourceSnapshot[];
  try {
    snapshots = JSON.parse(request.body.toString("utf8")) as ResourceSnapshot[];
    if (!Array.isArray(snapshots)) throw new Error("not a list");
  } catch {
    answer(controlResponse(request, state.dialog, 400, {}));
    return;
  }
  const last = (headerValue(request, "subscription-state") ?? "").startsWith("terminated");
  deps.importSnapshots(snapshots).then(
    () => {
      answer(controlResponse(request, state.dialog, 200));
      if (last) {
        deps.setRole("server");
        void report(state, deps, "ready");
      }
    },
    (error: unknown) => {
      deps.log.warn("presence data batch not imported", { error: String(error) });
      answer(controlResponse(request, state.dialog, 500));
    },
  );
}

/** Scale-in: watchers leave (deactivated), presentities move home, then "drained" for the BYE. */
function drain(deps: ServerControlDeps, ctx: ActorContext): void {
  (async () => {
    await deps.endSubscriptions();
    deps.setRole("pool");
    await deps.resourcesGone();
  })().then(
    () => ctx.tell({ type: "drain-done" }),
    (error: unknown) => {
      deps.log.warn("drain did not finish cleanly", { error: String(error) });
      ctx.tell({ type: "drain-done" });
    },
  );
}

export function onControlEvent(
  state: ServerControlState,
  deps: ServerControlDeps,
  event: ControlEvent,
): void {
  switch (event.type) {
    case "report":
      onReportTick(state, deps);
      break;
    case "drain-done":
      void report(state, deps, "drained");
      break;
    case "sync-subscribed":
      if (!event.ok) deps.log.warn("the primary refused the presence data subscription");
      break;
  }
}
