// actors/sources: the host of one presence source — wraps the author's behaviour in a supervised actor.
// Owns the source's publications (one per presentity: ETag, refresh, lapse), its timers and its restarts.

import type { Ref } from "nact";
import type { Logger } from "../../bootstrap/log.js";
import { type PidfDocument, parsePidf } from "../../protocol/pidf/pidf.js";
import { simplePidf } from "../../protocol/pidf/rpid.js";
import type { PublishRequest } from "../../protocol/presence/publications.js";
import { randomToken } from "../../protocol/sip/headers.js";
import type { Address } from "../../transport/envelope.js";
import { MailError } from "../../transport/errors.js";
import type { Router } from "../../transport/router.js";
import { type ActorContext, type ActorHandle, spawnActor } from "../actor.js";
import type { PublishOutcome, ResourceCommand } from "../presence-resource.js";
import {
  type AnySourceDefinition,
  type PresenceUpdate,
  presentityKey,
  type SourceContext,
  SourceError,
  updateProblem,
} from "./api.js";

export const SOURCE_KIND = "source";

// ---- mail protocol ----------------------------------------------------------------------------

/** One publication of a source as data, handed to its next home so that it is kept, not doubled. */
export interface HandedPublication {
  presentity: string;
  /** The resource's ETag; null while the state was never applied. */
  etag: string | null;
  /** When the resource drops the publication unless refreshed (ms epoch). */
  expiresAt: number;
  /** The PIDF document. */
  body: string;
  /** When the state lapses (an update with `expires`), ms epoch; null: held until changed. */
  until: number | null;
  /** Whether the resource holds this very document (else it must be sent again). */
  applied: boolean;
}

export type SourceCommand =
  /** A message for `receive`. As an ask (HTTP deliveries) it replies InputOutcome once applied. */
  | { type: "input"; message: unknown }
  /** Stop and hand the publications over (ask): replies HandedPublication[]. */
  | { type: "stop" }
  /** Publications the source's previous home held: keep them fresh instead of publishing anew. */
  | { type: "adopt"; publications: HandedPublication[] };

/** The reply to an "input" ask: whether every publication it caused is applied at its home. */
export interface InputOutcome {
  applied: boolean;
  presentities: string[];
}

/** Mail a host sends itself (timers, restarts); `host` tells a stale one from an earlier host. */
type InternalMail = { host: string } & (
  | { type: "start" }
  | { type: "restart" }
  | { type: "stable"; incarnation: number }
  | { type: "timer"; incarnation: number; message: unknown }
  | { type: "sync"; presentity: string; due: number }
  | { type: "lapse"; presentity: string; due: number }
);

type HostMail = SourceCommand | InternalMail;

/** InternalMail without its host tag (added by `mail`). */
type OwnMail = InternalMail extends infer T ? (T extends unknown ? Omit<T, "host"> : never) : never;

// ---- what the manager sees --------------------------------------------------------------------

/** The supervision record of a source on this node (shown in /api/cluster). */
export interface SourceRecord {
  state: "running" | "failing" | "stopped";
  /** Crashes on this node, each followed by a restart. */
  restarts: number;
  lastError: { message: string; at: string } | null;
  /** When a crashed source is started again (ISO time); null when no restart is pending. */
  nextRestartAt: string | null;
  /** The delay before the pending (or last) restart; doubles per crash up to the cap. */
  backoffMs: number | null;
  publications: number;
}

export function newSourceRecord(): SourceRecord {
  return {
    state: "stopped",
    restarts: 0,
    lastError: null,
    nextRestartAt: null,
    backoffMs: null,
    publications: 0,
  };
}

export interface HostedSource {
  name: string;
  definition: AnySourceDefinition;
  config: unknown;
}

export interface HostDeps {
  system: Ref<unknown>;
  router: Router;
  log: Logger;
  maxMailbox: number;
  askTimeoutMs: number;
  /** The address of a presentity's resource at its home. */
  resourceOf: (presentity: string) => Address;
  /** Seconds a source's publication lasts; the host refreshes it before then. */
  publicationSeconds: number;
  /** Restart delay after the first crash, doubling per crash up to maxMs; maxMs crash-free resets it. */
  backoff: { initialMs: number; maxMs: number };
}

// ---- the host ---------------------------------------------------------------------------------

/** setTimeout's longest delay; a longer one would fire at once. */
const MAX_DELAY_MS = 2 ** 31 - 1;
const RETRY_MAX_MS = 30_000;

interface Entry {
  body: string;
  document: PidfDocument;
  until: number | undefined;
  etag: string | undefined;
  expiresAt: number;
  applied: boolean;
  /** Failed attempts in a row to reach the resource (retry delay). */
  failures: number;
  timer: NodeJS.Timeout | undefined;
  /** The due time of the armed timer: its mail is stale if this changed meanwhile. */
  due: number;
}

function tupleId(source: string): string {
  return `source-${source}`;
}

class SourceHost {
  readonly id = randomToken(6);
  private incarnation = 0;
  private live = false;
  /** Whether the current incarnation's `start` returned (only then has `stop` something to close). */
  private started = false;
  private stopped = false;
  private state: unknown;
  private context: SourceContext<unknown, unknown>;
  /** Publications asked for by the handler running now (null: clear). */
  private intents: Map<string, PresenceUpdate | null> | undefined;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly entries = new Map<string, Entry>();
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  /** Crashes since the source last ran crash-free for backoff.maxMs. */
  private failures = 0;
  private readonly log: Logger;

  constructor(
    private readonly deps: HostDeps,
    private readonly source: HostedSource,
    private readonly record: SourceRecord,
    private readonly self: Address,
  ) {
    this.log = deps.log.child({ source: source.name });
    this.context = this.contextFor(0);
  }

  async handle(mail: HostMail, ctx: ActorContext): Promise<void> {
    if ("host" in mail && mail.host !== this.id) return;
    if (this.stopped) {
      if (mail.type === "stop") ctx.reply([]);
      else if (mail.type === "input") ctx.fail(this.unavailable("stopped here"));
      return;
    }
    switch (mail.type) {
      case "start":
        await this.begin();
        break;
      case "restart":
        this.restartTimer = undefined;
        await this.begin();
        break;
      case "stable":
        if (mail.incarnation === this.incarnation && this.live) {
          this.failures = 0;
          this.record.state = "running";
        }
        break;
      case "input":
        await this.input(mail.message, ctx);
        break;
      case "timer":
        if (mail.incarnation === this.incarnation && this.live) {
          const message = mail.message;
          if (await this.run((c) => this.source.definition.receive(this.state, message, c))) {
            await this.apply();
          }
        }
        break;
      case "sync": {
        const entry = this.entries.get(mail.presentity);
        if (entry?.due === mail.due) await this.sync(mail.presentity, entry);
        break;
      }
      case "lapse": {
        const entry = this.entries.get(mail.presentity);
        if (entry?.due === mail.due) await this.withdraw(mail.presentity, entry);
        break;
      }
      case "adopt":
        await this.adopt(mail.publications);
        break;
      case "stop":
        ctx.reply(await this.stop());
        break;
    }
    this.record.publications = this.entries.size;
  }

  // ---- supervision ------------------------------------------------------------------------------

  private async begin(): Promise<void> {
    this.incarnation += 1;
    this.live = true;
    this.context = this.contextFor(this.incarnation);
    this.record.nextRestartAt = null;
    if (this.failures === 0) this.record.state = "running";
    if (!(await this.run((c) => this.source.definition.start(c)))) return;
    this.started = true;
    if (this.failures > 0) {
      const incarnation = this.incarnation;
      this.stableTimer = setTimeout(
        () => this.mail({ type: "stable", incarnation }),
        this.deps.backoff.maxMs,
      );
    }
    await this.apply();
  }

  /** Runs one handler of the author's; a throw is a crash. Says whether it returned. */
  private async run(step: (ctx: SourceContext<unknown, unknown>) => unknown): Promise<boolean> {
    this.intents = new Map();
    try {
      this.state = await step(this.context);
      return true;
    } catch (error) {
      this.intents = undefined;
      await this.crash(error);
      return false;
    }
  }

  private async crash(error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    this.failures += 1;
    this.record.restarts += 1;
    this.record.lastError = { message, at: new Date().toISOString() };
    this.record.state = "failing";
    await this.end();
    const { initialMs, maxMs } = this.deps.backoff;
    const delay = Math.min(initialMs * 2 ** (this.failures - 1), maxMs);
    this.record.backoffMs = delay;
    this.record.nextRestartAt = new Date(Date.now() + delay).toISOString();
    this.restartTimer = setTimeout(() => this.mail({ type: "restart" }), delay);
    this.log.error("presence source failed; restarting it after a pause", {
      error,
      restartInMs: delay,
      restarts: this.record.restarts,
    });
  }

  /** Ends the current incarnation: its timers go, its `stop` runs; publications stay. */
  private async end(): Promise<void> {
    if (!this.live) return;
    this.live = false;
    this.intents = undefined;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    clearTimeout(this.stableTimer);
    const started = this.started;
    this.started = false;
    const stop = this.source.definition.stop;
    if (!stop || !started) return;
    try {
      await stop.call(this.source.definition, this.state, this.context);
    } catch (error) {
      this.log.warn("presence source failed in stop", { error });
    }
  }

  private async stop(): Promise<HandedPublication[]> {
    await this.end();
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    const handed: HandedPublication[] = [];
    for (const [presentity, entry] of this.entries) {
      clearTimeout(entry.timer);
      handed.push({
        presentity,
        etag: entry.etag ?? null,
        expiresAt: entry.expiresAt,
        body: entry.body,
        until: entry.until ?? null,
        applied: entry.applied,
      });
    }
    this.entries.clear();
    this.record.state = "stopped";
    this.record.nextRestartAt = null;
    return handed;
  }

  private unavailable(why: string): MailError {
    return new MailError("no-actor", `source ${this.source.name} is ${why}`, true);
  }

  private async input(message: unknown, ctx: ActorContext): Promise<void> {
    if (!this.live) {
      ctx.fail(this.unavailable("restarting after a failure"));
      return;
    }
    if (!(await this.run((c) => this.source.definition.receive(this.state, message, c)))) {
      const why = this.record.lastError?.message ?? "unknown error";
      ctx.fail(new SourceError("failed", `source ${this.source.name} failed: ${why}`));
      return;
    }
    ctx.reply(await this.apply());
  }

  // ---- the author's context ---------------------------------------------------------------------

  private contextFor(incarnation: number): SourceContext<unknown, unknown> {
    const { name, config } = this.source;
    return {
      name,
      node: this.deps.router.nodeId,
      config,
      log: this.log,
      now: () => Date.now(),
      publish: (presentity, update) => this.intend(presentity, update),
      clear: (presentity) => this.intend(presentity, null),
      setTimer: (key, delayMs, message) => this.arm(incarnation, key, delayMs, message, false),
      every: (key, intervalMs, message) => this.arm(incarnation, key, intervalMs, message, true),
      cancelTimer: (key) => {
        if (incarnation !== this.incarnation) return;
        clearTimeout(this.timers.get(key));
        this.timers.delete(key);
      },
      tell: (message) => this.mail({ type: "timer", incarnation, message }),
    };
  }

  private intend(presentity: string, update: PresenceUpdate | null): void {
    if (!this.intents) {
      this.log.error(
        "publish or clear outside start/receive is ignored: bring the event in with ctx.tell",
        { presentity },
      );
      return;
    }
    const key = presentityKey(presentity);
    if (key === undefined) throw new SourceError("misuse", `not a presentity URI: "${presentity}"`);
    if (update === null) {
      this.intents.set(key, null);
      return;
    }
    const problem = updateProblem(update);
    if (problem !== undefined) throw new SourceError("misuse", `publish(${key}): ${problem}`);
    this.intents.set(key, {
      status: update.status,
      ...(update.note === undefined ? {} : { note: update.note }),
      ...(update.activities === undefined ? {} : { activities: [...update.activities] }),
      ...(update.expires === undefined ? {} : { expires: update.expires }),
    });
  }

  private arm(
    incarnation: number,
    key: string,
    delayMs: number,
    message: unknown,
    repeat: boolean,
  ): void {
    if (incarnation !== this.incarnation || !this.live) return;
    const least = repeat ? 1 : 0;
    if (!Number.isFinite(delayMs) || delayMs < least || delayMs > MAX_DELAY_MS) {
      throw new SourceError(
        "misuse",
        `timer "${key}": delay must be from ${least} to ${MAX_DELAY_MS} ms, got ${delayMs}`,
      );
    }
    clearTimeout(this.timers.get(key));
    const fire = (): void => {
      if (!repeat) this.timers.delete(key);
      this.mail({ type: "timer", incarnation, message });
    };
    this.timers.set(key, repeat ? setInterval(fire, delayMs) : setTimeout(fire, delayMs));
  }

  mail(body: OwnMail): void {
    if (!this.stopped) this.deps.router.send(this.self, { ...body, host: this.id });
  }

  // ---- publications -----------------------------------------------------------------------------

  /** Applies the intents of the handler that just returned; resolves once every one was tried. */
  private async apply(): Promise<InputOutcome> {
    const intents = this.intents ?? new Map<string, PresenceUpdate | null>();
    this.intents = undefined;
    const results = await Promise.all(
      [...intents].map(([presentity, update]) =>
        update === null ? this.clear(presentity) : this.upsert(presentity, update),
      ),
    );
    return { applied: results.every(Boolean), presentities: [...intents.keys()] };
  }

  private upsert(presentity: string, update: PresenceUpdate): Promise<boolean> {
    const body = simplePidf(presentity, tupleId(this.source.name), update).toString("utf8");
    const until = update.expires === undefined ? undefined : Date.now() + update.expires * 1000;
    const known = this.entries.get(presentity);
    // The same state again changes nothing (no NOTIFY); a new `expires` extends it, though.
    if (known && known.body === body && until === undefined && known.until === undefined) {
      return Promise.resolve(known.applied);
    }
    const entry: Entry = known ?? {
      body,
      document: parsePidf(Buffer.from(body, "utf8")),
      until,
      etag: undefined,
      expiresAt: 0,
      applied: false,
      failures: 0,
      timer: undefined,
      due: 0,
    };
    if (entry.body !== body) {
      entry.body = body;
      entry.document = parsePidf(Buffer.from(body, "utf8"));
      entry.applied = false;
    }
    entry.until = until;
    this.entries.set(presentity, entry);
    return this.sync(presentity, entry);
  }

  /**
   * Brings the resource in line with the entry: initial publication, modify, or refresh (RFC 3903).
   * A 412 (the resource forgot the ETag) publishes afresh; an unreachable home is retried later.
   */
  private async sync(presentity: string, entry: Entry): Promise<boolean> {
    clearTimeout(entry.timer);
    const now = Date.now();
    if (entry.until !== undefined && entry.until <= now) return this.withdraw(presentity, entry);
    const remaining =
      entry.until === undefined ? Number.POSITIVE_INFINITY : Math.ceil((entry.until - now) / 1000);
    const expires = Math.min(this.deps.publicationSeconds, remaining);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const request: PublishRequest =
        entry.etag === undefined
          ? { kind: "initial", document: entry.document, expires, source: this.source.name }
          : entry.applied
            ? { kind: "refresh", etag: entry.etag, expires }
            : { kind: "modify", etag: entry.etag, document: entry.document, expires };
      const command: ResourceCommand = { type: "publish", request };
      let outcome: PublishOutcome;
      try {
        outcome = await this.deps.router.ask<PublishOutcome>(
          this.deps.resourceOf(presentity),
          command,
          this.deps.askTimeoutMs,
        );
      } catch (error) {
        entry.failures += 1;
        const delay = Math.min(1000 * 2 ** (entry.failures - 1), RETRY_MAX_MS);
        this.log.warn("publication not applied; trying again", {
          presentity,
          error,
          retryInMs: delay,
        });
        this.arrange(presentity, entry, "sync", now + delay);
        return false;
      }
      if (outcome.ok && outcome.etag !== null) {
        entry.etag = outcome.etag;
        entry.expiresAt = now + outcome.expires * 1000;
        entry.applied = true;
        entry.failures = 0;
        this.schedule(presentity, entry);
        return true;
      }
      entry.etag = undefined;
      entry.applied = false;
    }
    this.arrange(presentity, entry, "sync", now + 1000);
    return false;
  }

  /** Arms the entry's next step: refresh ahead of its expiry, or lapse when its state ends first. */
  private schedule(presentity: string, entry: Entry): void {
    if (entry.until !== undefined && entry.until <= entry.expiresAt) {
      this.arrange(presentity, entry, "lapse", entry.until);
      return;
    }
    const margin = Math.min(60_000, this.deps.publicationSeconds * 250);
    this.arrange(presentity, entry, "sync", entry.expiresAt - margin);
  }

  private arrange(presentity: string, entry: Entry, type: "sync" | "lapse", due: number): void {
    clearTimeout(entry.timer);
    entry.due = due;
    entry.timer = setTimeout(
      () => this.mail({ type, presentity, due }),
      Math.min(Math.max(0, due - Date.now()), MAX_DELAY_MS),
    );
  }

  private clear(presentity: string): Promise<boolean> {
    const entry = this.entries.get(presentity);
    return entry ? this.withdraw(presentity, entry) : Promise.resolve(true);
  }

  /** Forgets the entry and removes its publication; one that cannot be removed lapses by itself. */
  private async withdraw(presentity: string, entry: Entry): Promise<boolean> {
    clearTimeout(entry.timer);
    this.entries.delete(presentity);
    if (entry.etag === undefined) return true;
    return this.remove(presentity, entry.etag);
  }

  private async remove(presentity: string, etag: string): Promise<boolean> {
    const command: ResourceCommand = { type: "publish", request: { kind: "remove", etag } };
    try {
      await this.deps.router.ask<PublishOutcome>(
        this.deps.resourceOf(presentity),
        command,
        this.deps.askTimeoutMs,
      );
      return true;
    } catch (error) {
      this.log.warn("publication not removed; it lapses by itself", { presentity, error });
      return false;
    }
  }

  private async adopt(publications: readonly HandedPublication[]): Promise<void> {
    const now = Date.now();
    const pending: Promise<boolean>[] = [];
    for (const handed of publications) {
      if (this.entries.has(handed.presentity)) {
        // Published here already: the handed publication would be a second tuple of this source.
        if (handed.etag !== null) pending.push(this.remove(handed.presentity, handed.etag));
        continue;
      }
      if (handed.until !== null && handed.until <= now) continue;
      let document: PidfDocument;
      try {
        document = parsePidf(Buffer.from(handed.body, "utf8"));
      } catch (error) {
        this.log.warn("handed publication is not PIDF; dropped", { error });
        continue;
      }
      const lapsed = handed.expiresAt <= now;
      const entry: Entry = {
        body: handed.body,
        document,
        until: handed.until ?? undefined,
        etag: lapsed ? undefined : (handed.etag ?? undefined),
        expiresAt: handed.expiresAt,
        applied: handed.applied && !lapsed,
        failures: 0,
        timer: undefined,
        due: 0,
      };
      this.entries.set(handed.presentity, entry);
      if (entry.applied && entry.etag !== undefined) this.schedule(handed.presentity, entry);
      else pending.push(this.sync(handed.presentity, entry));
    }
    await Promise.all(pending);
  }
}

/** Spawns the host of a source at its address on this node; it starts the source at once. */
export function spawnSourceHost(
  deps: HostDeps,
  source: HostedSource,
  record: SourceRecord,
  adopted: readonly HandedPublication[] = [],
): ActorHandle {
  const address = deps.router.address(SOURCE_KIND, source.name);
  const host = new SourceHost(deps, source, record, address);
  const handle = spawnActor<SourceHost, HostMail>(
    deps.system,
    deps.router,
    address,
    {
      async receive(state, mail, ctx) {
        await state.handle(mail, ctx);
        return state;
      },
    },
    host,
    { maxMailbox: deps.maxMailbox, log: deps.log },
  );
  if (adopted.length > 0) deps.router.send(address, { type: "adopt", publications: adopted });
  host.mail({ type: "start" });
  return handle;
}
