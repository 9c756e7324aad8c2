// actors: the SIP ingress of a node — validates each request and turns it into actor mail.
// Owns the presence rules at the edge (RFC 3856 / 3903 / 6665 checks) and the pending server transactions.

import type { Logger } from "../bootstrap/log.js";
import { PIDF_CONTENT_TYPE, PidfError, parsePidf } from "../protocol/pidf/pidf.js";
import { presentityOf } from "../protocol/presence/presentity.js";
import type { PublishRequest } from "../protocol/presence/publications.js";
import { createUasDialog, dialogKey, requestDialogKey } from "../protocol/sip/dialog.js";
import {
  expiresOf,
  makeResponse,
  mediaTypes,
  parseParams,
  randomToken,
} from "../protocol/sip/headers.js";
import { headerValue, type SipRequest } from "../protocol/sip/message.js";
import type { Address } from "../transport/envelope.js";
import { MailError } from "../transport/errors.js";
import type { Router } from "../transport/router.js";
import type { IncomingRequest } from "../transport/sip-endpoint.js";
import { keepTrace } from "../transport/tracing.js";
import type { PresenceState, PublishOutcome, ResourceCommand } from "./presence-resource.js";
import type { WatchHub } from "./server.js";
import type { PresenceSettings, ResponseSpec, SipPort } from "./services.js";
import { SUBSCRIBER_KIND, type SubscriberCommand, type SubscriberInit } from "./subscriber.js";
import type { PlaceAnswer } from "./supervisor/supervisor.js";

export const ALLOW = "OPTIONS, SUBSCRIBE, PUBLISH";
export const ALLOW_EVENTS = "presence";
/** Option tags we support (RFC 3261 §8.2.2.3: anything else in Require gets 420). */
const SUPPORTED: readonly string[] = [];
/** Seconds a client is told to wait when the request could not be handled now. */
const RETRY_AFTER = "5";
/** A server transaction nobody answered is forgotten after this long (64·T1 at the default T1). */
const PENDING_TTL_MS = 40_000;

export interface IngressDeps {
  /** The node's role now (a pool node may be promoted, a server drained). */
  role: () => "primary" | "server" | "pool";
  /** Whether this server's control session with the primary is up (a server without one takes no users). */
  sessionUp: () => boolean;
  dispatchMode: "redirect" | "proxy";
  /** The Supervisor's choice of server for a new watcher (primary only). */
  place: (watcher: string) => Promise<PlaceAnswer>;
  /** The primary's SIP host:port, when the cluster has one. */
  primarySip: () => string | undefined;
  router: Router;
  log: Logger;
  settings: PresenceSettings;
  hub: WatchHub;
  sip: Pick<SipPort, "contact" | "request">;
  resourceOf: (presentity: string) => Address;
  spawnSubscriber: (address: Address, init: SubscriberInit) => void;
  askTimeoutMs: number;
}

type Pending = { incoming: IncomingRequest; since: number };

export class Ingress {
  private readonly pending = new Map<string, Pending>();
  /** Final and provisional responses sent, by "<method> <status>". */
  private readonly answered = new Map<string, number>();
  private accepting = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: IngressDeps) {
    this.sweeper = setInterval(() => this.sweep(), 5_000);
    this.sweeper.unref();
  }

  /** Ready: new subscriptions are taken and OPTIONS answers 200. */
  open(): void {
    this.accepting = true;
  }

  /** Shutting down: new subscriptions get 503 (in-dialog requests are still served). */
  drain(): void {
    this.accepting = false;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /** Answers a pending server transaction on behalf of an actor (SipPort.respond). */
  respond(tx: string, spec: ResponseSpec): void {
    const entry = this.pending.get(tx);
    if (!entry) return;
    this.pending.delete(tx);
    this.reply(entry.incoming, spec);
  }

  handle(incoming: IncomingRequest): void {
    const { request } = incoming;
    try {
      this.deps.log.debug("sip request", {
        method: request.method,
        callId: request.headers["call-id"],
        uri: request.uri,
      });
      if (request.method === "ACK") return;
      const problem = this.commonChecks(request);
      if (problem) {
        this.reply(incoming, problem);
        return;
      }
      switch (request.method) {
        case "OPTIONS":
          this.reply(incoming, this.optionsAnswer());
          return;
        case "SUBSCRIBE": {
          const refusal = this.subscribe(incoming);
          if (refusal) this.reply(incoming, refusal);
          return;
        }
        case "PUBLISH":
          this.publish(incoming).then(
            (answer) => this.reply(incoming, answer),
            (error: unknown) => this.failed(incoming, error),
          );
          return;
        default:
          if (request.headers.to.params.tag) {
            this.reply(incoming, { status: 481, reason: "Call/Transaction Does Not Exist" });
          } else {
            this.reply(incoming, {
              status: 405,
              reason: "Method Not Allowed",
              headers: { allow: ALLOW },
            });
          }
      }
    } catch (error) {
      this.failed(incoming, error);
    }
  }

  pendingTransactions(): number {
    return this.pending.size;
  }

  // ---- checks shared by every method ---------------------------------------------------------

  private commonChecks(request: SipRequest): ResponseSpec | undefined {
    if (request.version !== "2.0") {
      return { status: 505, reason: "Version Not Supported" };
    }
    if (!/^sips?:/i.test(request.uri)) {
      return { status: 416, reason: "Unsupported URI Scheme" };
    }
    const require = headerValue(request, "require");
    if (require) {
      const unsupported = require
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t.length > 0 && !SUPPORTED.includes(t.toLowerCase()));
      if (unsupported.length > 0) {
        return {
          status: 420,
          reason: "Bad Extension",
          headers: { unsupported: unsupported.join(", ") },
        };
      }
    }
    return undefined;
  }

  private optionsAnswer(): ResponseSpec {
    if (!this.accepting) {
      return {
        status: 503,
        reason: "Service Unavailable",
        headers: { "retry-after": RETRY_AFTER },
      };
    }
    return {
      status: 200,
      reason: "OK",
      headers: { allow: ALLOW, "allow-events": ALLOW_EVENTS, accept: PIDF_CONTENT_TYPE },
    };
  }

  /** Event must be `presence` (RFC 6665 §8.2.1: 489 with Allow-Events otherwise). */
  private eventOf(request: SipRequest): { ok: true; id: string | undefined } | ResponseSpec {
    const event = headerValue(request, "event");
    const parsed = event ? parseParams(event) : undefined;
    if (parsed?.value.trim().toLowerCase() !== "presence") {
      return { status: 489, reason: "Bad Event", headers: { "allow-events": ALLOW_EVENTS } };
    }
    return { ok: true, id: parsed.params.id ?? undefined };
  }

  /** Granted duration per RFC 6665 §4.2.1.1 / RFC 3903 §6: 423 below the minimum, capped above. */
  private grantedExpires(request: SipRequest): number | ResponseSpec {
    const asked = expiresOf(request);
    const { minExpires, maxExpires, defaultExpires } = this.deps.settings;
    if (asked === "invalid") return { status: 400, reason: "Invalid Expires header" };
    if (asked === undefined) return Math.min(defaultExpires, maxExpires);
    if (asked === 0) return 0;
    if (asked < minExpires) {
      return {
        status: 423,
        reason: "Interval Too Brief",
        headers: { "min-expires": String(minExpires) },
      };
    }
    return Math.min(asked, maxExpires);
  }

  // ---- SUBSCRIBE ------------------------------------------------------------------------------

  /** Hands the SUBSCRIBE to a Subscriber, or returns the refusal to send. */
  private subscribe(incoming: IncomingRequest): ResponseSpec | undefined {
    const { request } = incoming;
    const event = this.eventOf(request);
    if (!("ok" in event)) return event;
    const accept = mediaTypes(headerValue(request, "accept"));
    if (
      accept.length > 0 &&
      !accept.some((t) => t === PIDF_CONTENT_TYPE || t === "application/*" || t === "*/*")
    ) {
      return {
        status: 406,
        reason: "Not Acceptable",
        headers: { accept: PIDF_CONTENT_TYPE },
      };
    }
    const expires = this.grantedExpires(request);
    if (typeof expires !== "number") return expires;

    if (request.headers.to.params.tag) {
      const key = requestDialogKey(request);
      const address = key ? this.deps.router.address(SUBSCRIBER_KIND, key) : undefined;
      if (!address || !this.deps.router.isBound(address)) {
        return { status: 481, reason: "Subscription Does Not Exist" };
      }
      const refresh: SubscriberCommand = {
        type: "refresh",
        tx: this.hold(incoming),
        expires,
        cseq: request.headers.cseq.seq,
        contact: request.headers.contact?.[0]?.uri,
      };
      this.deps.router.send(address, refresh);
      return undefined;
    }

    if (!this.accepting) {
      return {
        status: 503,
        reason: "Service Unavailable",
        headers: { "retry-after": RETRY_AFTER },
      };
    }
    const presentity = presentityOf(request.uri);
    if (!presentity) return { status: 404, reason: "No Presentity In URI" };
    const role = this.deps.role();
    const primary = this.deps.primarySip();
    if (role !== "primary" && primary && (role === "pool" || !this.deps.sessionUp())) {
      // Not taking users (a spare, or a server whose control session is not up): the primary places them.
      return redirectTo(presentity, primary, incoming.peer.transport, "Not An Active Server");
    }
    if (role !== "primary") return this.accept(incoming, presentity, expires, event.id);
    const watcher = presentityOf(request.headers.from.uri) ?? request.headers.from.uri;
    // The answer comes later: what it leads to (302, Subscriber, NOTIFY) stays in this trace.
    this.deps.place(watcher).then(
      keepTrace((answer: PlaceAnswer) => {
        if (answer.local) {
          const refusal = this.accept(incoming, presentity, expires, event.id);
          if (refusal) this.reply(incoming, refusal);
        } else if (this.deps.dispatchMode === "redirect") {
          this.reply(
            incoming,
            redirectTo(presentity, answer.sip, incoming.peer.transport, "Moved Temporarily"),
          );
        } else {
          this.proxy(incoming, answer.sip).catch((error: unknown) => this.failed(incoming, error));
        }
      }),
      keepTrace((error: unknown) => {
        this.deps.log.warn("supervisor did not place the watcher; serving it here", { error });
        const refusal = this.accept(incoming, presentity, expires, event.id);
        if (refusal) this.reply(incoming, refusal);
      }),
    );
    return undefined;
  }

  /** Takes the subscription on this node: a Subscriber actor, once the presentity's home is watched. */
  private accept(
    incoming: IncomingRequest,
    presentity: string,
    expires: number,
    eventId: string | undefined,
  ): ResponseSpec | undefined {
    const { request } = incoming;
    const localTag = randomToken(10);
    // Pin the dialog to the connection only when the watcher itself sent the request (one Via):
    // through a proxy, the connection leads to the proxy, not to the watcher.
    const { connectionId: _pinned, ...unpinned } = incoming.peer;
    const peer = request.headers.via.length === 1 ? incoming.peer : unpinned;
    const dialog = createUasDialog(
      request,
      localTag,
      peer,
      this.deps.sip.contact(incoming.peer.transport),
    );
    if ("status" in dialog) return dialog;

    const id = dialogKey(dialog.callId, dialog.localTag, dialog.remoteTag);
    const address = this.deps.router.address(SUBSCRIBER_KIND, id);
    this.deps.spawnSubscriber(address, { dialog, presentity, eventId });
    this.deps.hub.add(presentity, id);
    const tx = this.hold(incoming);
    this.deps.hub.watch(presentity).then(
      keepTrace((state: PresenceState) => {
        const start: SubscriberCommand = { type: "subscribe", tx, expires, state };
        this.deps.router.send(address, start);
      }),
      keepTrace((error: unknown) => {
        this.deps.log.warn("presentity home unreachable; subscription refused", {
          presentity,
          error,
        });
        const stop: SubscriberCommand = { type: "terminate", reason: "noresource" };
        this.deps.router.send(address, stop);
        this.respond(tx, unavailable(error));
      }),
    );
    return undefined;
  }

  /**
   * `--dispatch proxy`: forwards the initial SUBSCRIBE to the chosen server (RFC 3261 §16, no
   * Record-Route), so the dialog is between the watcher and that server, and relays its answer.
   */
  private async proxy(incoming: IncomingRequest, target: string): Promise<void> {
    const { request } = incoming;
    const maxForwards = Number(headerValue(request, "max-forwards") ?? "70") - 1;
    if (!Number.isFinite(maxForwards) || maxForwards < 0) {
      this.reply(incoming, { status: 483, reason: "Too Many Hops" });
      return;
    }
    const [host, port] = target.split(":");
    const forwarded: SipRequest = {
      ...request,
      headers: {
        ...request.headers,
        via: [...request.headers.via],
        "max-forwards": String(maxForwards),
      },
    };
    const response = await this.deps.sip.request(forwarded, {
      transport: incoming.peer.transport,
      address: host ?? "",
      port: Number(port),
    });
    this.count(request.method, response.status);
    incoming.respond({ ...response, headers: { ...response.headers, via: request.headers.via } });
  }

  // ---- PUBLISH --------------------------------------------------------------------------------

  /** Applies the PUBLISH at the presentity's home; resolves with the answer to send. */
  private async publish(incoming: IncomingRequest): Promise<ResponseSpec> {
    const { request } = incoming;
    const event = this.eventOf(request);
    if (!("ok" in event)) return event;
    const presentity = presentityOf(request.uri);
    if (!presentity) return { status: 404, reason: "No Presentity In URI" };
    const expires = this.grantedExpires(request);
    if (typeof expires !== "number") return expires;
    const etag = headerValue(request, "sip-if-match")?.trim();
    const hasBody = request.body.length > 0;

    let document: ReturnType<typeof parsePidf> | undefined;
    if (hasBody && !(etag && expires === 0)) {
      const type = mediaTypes(headerValue(request, "content-type"))[0];
      if (type !== PIDF_CONTENT_TYPE) {
        return {
          status: 415,
          reason: "Unsupported Media Type",
          headers: { accept: PIDF_CONTENT_TYPE },
        };
      }
      try {
        document = parsePidf(request.body);
      } catch (error) {
        if (error instanceof PidfError) {
          return { status: 400, reason: error.reason };
        }
        throw error;
      }
    }

    let publish: PublishRequest;
    if (!etag) {
      if (!document) return { status: 400, reason: "Missing PIDF body" };
      if (expires === 0) {
        return { status: 400, reason: "Expires 0 on initial PUBLISH" };
      }
      publish = { kind: "initial", document, expires };
    } else if (expires === 0) {
      publish = { kind: "remove", etag };
    } else if (document) {
      publish = { kind: "modify", etag, document, expires };
    } else {
      publish = { kind: "refresh", etag, expires };
    }

    const command: ResourceCommand = { type: "publish", request: publish };
    let outcome: PublishOutcome;
    try {
      outcome = await this.deps.router.ask<PublishOutcome>(
        this.deps.resourceOf(presentity),
        command,
        this.deps.askTimeoutMs,
      );
    } catch (error) {
      // RFC 3903 §6: nothing is acknowledged that was not applied; the client retries later.
      this.deps.log.warn("PUBLISH not applied", { presentity, error });
      return unavailable(error);
    }
    if (!outcome.ok) return { status: outcome.status, reason: outcome.reason };
    return {
      status: 200,
      reason: "OK",
      headers: {
        expires: String(outcome.expires),
        ...(outcome.etag ? { "sip-etag": outcome.etag } : {}),
      },
    };
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private hold(incoming: IncomingRequest): string {
    const tx = randomToken(9);
    this.pending.set(tx, { incoming, since: Date.now() });
    return tx;
  }

  private sweep(): void {
    const limit = Date.now() - PENDING_TTL_MS;
    for (const [tx, entry] of this.pending) {
      if (entry.since < limit) {
        this.pending.delete(tx);
        this.reply(entry.incoming, { status: 500, reason: "Request Not Answered In Time" });
      }
    }
  }

  private failed(incoming: IncomingRequest, error: unknown): void {
    this.deps.log.error("request handling failed", {
      method: incoming.request.method,
      callId: incoming.request.headers["call-id"],
      error,
    });
    this.reply(incoming, { status: 500, reason: "Server Internal Error" });
  }

  /** Responses this ingress sent, by request method and status (the node's SIP metrics). */
  responseCounts(): ReadonlyMap<string, number> {
    return this.answered;
  }

  private count(method: string, status: number): void {
    const key = `${method} ${status}`;
    this.answered.set(key, (this.answered.get(key) ?? 0) + 1);
  }

  private reply(incoming: IncomingRequest, spec: ResponseSpec): void {
    this.count(incoming.request.method, spec.status);
    const response = makeResponse(incoming.request, spec.status, spec.reason, {
      ...(spec.headers ? { headers: spec.headers } : {}),
      ...(spec.body ? { body: spec.body } : {}),
      ...(spec.contentType ? { contentType: spec.contentType } : {}),
    });
    if (spec.toTag) {
      response.headers.to = {
        ...response.headers.to,
        params: { ...response.headers.to.params, tag: spec.toTag },
      };
    } else if (!response.headers.to.params.tag && spec.status > 100) {
      // RFC 3261 §8.2.6.2: a UAS adds a To tag to responses outside a dialog.
      response.headers.to = {
        ...response.headers.to,
        params: { ...response.headers.to.params, tag: randomToken(10) },
      };
    }
    incoming.respond(response);
  }
}

/** A 302 sending the watcher to `sip` (host:port) for the same presentity (RFC 3261 §21.3.3). */
function redirectTo(
  presentity: string,
  sip: string,
  transport: string,
  reason: string,
): ResponseSpec {
  const user = presentity.slice("sip:".length).split("@")[0] ?? "";
  const contact = `sip:${user}@${sip}${transport === "tcp" ? ";transport=tcp" : ""}`;
  return { status: 302, reason, headers: { contact: [{ uri: contact, params: {} }] } };
}

function unavailable(error: unknown): ResponseSpec {
  const reason =
    error instanceof MailError && error.code === "timeout"
      ? "Presence Home Timed Out"
      : "Presence Home Unreachable";
  return { status: 503, reason, headers: { "retry-after": RETRY_AFTER } };
}
