// actors/supervisor: the Supervisor actor on the primary — the paper's server load control module.
// Holds the load table fed by extended-CCMP reports, places watchers, promotes pool servers,
// drains idle ones and declares silent ones dead, over control sessions carried as actor mail.

import type { Ref } from "nact";
import type { Logger } from "../../bootstrap/log.js";
import {
  CcmpError,
  type CcmpMessage,
  decodeCcmp,
  EXTD_CCMP_CONTENT_TYPE,
  EXTENSIONS,
  type ExtdElements,
  encodeCcmp,
  errorResponse,
} from "../../protocol/ccmp/ccmp.js";
import { headerValue, type SipRequest, type SipResponse } from "../../protocol/sip/message.js";
import type { Address, ReplyTo } from "../../transport/envelope.js";
import type { MemberInfo } from "../../transport/membership.js";
import type { Router } from "../../transport/router.js";
import {
  type ActorContext,
  type ActorHandle,
  type Annotate,
  type SpanAttributes,
  spawnActor,
} from "../actor.js";
import {
  type ControlDialog,
  type ControlMail,
  type ControlReply,
  controlRequest,
  controlResponse,
  established,
  fromMail,
  newControlDialog,
  SYNC_CONTENT_TYPE,
  SYNC_EVENT,
  sendControl,
  toMail,
} from "../control.js";
import type { ResourceSnapshot } from "../presence-resource.js";
import type { ExportPage } from "../server.js";
import { ExpectedUsers, type NodeStats } from "../services.js";
import {
  allBelowMin,
  decideDrain,
  decidePromotion,
  type Placement,
  type PolicySettings,
  placeWatcher,
  type ServerLoadEntry,
  silentServers,
} from "./policy.js";

export const SUPERVISOR_KIND = "supervisor";
export const SUPERVISOR_ID = "supervisor";

// ---- mail protocol ----------------------------------------------------------------------------

export type SupervisorCommand =
  /** A new watcher at the primary (ask): replies PlaceAnswer. */
  | { type: "place"; watcher: string }
  /** The cluster membership changed. */
  | { type: "members"; members: MemberInfo[] }
  /** What /api/cluster shows (ask): replies SupervisorView. */
  | { type: "inspect" }
  /** A SIP request of a control session, from a server (ask): replies ControlReply. */
  | ControlMail
  | { type: "tick" }
  | Internal;

/** Where a watcher goes: this node (`local`), or a server's SIP address for a 302 or a proxy hop. */
export interface PlaceAnswer {
  server: string;
  sip: string;
  local: boolean;
  reason: string;
}

type Internal =
  | { type: "invite-answered"; id: string; raw: Buffer | undefined; error?: string }
  | { type: "bye-answered"; id: string }
  /** The server answered (`ok`) or did not take the redirect INFO of a placement worth `step`. */
  | { type: "redirect-answered"; id: string; step: number; ok: boolean }
  | { type: "sync-sent"; id: string; presentities: number; batches: number; error?: string };

export interface Decision {
  at: string;
  type: "session-up" | "promote" | "promoted" | "drain" | "drained" | "dead" | "pool-exhausted";
  server?: string;
  reason: string;
  loads: Record<string, number>;
}

export interface ServerView {
  id: string;
  role: string;
  sip: string;
  session: Session;
  ready: boolean;
  load: number;
  users: number;
  lastReportMsAgo: number | null;
}

export interface SupervisorView {
  maxLoad: number;
  minLoad: number;
  dispatch: "redirect" | "proxy";
  activeServers: number;
  servers: ServerView[];
  pool: string[];
  assignments: number;
  decisions: Decision[];
  counters: SupervisorCounters;
}

export interface SupervisorCounters {
  placed: number;
  redirected: number;
  promotions: number;
  drains: number;
  poolExhausted: number;
  declaredDead: number;
  badCcmp: number;
}

export interface SupervisorSettings extends PolicySettings {
  dispatch: "redirect" | "proxy";
  reportIntervalMs: number;
  /** Load one new watcher adds to a server's level until its next report. */
  loadPerWatcher: number;
  /** Presentities per NOTIFY of the promoted server's copy of the presence data. */
  syncBatch: number;
  askTimeoutMs: number;
  maxMailbox: number;
}

// ---- state ------------------------------------------------------------------------------------

type Session = "none" | "inviting" | "syncing" | "up" | "draining" | "closing";

interface ServerRecord {
  id: string;
  role: string;
  sip: string;
  session: Session;
  dialog: ControlDialog | undefined;
  load: number;
  users: number;
  /** Load one of its users brings, from its last report (level ÷ users); undefined before one. */
  perUser: number | undefined;
  /**
   * Placements whose redirect INFO the server has not answered yet: a report it sent before it
   * knew of them does not count them, so they are added on top of every report until then.
   */
  pending: number;
  lastReport: number;
  dead: boolean;
  promoted: boolean;
}

/** A new watcher waiting for the server being promoted (the paper's user B, Fig. 5). */
interface HeldPlacement {
  watcher: string;
  replyTo: ReplyTo | undefined;
  since: number;
}

interface SupervisorState {
  servers: Map<string, ServerRecord>;
  /** New watchers that came while every server was above max-load, until the promotion ends. */
  held: HeldPlacement[];
  /** Watchers placed on the primary itself that have not subscribed yet (counted in its load). */
  arriving: ExpectedUsers;
  pool: string[];
  /** Watcher AOR → server it was given (sticky), in insertion order for trimming. */
  sticky: Map<string, string>;
  promoting: string | undefined;
  draining: string | undefined;
  lowSince: number | undefined;
  lastChangeAt: number;
  decisions: Decision[];
  counters: SupervisorCounters;
  timer: NodeJS.Timeout | undefined;
}

export interface SupervisorDeps {
  system: Ref<unknown>;
  router: Router;
  log: Logger;
  stats: NodeStats;
  settings: SupervisorSettings;
  /** The primary's own load level (it is a presence server too). */
  localLoad: () => number;
  /** The primary's own users (distinct watchers). */
  localUsers: () => number;
  /** Whether this watcher (AOR) has a subscription on the primary. */
  localHas: (watcher: string) => boolean;
  localSip: () => string;
  serverOf: (node: string) => Address;
}

const MAX_STICKY = 200_000;
const MAX_DECISIONS = 50;

function isReady(record: ServerRecord): boolean {
  return record.session === "up" && !record.dead;
}

function entries(state: SupervisorState, self: string): ServerLoadEntry[] {
  return [...state.servers.values()]
    .filter((r) => r.role !== "pool" || r.session !== "none")
    .map((r) => ({
      id: r.id,
      load: r.load,
      ready: isReady(r),
      lastReport: r.lastReport,
      primary: r.id === self,
    }));
}

function loads(state: SupervisorState): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of state.servers.values())
    if (isReady(r)) out[r.id] = Math.round(r.load * 100) / 100;
  return out;
}

function decide(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  decision: Omit<Decision, "at" | "loads">,
): void {
  const full: Decision = { at: new Date().toISOString(), loads: loads(state), ...decision };
  const attributes: SpanAttributes = {
    "presence.decision.server": decision.server ?? "",
    "presence.decision.reason": decision.reason,
  };
  for (const [id, load] of Object.entries(full.loads)) attributes[`presence.load.${id}`] = load;
  ctx.span(`supervisor ${decision.type}`, attributes, () => {});
  state.decisions.push(full);
  if (state.decisions.length > MAX_DECISIONS) state.decisions.shift();
  deps.log.info(`supervisor: ${decision.type}`, { ...decision, loads: full.loads });
}

function activeCount(state: SupervisorState): number {
  return [...state.servers.values()].filter(isReady).length;
}

function elementsFor(state: SupervisorState, deps: SupervisorDeps): ExtdElements {
  return {
    maxLoad: deps.settings.maxLoad,
    minLoad: deps.settings.minLoad,
    actvSvrNums: activeCount(state),
    svrPool: state.pool.map((id) => ({
      svrId: id,
      contact: `sip:${id}@${state.servers.get(id)?.sip ?? ""}`,
    })),
  };
}

function ccmpBody(message: CcmpMessage): { body: Buffer; headers: Record<string, string> } {
  return { body: encodeCcmp(message), headers: { "content-type": EXTD_CCMP_CONTENT_TYPE } };
}

/** Sends a request of the control dialog with `id` and resolves with the parsed response. */
async function control(
  state: SupervisorState,
  deps: SupervisorDeps,
  id: string,
  method: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<SipResponse> {
  const record = state.servers.get(id);
  if (!record?.dialog) throw new Error(`no control session with ${id}`);
  const sent = sendControl(
    deps.router,
    deps.serverOf(id),
    record.dialog,
    method,
    headers,
    body,
    deps.settings.askTimeoutMs,
  );
  record.dialog = sent.dialog;
  return sent.response;
}

function extendedRequest(
  deps: SupervisorDeps,
  extension: string,
  elements: ExtdElements,
): CcmpMessage {
  return {
    kind: "request",
    confUserID: `xcon-userid:${deps.router.nodeId}@presence-cluster`,
    operation: "update",
    extension,
    elements,
  };
}

/** INVITE (application/extd-ccmp) → 200 → ACK: the paper's control session set-up. */
function invite(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  record: ServerRecord,
  promote: boolean,
): void {
  record.session = "inviting";
  record.promoted = promote;
  record.dialog = newControlDialog(deps.router.nodeId, record.id);
  const { body, headers } = ccmpBody(
    extendedRequest(deps, promote ? "promote" : "session", elementsFor(state, deps)),
  );
  control(state, deps, record.id, "INVITE", headers, body).then(
    (response) => ctx.tell({ type: "invite-answered", id: record.id, raw: toMail(response).raw }),
    (error: unknown) =>
      ctx.tell({ type: "invite-answered", id: record.id, raw: undefined, error: String(error) }),
  );
}

/** Load per user from a report: kept while the server has users, so that new ones count as much. */
function learnPerUser(record: ServerRecord, level: number): void {
  if (record.users > 0 && level > 0) record.perUser = level / record.users;
}

function startPromotion(state: SupervisorState, deps: SupervisorDeps, ctx: ActorContext): void {
  const decision = decidePromotion(
    entries(state, deps.router.nodeId),
    state.pool.filter((id) => !state.servers.get(id)?.dead),
    state.promoting !== undefined,
    state.lastChangeAt,
    Date.now(),
    deps.settings,
  );
  if (decision.type === "pool-exhausted") {
    // Logged and counted once per overload episode, not on every watcher.
    if (state.decisions.at(-1)?.type !== "pool-exhausted") {
      state.counters.poolExhausted += 1;
      decide(state, deps, ctx, {
        type: "pool-exhausted",
        reason: "every active server is above max-load and the pool is empty",
      });
    }
    return;
  }
  if (decision.type !== "promote") return;
  const record = state.servers.get(decision.pool);
  if (!record) return;
  state.promoting = record.id;
  state.pool = state.pool.filter((id) => id !== record.id);
  state.counters.promotions += 1;
  decide(state, deps, ctx, {
    type: "promote",
    server: record.id,
    reason: `every active server is above max-load ${deps.settings.maxLoad}`,
  });
  invite(state, deps, ctx, record, true);
}

function startDrain(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  id: string,
): void {
  const record = state.servers.get(id);
  if (!record) return;
  record.session = "draining";
  state.draining = id;
  state.lowSince = undefined;
  state.counters.drains += 1;
  decide(state, deps, ctx, {
    type: "drain",
    server: id,
    reason: `every active server below min-load ${deps.settings.minLoad} for ${deps.settings.scaleInAfterMs} ms`,
  });
  for (const [watcher, server] of state.sticky) if (server === id) state.sticky.delete(watcher);
  const { body, headers } = ccmpBody(extendedRequest(deps, "drain", elementsFor(state, deps)));
  control(state, deps, id, "INFO", headers, body).catch((error: unknown) => {
    deps.log.warn("drain request not answered", { server: id, error: String(error) });
  });
}

function markDead(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  id: string,
  reason: string,
): void {
  const record = state.servers.get(id);
  if (!record || record.dead || record.id === deps.router.nodeId) return;
  record.dead = true;
  record.pending = 0;
  record.session = "none";
  record.dialog = undefined;
  state.counters.declaredDead += 1;
  if (state.promoting === id) {
    state.promoting = undefined;
    releaseHeld(state, deps, ctx);
  }
  if (state.draining === id) state.draining = undefined;
  for (const [watcher, server] of state.sticky) if (server === id) state.sticky.delete(watcher);
  decide(state, deps, ctx, { type: "dead", server: id, reason });
}

function onMembers(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  members: readonly MemberInfo[],
): void {
  const alive = new Set(members.map((m) => m.id));
  for (const member of members) {
    let record = state.servers.get(member.id);
    if (!record || (record.dead && member.state === "ready")) {
      record = {
        id: member.id,
        role: member.role,
        sip: member.sip,
        session: member.id === deps.router.nodeId ? "up" : "none",
        dialog: undefined,
        load: 0,
        users: 0,
        perUser: undefined,
        pending: 0,
        lastReport: Date.now(),
        dead: false,
        promoted: false,
      };
      state.servers.set(member.id, record);
    }
    record.role = member.role;
    record.sip = member.sip;
    if (member.id === deps.router.nodeId) continue;
    const inPool = member.role === "pool" && record.session === "none";
    if (inPool && !state.pool.includes(member.id)) state.pool.push(member.id);
    if (!inPool) state.pool = state.pool.filter((id) => id !== member.id);
    if (member.role === "server" && member.state === "ready" && record.session === "none") {
      invite(state, deps, ctx, record, false);
    }
  }
  for (const record of state.servers.values()) {
    if (!alive.has(record.id)) {
      state.pool = state.pool.filter((id) => id !== record.id);
      if (record.session !== "none")
        markDead(state, deps, ctx, record.id, "left the cluster membership");
      state.servers.delete(record.id);
    }
  }
}

function onTick(state: SupervisorState, deps: SupervisorDeps, ctx: ActorContext): void {
  const now = Date.now();
  const self = state.servers.get(deps.router.nodeId);
  if (self) {
    const level = deps.localLoad();
    self.users = deps.localUsers();
    learnPerUser(self, level);
    const arriving = state.arriving.pending(deps.localHas, now);
    self.load = exact(level + arriving * stepOf(self, deps));
    self.lastReport = now;
  }
  // Not longer than half the ingress's ask timeout: past it the watcher goes where it can now.
  releaseHeld(state, deps, ctx, deps.settings.askTimeoutMs / 2);
  for (const id of silentServers(entries(state, deps.router.nodeId), now, deps.settings)) {
    markDead(state, deps, ctx, id, `no load report for ${deps.settings.deadAfterMs} ms`);
  }
  const current = entries(state, deps.router.nodeId);
  if (allBelowMin(current, deps.settings)) state.lowSince ??= now;
  else state.lowSince = undefined;
  const drain = decideDrain(
    current,
    state.lowSince,
    state.promoting !== undefined || state.draining !== undefined,
    state.lastChangeAt,
    now,
    deps.settings,
  );
  if (drain) startDrain(state, deps, ctx, drain);
  startPromotion(state, deps, ctx);
}

// ---- control requests from servers ------------------------------------------------------------

function answerInfo(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  request: SipRequest,
): SipResponse {
  const id = nodeOf(request.headers.from.uri);
  const record = id ? state.servers.get(id) : undefined;
  let message: CcmpMessage;
  try {
    message = decodeCcmp(request.body);
  } catch (error) {
    state.counters.badCcmp += 1;
    const ccmpError =
      error instanceof CcmpError ? error : new CcmpError(400, "undecodable CCMP body");
    return controlResponse(request, record?.dialog, 200, {
      body: encodeCcmp(errorResponse(ccmpError)),
      contentType: EXTD_CCMP_CONTENT_TYPE,
    });
  }
  if (message.kind === "options-request") {
    // RFC 6503 optionsRequest: which (extended) messages this server understands.
    return controlResponse(request, record?.dialog, 200, {
      body: encodeCcmp({
        kind: "options-response",
        confUserID: message.confUserID,
        responseCode: 200,
        extensions: [...EXTENSIONS],
      }),
      contentType: EXTD_CCMP_CONTENT_TYPE,
    });
  }
  if (record && message.kind === "request") {
    const level = message.elements.pressvrLoad?.find((l) => l.svrId === record.id)?.level;
    if (level !== undefined) {
      record.load = exact(level + record.pending);
      record.lastReport = Date.now();
    }
    const users = message.elements.presSysUsers?.find((u) => u.svrId === record.id);
    if (users) record.users = users.count ?? users.users?.length ?? record.users;
    if (level !== undefined) learnPerUser(record, level);
    if (message.extension === "ready" && record.session === "syncing") {
      record.session = "up";
      state.promoting = undefined;
      state.lastChangeAt = Date.now();
      decide(state, deps, ctx, {
        type: "promoted",
        server: record.id,
        reason: "promoted server has the presence data and takes watchers",
      });
      releaseHeld(state, deps, ctx);
    }
    if (message.extension === "drained" && record.session === "draining") {
      record.session = "closing";
      control(state, deps, record.id, "BYE", {}).then(
        () => ctx.tell({ type: "bye-answered", id: record.id }),
        () => ctx.tell({ type: "bye-answered", id: record.id }),
      );
    }
  }
  const answer: CcmpMessage = {
    kind: "response",
    confUserID: message.kind === "request" ? message.confUserID : "",
    responseCode: 200,
    responseString: "success",
    extension: message.kind === "request" ? message.extension : "load-report",
    elements: elementsFor(state, deps),
  };
  return controlResponse(request, record?.dialog, 200, {
    body: encodeCcmp(answer),
    contentType: EXTD_CCMP_CONTENT_TYPE,
  });
}

/** The promoted server's SUBSCRIBE: 200, then its presentities' state in bounded NOTIFY batches. */
function answerSyncSubscribe(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  request: SipRequest,
): SipResponse {
  const id = nodeOf(request.headers.from.uri);
  const record = id ? state.servers.get(id) : undefined;
  if (record?.session !== "syncing") {
    return controlResponse(request, undefined, 481);
  }
  const candidates = [
    ...[...state.servers.values()].filter(isReady).map((r) => r.id),
    record.id,
  ].sort();
  sendPresenceData(state, deps, record, candidates).then(
    (sent) => ctx.tell({ type: "sync-sent", id: record.id, ...sent }),
    (error: unknown) =>
      ctx.tell({
        type: "sync-sent",
        id: record.id,
        presentities: 0,
        batches: 0,
        error: String(error),
      }),
  );
  return controlResponse(request, record.dialog, 200, { headers: { expires: "0" } });
}

/** Bytes of presence data per export page and per NOTIFY batch: well under NATS's 1 MB max_payload. */
const SYNC_MAX_BYTES = 256 * 1024;

async function sendPresenceData(
  state: SupervisorState,
  deps: SupervisorDeps,
  record: ServerRecord,
  candidates: string[],
): Promise<{ presentities: number; batches: number }> {
  const sources = [...state.servers.values()].filter(isReady).map((r) => r.id);
  let batch: ResourceSnapshot[] = [];
  let bytes = 0;
  let batches = 0;
  let presentities = 0;
  const notify = async (last: boolean): Promise<void> => {
    const response = await control(
      state,
      deps,
      record.id,
      "NOTIFY",
      {
        event: SYNC_EVENT,
        "subscription-state": last ? "terminated;reason=noresource" : "active;expires=60",
        "content-type": SYNC_CONTENT_TYPE,
      },
      Buffer.from(JSON.stringify(batch), "utf8"),
    );
    if (response.status >= 300) throw new Error(`NOTIFY batch ${batches} got ${response.status}`);
    batches += 1;
    batch = [];
    bytes = 0;
  };
  for (const node of sources) {
    let after: string | undefined;
    do {
      const page: ExportPage = await deps.router.ask<ExportPage>(
        deps.serverOf(node),
        {
          type: "export",
          candidates,
          target: record.id,
          maxBytes: SYNC_MAX_BYTES,
          ...(after ? { after } : {}),
        },
        deps.settings.askTimeoutMs * 5,
      );
      for (const snapshot of page.snapshots) {
        const size = JSON.stringify(snapshot).length;
        if (
          batch.length >= deps.settings.syncBatch ||
          (batch.length > 0 && bytes + size > SYNC_MAX_BYTES)
        ) {
          await notify(false);
        }
        batch.push(snapshot);
        bytes += size;
        presentities += 1;
      }
      after = page.next;
    } while (after !== undefined);
  }
  await notify(true);
  return { presentities, batches };
}

function answerControl(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  raw: Buffer,
): SipResponse | undefined {
  const message = fromMail(raw);
  if (message.kind !== "request") return undefined;
  switch (message.method) {
    case "INFO":
      return answerInfo(state, deps, ctx, message);
    case "SUBSCRIBE":
      if ((headerValue(message, "event") ?? "").startsWith(SYNC_EVENT)) {
        return answerSyncSubscribe(state, deps, ctx, message);
      }
      return controlResponse(message, undefined, 489, { headers: { "allow-events": SYNC_EVENT } });
    case "BYE": {
      const id = nodeOf(message.headers.from.uri);
      const record = id ? state.servers.get(id) : undefined;
      if (record) {
        record.session = "none";
        record.dialog = undefined;
      }
      return controlResponse(message, undefined, 200);
    }
    case "ACK":
      return undefined;
    default:
      return controlResponse(message, undefined, 405, {
        headers: { allow: "INFO, SUBSCRIBE, BYE" },
      });
  }
}

/** The node id in a control URI `sip:<node>@presence-cluster`. */
function nodeOf(uri: string): string | undefined {
  return /^sip:([^@]+)@presence-cluster/.exec(uri)?.[1];
}

// ---- placement --------------------------------------------------------------------------------

/** What the placement span shows: each server's load level as seen, and the server chosen. */
function decisionAttributes(
  seen: readonly ServerLoadEntry[],
  placed: Placement | undefined,
): SpanAttributes {
  const attributes: SpanAttributes = {
    "presence.placement.server": placed?.server ?? "none",
    "presence.placement.reason": placed?.reason ?? "no server ready",
    "presence.placement.loads": "",
  };
  let loads = "";
  for (const s of seen) {
    const keys = serverKeysOf(s.id);
    const load = Math.round(s.load * 100) / 100;
    loads += `${loads === "" ? "" : ","}${keys.json}:${JSON.stringify(load)}`;
    attributes[keys.load] = load;
    attributes[keys.ready] = s.ready;
  }
  attributes["presence.placement.loads"] = `{${loads}}`;
  return attributes;
}

/** A server's attribute keys and its id as JSON, made once per server (a few per cluster). */
const serverKeys = new Map<string, { load: string; ready: string; json: string }>();

function serverKeysOf(id: string): { load: string; ready: string; json: string } {
  let keys = serverKeys.get(id);
  if (!keys) {
    keys = { load: `presence.load.${id}`, ready: `presence.ready.${id}`, json: JSON.stringify(id) };
    if (serverKeys.size >= 1024) serverKeys.clear();
    serverKeys.set(id, keys);
  }
  return keys;
}

/**
 * Places the held watchers again: all of them (the promotion ended), or those held at least
 * `olderThanMs` (they are not held again).
 */
function releaseHeld(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  olderThanMs?: number,
): void {
  const now = Date.now();
  const due = state.held.filter((h) => olderThanMs === undefined || now - h.since >= olderThanMs);
  if (due.length === 0) return;
  state.held = state.held.filter((h) => !due.includes(h));
  for (const h of due) {
    place(
      state,
      deps,
      ctx,
      h.watcher,
      h.replyTo,
      () => {},
      olderThanMs === undefined ? h.since : 0,
    );
  }
}

/**
 * Places a new watcher. When every server is above max-load and a pool server is being promoted
 * (perhaps by this very watcher), the watcher waits for it, as user B of the paper's Fig. 5 —
 * unless it has waited since `heldSince` for half the ask timeout already.
 */
function place(
  state: SupervisorState,
  deps: SupervisorDeps,
  ctx: ActorContext,
  watcher: string,
  replyTo: ReplyTo | undefined,
  annotate: Annotate,
  heldSince?: number,
): void {
  const self = deps.router.nodeId;
  const reply = (answer: PlaceAnswer): void =>
    deps.router.reply(replyTo, { ok: true, value: answer });
  const seen = entries(state, self);
  const placed = placeWatcher(seen, state.sticky.get(watcher), deps.settings);
  annotate(() => decisionAttributes(seen, placed));
  const record = placed ? state.servers.get(placed.server) : undefined;
  if (!placed || !record) {
    reply({ server: self, sip: deps.localSip(), local: true, reason: "no server ready" });
    return;
  }
  if (placed.reason === "overloaded") {
    startPromotion(state, deps, ctx);
    const since = heldSince ?? Date.now();
    if (state.promoting !== undefined && Date.now() - since < deps.settings.askTimeoutMs / 2) {
      state.held.push({ watcher, replyTo, since });
      annotate({ "presence.placement.held_for": state.promoting });
      return;
    }
  }
  state.counters.placed += 1;
  // Counted at once: a burst must not all go to the server that was least loaded at its start.
  // A new user is counted as what a user there brings on average (it will subscribe to more than
  // one resource), never less than one watcher.
  const step = placed.reason === "sticky" ? 0 : stepOf(record, deps);
  record.load = exact(record.load + step);
  state.sticky.delete(watcher);
  state.sticky.set(watcher, record.id);
  if (state.sticky.size > MAX_STICKY) {
    const oldest = state.sticky.keys().next().value;
    if (oldest !== undefined) state.sticky.delete(oldest);
  }
  startPromotion(state, deps, ctx);
  if (record.id === self) {
    state.arriving.expect(watcher, Date.now());
    reply({ server: self, sip: deps.localSip(), local: true, reason: placed.reason });
    return;
  }
  // The paper: tell the chosen server to expect the user (<redirection-usr-addr>), then 302.
  // Proxied watchers are announced too: the server counts them in its load until they arrive.
  record.pending = exact(record.pending + step);
  const { body, headers } = ccmpBody(
    extendedRequest(deps, "redirect-user", { redirectionUsrAddr: watcher }),
  );
  const told = control(state, deps, record.id, "INFO", headers, body).then(
    (response) => (response.status < 300 ? "ok" : "server refused the user"),
    () => "server unreachable",
  );
  told.then((answer) =>
    ctx.tell({ type: "redirect-answered", id: record.id, step, ok: answer === "ok" }),
  );
  if (deps.settings.dispatch === "proxy") {
    reply({ server: record.id, sip: record.sip, local: false, reason: placed.reason });
    return;
  }
  told.then((answer) => {
    if (answer === "ok") {
      state.counters.redirected += 1;
      reply({ server: record.id, sip: record.sip, local: false, reason: placed.reason });
      return;
    }
    state.arriving.expect(watcher, Date.now());
    reply({ server: self, sip: deps.localSip(), local: true, reason: answer });
  });
}

/** What a new user placed on `record` counts until a report shows it: a user there on average, at least one watcher. */
function stepOf(record: ServerRecord, deps: SupervisorDeps): number {
  return Math.max(deps.settings.loadPerWatcher, record.perUser ?? 0);
}

/** Sums of 0.1 drift (200 × 0.1 = 20.000000000000014 would count as above 20): kept to 6 places. */
function exact(load: number): number {
  return Math.round(load * 1e6) / 1e6;
}

function view(state: SupervisorState, deps: SupervisorDeps): SupervisorView {
  const now = Date.now();
  return {
    maxLoad: deps.settings.maxLoad,
    minLoad: deps.settings.minLoad,
    dispatch: deps.settings.dispatch,
    activeServers: activeCount(state),
    servers: [...state.servers.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((r) => ({
        id: r.id,
        role: r.role,
        sip: r.sip,
        session: r.session,
        ready: isReady(r),
        load: Math.round(r.load * 100) / 100,
        users: r.users,
        lastReportMsAgo: r.session === "none" ? null : now - r.lastReport,
      })),
    pool: [...state.pool].sort(),
    assignments: state.sticky.size,
    decisions: [...state.decisions],
    counters: { ...state.counters },
  };
}

// ---- actor ------------------------------------------------------------------------------------

export function spawnSupervisor(deps: SupervisorDeps): ActorHandle {
  const initial: SupervisorState = {
    servers: new Map(),
    pool: [],
    sticky: new Map(),
    promoting: undefined,
    held: [],
    arriving: new ExpectedUsers(MAX_STICKY),
    draining: undefined,
    lowSince: undefined,
    lastChangeAt: 0,
    decisions: [],
    counters: {
      placed: 0,
      redirected: 0,
      promotions: 0,
      drains: 0,
      poolExhausted: 0,
      declaredDead: 0,
      badCcmp: 0,
    },
    timer: undefined,
  };
  return spawnActor<SupervisorState, SupervisorCommand>(
    deps.system,
    deps.router,
    deps.router.address(SUPERVISOR_KIND, SUPERVISOR_ID),
    {
      receive(state, message, ctx) {
        if (!state.timer) {
          state.timer = setInterval(
            () => ctx.tell({ type: "tick" }),
            deps.settings.reportIntervalMs,
          );
          state.timer.unref();
        }
        switch (message.type) {
          case "place":
            ctx.span("supervisor place", { "presence.watcher": message.watcher }, (annotate) =>
              place(state, deps, ctx, message.watcher, ctx.replyTo, annotate),
            );
            break;
          case "members":
            onMembers(state, deps, ctx, message.members);
            break;
          case "inspect":
            ctx.reply(view(state, deps));
            break;
          case "control": {
            const response = answerControl(state, deps, ctx, message.raw);
            if (response) ctx.reply({ raw: toMail(response).raw } satisfies ControlReply);
            break;
          }
          case "tick":
            onTick(state, deps, ctx);
            break;
          case "invite-answered": {
            const record = state.servers.get(message.id);
            if (record?.session !== "inviting") break;
            const response = message.raw ? fromMail(message.raw) : undefined;
            if (response?.kind !== "response" || response.status >= 300 || !record.dialog) {
              deps.log.warn("control session not set up", {
                server: message.id,
                error: message.error,
              });
              record.session = "none";
              if (state.promoting === record.id) {
                state.promoting = undefined;
                state.pool.push(record.id);
                releaseHeld(state, deps, ctx);
              }
              break;
            }
            record.dialog = established(record.dialog, response);
            const ack = controlRequest(record.dialog, deps.router.nodeId, "ACK", {});
            deps.router.send(deps.serverOf(record.id), toMail(ack.request));
            record.lastReport = Date.now();
            record.load = 0;
            record.pending = 0;
            if (record.promoted) {
              // The promoted server now SUBSCRIBEs for the presence data (Fig. 5).
              record.session = "syncing";
            } else {
              record.session = "up";
              decide(state, deps, ctx, {
                type: "session-up",
                server: record.id,
                reason: "server joined",
              });
            }
            break;
          }
          case "redirect-answered": {
            const record = state.servers.get(message.id);
            if (!record) break;
            record.pending = Math.max(0, exact(record.pending - message.step));
            if (!message.ok) record.load = Math.max(0, exact(record.load - message.step));
            break;
          }
          case "bye-answered": {
            const record = state.servers.get(message.id);
            if (record) {
              record.session = "none";
              record.dialog = undefined;
              record.load = 0;
              record.pending = 0;
              record.pending = 0;
              if (!state.pool.includes(record.id)) state.pool.push(record.id);
            }
            state.draining = undefined;
            state.lastChangeAt = Date.now();
            decide(state, deps, ctx, {
              type: "drained",
              server: message.id,
              reason: "watchers moved, presentities moved home, session closed: back in the pool",
            });
            break;
          }
          case "sync-sent":
            if (message.error) {
              deps.log.warn("presence data not delivered to the promoted server", message);
            } else {
              deps.log.info("presence data delivered to the promoted server", message);
            }
            break;
        }
        return state;
      },
      stopped(state) {
        if (state.timer) clearInterval(state.timer);
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
