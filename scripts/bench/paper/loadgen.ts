// scripts/bench/paper: the load generator of the paper's experiment — simulated users over real SIP/UDP
// from one process, through the project's own SIP endpoint; it follows redirects and times every exchange.

import { performance } from "node:perf_hooks";
import { silentLogger } from "../../../bootstrap/log.js";
import { makeResponse, parseUri, randomToken } from "../../../protocol/sip/headers.js";
import {
  headerValue,
  type Peer,
  type SipRequest,
  type SipResponse,
} from "../../../protocol/sip/message.js";
import { type IncomingRequest, SipEndpoint } from "../../../transport/sip-endpoint.js";
import { pidfTuples } from "../pidf.js";

const HOST = "127.0.0.1";
const PIDF_NS = "urn:ietf:params:xml:ns:pidf";
/** The PUBLISH send time travels in the first tuple's note: "bench-ts:<ms since the generator began>". */
const MARKER = "bench-ts:";
const MARKER_BYTES = Buffer.from(MARKER, "latin1");
/** A 50 KB NOTIFY in a burst must not overflow the socket (the kernel caps it at rmem_max). */
const RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;
/** Redirects followed per subscription before it counts as failed (a loop). */
const MAX_REDIRECTS = 3;

export interface LoadSpec {
  /** Where every new subscription is sent: the primary (the single server in the "existing method"). */
  primary: Peer;
  /** Presence resources each user watches. */
  resources: number;
  /** One new subscription per user per this many ms (the paper: 1 s); the user's oldest one ends. */
  subscribeIntervalMs: number;
  /** Each resource publishes an update this often; undefined: one initial PUBLISH only. */
  updateIntervalMs: number | undefined;
  /** Size of every PIDF document published. */
  pidfBytes: number;
  /** Expires of subscriptions and publications (long: nothing is refreshed within a run). */
  expires: number;
}

/** One timed exchange: when it began (generator clock, ms) and how long it took (ms). */
export interface Sample {
  at: number;
  ms: number;
}

export interface Outcome {
  /** New subscriptions begun (sent to the primary), by the time they began. */
  subscribeSent: number[];
  /** SUBSCRIBE sent to the primary → first NOTIFY of that dialog received (redirect included). */
  subscriptions: Sample[];
  /** PUBLISH sent → NOTIFY with that document received by a watcher. */
  notifications: Sample[];
  /** New subscriptions that got a final error (or no NOTIFY), by the time they began. */
  subscribeFailures: number[];
  /** PUBLISHes answered with an error or not at all, by the time they began. */
  publishFailures: number[];
  /** PUBLISHes answered 200, by the time they began. */
  publishes: number[];
  /** Updates not sent because the resource's previous PUBLISH was still unanswered. */
  skippedUpdates: number;
}

interface Subscription {
  readonly user: User;
  readonly resource: string;
  readonly callId: string;
  readonly tag: string;
  readonly sentAt: number;
  cseq: number;
  toTag: string | undefined;
  /** Where in-dialog requests go: the notifier's Contact. */
  remote: Peer | undefined;
  remoteUri: string | undefined;
  firstNotify: boolean;
  lastMarker: string | undefined;
}

interface Resource {
  readonly uri: string;
  readonly callId: string;
  readonly tag: string;
  cseq: number;
  etag: string | undefined;
  inFlight: boolean;
  timer: NodeJS.Timeout | undefined;
}

interface User {
  readonly name: string;
  readonly aor: string;
  readonly resources: Resource[];
  /** The node its subscriptions landed on (from the redirect; the primary when it served them). */
  server: Peer | undefined;
  /** Open subscriptions, oldest first. */
  readonly open: Subscription[];
  next: number;
  timer: NodeJS.Timeout | undefined;
}

function peerOf(uri: string | undefined): { peer: Peer; uri: string } | undefined {
  const parsed = uri ? parseUri(uri) : undefined;
  if (!uri || !parsed) return undefined;
  const transport = parsed.params.transport?.toLowerCase() === "tcp" ? "tcp" : "udp";
  return { peer: { transport, address: parsed.host, port: parsed.port ?? 5060 }, uri };
}

/** A resource's URI addressed to the node at `peer` (`sip:r1x0@host:port`). */
function uriAt(uri: string, peer: Peer): string {
  return uri.replace(`@${HOST}`, `@${peer.address}:${peer.port}`);
}

/** The time a marker carries, if the body has one. Reads only the bytes after the marker. */
function markerOf(body: Buffer): string | undefined {
  const at = body.indexOf(MARKER_BYTES);
  if (at < 0) return undefined;
  const end = body.indexOf(60 /* < */, at);
  return body.toString("latin1", at + MARKER.length, end < 0 ? at + 40 : end);
}

export class LoadGenerator {
  readonly outcome: Outcome = {
    subscribeSent: [],
    subscriptions: [],
    notifications: [],
    subscribeFailures: [],
    publishFailures: [],
    publishes: [],
    skippedUpdates: 0,
  };
  private readonly users: User[] = [];
  private readonly byCallId = new Map<string, Subscription>();
  private readonly filler: string;
  private closed = false;

  private constructor(
    private readonly endpoint: SipEndpoint,
    private readonly spec: LoadSpec,
  ) {
    // The envelope and the first tuple with the marker take about 330 bytes.
    this.filler = pidfTuples(Math.max(1, spec.pidfBytes - 330), 1);
  }

  static async open(spec: LoadSpec): Promise<LoadGenerator> {
    let self: LoadGenerator | undefined;
    const endpoint = await SipEndpoint.listen(
      {
        host: HOST,
        port: 0,
        maxMessageBytes: 1 << 20,
        log: silentLogger,
        udpReceiveBufferBytes: RECEIVE_BUFFER_BYTES,
      },
      (incoming) => self?.onRequest(incoming),
    );
    self = new LoadGenerator(endpoint, spec);
    return self;
  }

  /** Milliseconds on the generator's clock (the times samples carry). */
  now(): number {
    return performance.now();
  }

  get userCount(): number {
    return this.users.length;
  }

  /** Subscriptions open (answered 2xx and not ended), over all users. */
  openSubscriptions(): number {
    return this.users.reduce((sum, user) => sum + user.open.length, 0);
  }

  /** New subscriptions begun at or after `since` that have neither a first NOTIFY nor a failure yet. */
  pendingSince(since: number): number {
    let pending = 0;
    for (const sub of this.byCallId.values())
      if (!sub.firstNotify && sub.sentAt >= since) pending += 1;
    return pending;
  }

  /** Users whose subscriptions landed on each node, by SIP port. */
  placement(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const user of this.users) {
      const port = user.server?.port ?? 0;
      counts.set(port, (counts.get(port) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * A user logs in: its first subscription goes through the primary (which places the user), its
   * resources publish their first state to the user's server, and the other subscriptions follow
   * within one interval. Then one subscription per interval replaces the oldest. Resolves when the
   * first subscription is answered.
   */
  async join(): Promise<void> {
    const index = this.users.length;
    const name = `u${index}`;
    const user: User = {
      name,
      aor: `sip:${name}@${HOST}`,
      resources: Array.from({ length: this.spec.resources }, (_, k) => ({
        uri: `sip:r${index}x${k}@${HOST}`,
        callId: `${randomToken(10)}@${HOST}`,
        tag: randomToken(6),
        cseq: 0,
        etag: undefined,
        inFlight: false,
        timer: undefined,
      })),
      server: undefined,
      open: [],
      next: 0,
      timer: undefined,
    };
    this.users.push(user);
    const [first, ...rest] = user.resources;
    if (!first) return;
    await this.subscribe(user, first);
    await Promise.all(user.resources.map((r) => this.publish(user, r)));
    const step = this.spec.subscribeIntervalMs / Math.max(1, rest.length);
    rest.forEach((resource, i) => {
      setTimeout(() => void this.subscribe(user, resource), step * i).unref();
    });
    user.timer = setInterval(() => this.churn(user), this.spec.subscribeIntervalMs);
    const interval = this.spec.updateIntervalMs;
    if (interval !== undefined) {
      for (const resource of user.resources) {
        // Spread the resources' updates over the interval instead of all at once.
        const start = Math.random() * interval;
        setTimeout(() => {
          if (this.closed) return;
          this.update(user, resource);
          resource.timer = setInterval(() => this.update(user, resource), interval);
        }, start).unref();
      }
    }
  }

  /** Stops every timer; open dialogs are left to the nodes (the run stops them next). */
  async close(): Promise<void> {
    this.closed = true;
    for (const user of this.users) {
      clearInterval(user.timer);
      for (const resource of user.resources) clearInterval(resource.timer);
    }
    await this.endpoint.close();
  }

  private churn(user: User): void {
    if (this.closed) return;
    const oldest = user.open.shift();
    if (oldest) this.unsubscribe(oldest);
    const resource = user.resources[user.next % user.resources.length];
    user.next += 1;
    if (resource) void this.subscribe(user, resource);
  }

  private update(user: User, resource: Resource): void {
    if (this.closed) return;
    if (resource.inFlight) {
      this.outcome.skippedUpdates += 1;
      return;
    }
    void this.publish(user, resource);
  }

  private document(entity: string, at: number): Buffer {
    return Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="${PIDF_NS}" entity="${entity}">\n` +
        `<tuple id="t0"><status><basic>open</basic></status><note>${MARKER}${at.toFixed(3)}</note></tuple>\n` +
        `${this.filler}\n</presence>\n`,
      "latin1",
    );
  }

  private async publish(user: User, resource: Resource): Promise<void> {
    const target = user.server ?? this.spec.primary;
    resource.inFlight = true;
    resource.cseq += 1;
    const at = this.now();
    const request: SipRequest = {
      kind: "request",
      method: "PUBLISH",
      uri: uriAt(resource.uri, target),
      version: "2.0",
      headers: {
        via: [],
        from: { uri: resource.uri, params: { tag: resource.tag } },
        to: { uri: resource.uri, params: {} },
        "call-id": resource.callId,
        cseq: { seq: resource.cseq, method: "PUBLISH" },
        "max-forwards": "70",
        event: "presence",
        expires: String(this.spec.expires),
        "content-type": "application/pidf+xml",
        ...(resource.etag ? { "sip-if-match": resource.etag } : {}),
      },
      body: this.document(resource.uri, at),
    };
    const response = await this.endpoint.request(request, target);
    resource.inFlight = false;
    if (response.status >= 200 && response.status < 300) {
      resource.etag = headerValue(response, "sip-etag") ?? resource.etag;
      this.outcome.publishes.push(at);
    } else {
      // 412: the publication is gone (moved or expired); the next update starts a new one.
      if (response.status === 412) resource.etag = undefined;
      this.outcome.publishFailures.push(at);
    }
  }

  private subscribeRequest(sub: Subscription, uri: string, expires: number): SipRequest {
    return {
      kind: "request",
      method: "SUBSCRIBE",
      uri,
      version: "2.0",
      headers: {
        via: [],
        from: { uri: sub.user.aor, params: { tag: sub.tag } },
        to: { uri: sub.resource, params: sub.toTag ? { tag: sub.toTag } : {} },
        "call-id": sub.callId,
        cseq: { seq: sub.cseq, method: "SUBSCRIBE" },
        contact: [{ uri: `sip:${sub.user.name}@${HOST}:${this.endpoint.port}`, params: {} }],
        "max-forwards": "70",
        event: "presence",
        accept: "application/pidf+xml",
        expires: String(expires),
      },
      body: Buffer.alloc(0),
    };
  }

  /** A new subscription through the primary, following its redirect; timed until its first NOTIFY. */
  private async subscribe(user: User, resource: Resource): Promise<void> {
    if (this.closed) return;
    const sub: Subscription = {
      user,
      resource: resource.uri,
      callId: `${randomToken(10)}@${HOST}`,
      tag: randomToken(6),
      sentAt: this.now(),
      cseq: 1,
      toTag: undefined,
      remote: undefined,
      remoteUri: undefined,
      firstNotify: false,
      lastMarker: undefined,
    };
    this.byCallId.set(sub.callId, sub);
    this.outcome.subscribeSent.push(sub.sentAt);
    let target: Peer = this.spec.primary;
    let uri = uriAt(resource.uri, target);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const response = await this.endpoint.request(
        this.subscribeRequest(sub, uri, this.spec.expires),
        target,
      );
      if (response.status >= 300 && response.status < 400) {
        const next = peerOf(response.headers.contact?.[0]?.uri);
        if (!next) break;
        target = next.peer;
        uri = next.uri;
        sub.cseq += 1;
        continue;
      }
      if (response.status >= 200 && response.status < 300) {
        this.accepted(sub, response, target);
        return;
      }
      break;
    }
    this.byCallId.delete(sub.callId);
    if (!this.closed) this.outcome.subscribeFailures.push(sub.sentAt);
  }

  private accepted(sub: Subscription, response: SipResponse, target: Peer): void {
    sub.toTag = response.headers.to.params.tag ?? undefined;
    const remote = peerOf(response.headers.contact?.[0]?.uri);
    sub.remote ??= remote?.peer ?? target;
    sub.remoteUri ??= remote?.uri ?? `sip:${target.address}:${target.port}`;
    sub.user.server ??= target;
    sub.user.open.push(sub);
  }

  private unsubscribe(sub: Subscription): void {
    if (!sub.remote || !sub.remoteUri) return;
    sub.cseq += 1;
    void this.endpoint.request(this.subscribeRequest(sub, sub.remoteUri, 0), sub.remote);
  }

  private onRequest(incoming: IncomingRequest): void {
    const { request } = incoming;
    if (request.method !== "NOTIFY") {
      incoming.respond(makeResponse(request, 405, undefined, { headers: { allow: "NOTIFY" } }));
      return;
    }
    const sub = this.byCallId.get(request.headers["call-id"]);
    if (!sub) {
      incoming.respond(makeResponse(request, 481));
      return;
    }
    incoming.respond(makeResponse(request, 200));
    const now = this.now();
    const contact = peerOf(request.headers.contact?.[0]?.uri);
    if (contact) {
      sub.remote = contact.peer;
      sub.remoteUri = contact.uri;
    }
    sub.toTag ??= request.headers.from.params.tag ?? undefined;
    const marker = markerOf(request.body);
    if (!sub.firstNotify) {
      sub.firstNotify = true;
      sub.lastMarker = marker;
      if (!this.closed) this.outcome.subscriptions.push({ at: sub.sentAt, ms: now - sub.sentAt });
    } else if (marker !== undefined && marker !== sub.lastMarker) {
      sub.lastMarker = marker;
      const sent = Number(marker);
      if (Number.isFinite(sent)) this.outcome.notifications.push({ at: sent, ms: now - sent });
    }
    if (/^\s*terminated/i.test(headerValue(request, "subscription-state") ?? "")) {
      this.byCallId.delete(sub.callId);
      const at = sub.user.open.indexOf(sub);
      if (at >= 0) sub.user.open.splice(at, 1);
    }
  }
}
