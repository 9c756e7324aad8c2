// actors/sources: the public API of presence sources — what a source author writes against.
// A source is a small typed behaviour; the host (host.ts) turns it into a supervised actor.

import type { Logger } from "../../bootstrap/log.js";
import { isXmlChar } from "../../protocol/pidf/xml.js";
import { presentityOf } from "../../protocol/presence/presentity.js";

/** What a source says about one presentity: it becomes a publication of the source's own. */
export interface PresenceUpdate {
  /** PIDF basic status of the source's tuple: "open" = willing to communicate. */
  readonly status: "open" | "closed";
  /** Free text shown by watchers (the tuple's `<note>`), at most 1,000 characters. */
  readonly note?: string;
  /**
   * RPID activities (RFC 4480), e.g. ["meeting"], ["busy", "on-the-phone"]; names outside the
   * RFC's list are published as `<rpid:other>`. At most 16, each at most 64 characters.
   */
  readonly activities?: readonly string[];
  /**
   * Seconds this state holds (1 to 604,800); then it lapses, as if cleared. Without it the state
   * holds until the source publishes again or clears it (the host keeps the publication fresh).
   */
  readonly expires?: number;
}

/** Options of a source as given by `--source-option <name>.<key>=<value>` (and built-in flags). */
export type SourceOptions = Readonly<Record<string, string>>;

/** What a source's `start` and `receive` are given; the only way a source acts on the world. */
export interface SourceContext<C, M> {
  /** The name the source runs under (from `--source`). */
  readonly name: string;
  /** The node it runs on now. */
  readonly node: string;
  /** The source's config, as its `config` function returned it. */
  readonly config: C;
  readonly log: Logger;
  /** The current time, ms since the epoch (the clock the source's timers run on). */
  now(): number;
  /**
   * Sets the source's state for `presentity` (a SIP URI). Applied when the handler returns, and
   * only if it returns without throwing; the last call per presentity wins.
   */
  publish(presentity: string, update: PresenceUpdate): void;
  /** Withdraws the source's state for `presentity` (its publication is removed). */
  clear(presentity: string): void;
  /** Delivers `message` to `receive` once, after `delayMs`; replaces a timer of the same key. */
  setTimer(key: string, delayMs: number, message: M): void;
  /** Delivers `message` to `receive` every `intervalMs`; replaces a timer of the same key. */
  every(key: string, intervalMs: number, message: M): void;
  cancelTimer(key: string): void;
  /**
   * Queues `message` for `receive`: how callbacks (a file watcher, a socket) bring events in.
   * Mail from before a restart is dropped, so a late callback cannot reach a new incarnation.
   */
  tell(message: M): void;
}

/** A request to `/sources/<name>/<path>` on the admin port of any node. */
export interface SourceHttpRequest {
  readonly method: string;
  /** The path after `/sources/<name>/`, percent-decoded ("" when there is none). */
  readonly path: string;
  /** Header values by lower-case name. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
}

/**
 * What a source's `http` hook decides: answer at once (a refusal; nothing reaches the source), or
 * deliver a message to the source wherever it runs — the request is answered 200 once `receive`
 * handled it and its publications were applied (202 when they are still being retried).
 */
export type SourceHttpDecision<M> =
  | {
      readonly status: number;
      readonly body: Readonly<Record<string, unknown>>;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | { readonly deliver: M };

/**
 * A presence source. One instance runs in the cluster at a time (on the node that is the
 * rendezvous home of `source:<name>`); every node loads it and runs `config` and `http`.
 */
export interface SourceDefinition<C, S, M> {
  /** The default name (`--source <module>` may register it under another). */
  readonly name: string;
  readonly description?: string;
  /** Turns the raw options into the config, or throws SourceConfigError (the node does not start). */
  config?(options: SourceOptions): C;
  /** Starts an incarnation: arm timers, open watchers, publish; returns the initial state. */
  start(ctx: SourceContext<C, M>): S | Promise<S>;
  /** Handles one message (a timer's, a `tell`, an HTTP delivery); one at a time, in order. */
  receive(state: S, message: M, ctx: SourceContext<C, M>): S | Promise<S>;
  /** Ends an incarnation (moved away, node stopping, or after a crash): close what `start` opened. */
  stop?(state: S, ctx: SourceContext<C, M>): void | Promise<void>;
  /**
   * Takes requests to `/sources/<name>/…` on the node that received them (not where the source
   * runs): authenticate and check them here, and turn them into plain-data messages.
   */
  http?(request: SourceHttpRequest, config: C): SourceHttpDecision<M>;
}

/** A source definition of any type, as the runtime handles it. */
// biome-ignore lint/suspicious/noExplicitAny: the runtime is generic over every source's types.
export type AnySourceDefinition = SourceDefinition<any, any, any>;

const BRAND = Symbol.for("presence-cluster.source");

export type SourceErrorCode = "config" | "misuse" | "failed" | "unavailable";

/** A source's own failure or misuse of the API; `retryable` says whether trying again can help. */
export class SourceError extends Error {
  override readonly name: string = "SourceError";
  constructor(
    readonly code: SourceErrorCode,
    message: string,
    readonly retryable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A source's options are wrong: the node refuses to start and prints the message. */
export class SourceConfigError extends SourceError {
  override readonly name = "SourceConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("config", message, false, options);
  }
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Checks a definition and marks it as one. Its types are inferred (the config from `config`, the
 * state from `start`, messages from `receive`'s annotation); give them all —
 * `defineSource<Config, State, Message>({…})` — to have timer and `tell` messages checked too.
 */
export function defineSource<C = SourceOptions, S = null, M = unknown>(
  definition: SourceDefinition<C, S, M>,
): SourceDefinition<C, S, M> {
  if (!NAME.test(definition.name)) {
    throw new SourceError(
      "misuse",
      `source name "${definition.name}": lower-case letters, digits and "-", at most 32`,
    );
  }
  if (typeof definition.start !== "function" || typeof definition.receive !== "function") {
    throw new SourceError("misuse", `source ${definition.name}: start and receive are required`);
  }
  Object.defineProperty(definition, BRAND, { value: true });
  return definition;
}

/** Whether a module export is a source made by `defineSource` (of any copy of this package). */
export function isSourceDefinition(value: unknown): value is AnySourceDefinition {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true
  );
}

/** Whether `name` can name a source (it becomes part of addresses, paths and tuple ids). */
export function isSourceName(name: string): boolean {
  return NAME.test(name);
}

/**
 * The presentity a source means: a SIP (or pres:) URI, or a bare `user@host` with sip: implied,
 * in the canonical form watchers subscribe to. Undefined for text that names no user.
 */
export function presentityKey(text: string): string | undefined {
  const trimmed = text.trim();
  return presentityOf(/^(sips?|pres):/i.test(trimmed) ? trimmed : `sip:${trimmed}`);
}

const MAX_NOTE = 1000;
const MAX_ACTIVITIES = 16;
const MAX_ACTIVITY = 64;
export const MAX_UPDATE_EXPIRES = 604_800;
const UPDATE_FIELDS = new Set(["status", "note", "activities", "expires"]);

/** Whether a PIDF document can carry the text (no control characters, no lone surrogates). */
function xmlSafe(text: string): boolean {
  for (const char of text) if (!isXmlChar(char.codePointAt(0) ?? 0)) return false;
  return true;
}

/** Why `value` is not a PresenceUpdate (unknown fields included), or undefined when it is one. */
export function updateProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "expected an object with status, note, activities, expires";
  }
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!UPDATE_FIELDS.has(key))
      return `unknown field "${key}" (status, note, activities, expires)`;
  }
  if (fields.status !== "open" && fields.status !== "closed") {
    return 'status must be "open" or "closed"';
  }
  const { note, activities, expires } = fields;
  if (
    note !== undefined &&
    (typeof note !== "string" || note.length > MAX_NOTE || !xmlSafe(note))
  ) {
    return `note must be a string of at most ${MAX_NOTE} characters, without control characters`;
  }
  if (activities !== undefined) {
    if (!Array.isArray(activities) || activities.length > MAX_ACTIVITIES) {
      return `activities must be a list of at most ${MAX_ACTIVITIES} names`;
    }
    for (const activity of activities) {
      if (
        typeof activity !== "string" ||
        activity.trim() === "" ||
        activity.length > MAX_ACTIVITY ||
        !xmlSafe(activity)
      ) {
        return `each activity must be a non-empty string of at most ${MAX_ACTIVITY} characters`;
      }
    }
  }
  if (
    expires !== undefined &&
    (typeof expires !== "number" ||
      !Number.isInteger(expires) ||
      expires < 1 ||
      expires > MAX_UPDATE_EXPIRES)
  ) {
    return `expires must be a whole number of seconds from 1 to ${MAX_UPDATE_EXPIRES}`;
  }
  return undefined;
}
