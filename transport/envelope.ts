// transport: the one envelope every piece of actor mail travels in, locally and between nodes.
// Owns actor addresses, reply targets and the wire codec (JSON with byte arrays as base64).

import type { LocalTrace } from "./tracing.js";

/** A location-transparent actor address: the node it lives on, its kind, and its id within the kind. */
export interface Address {
  node: string;
  kind: string;
  id: string;
}

/** Where the answer to an `ask` goes: the asking node and its correlation id. */
export interface ReplyTo {
  node: string;
  correlationId: string;
}

export interface Envelope<M = unknown> {
  /** Unique message id (for logs, traces and de-duplication). */
  id: string;
  /** Id of the sending node. */
  from: string;
  to: Address;
  body: M;
  replyTo?: ReplyTo;
  /** W3C trace context of the sending span. */
  traceparent?: string;
  /** The sender's trace context as is, for mail that stays in its process (never encoded). */
  trace?: LocalTrace;
  /** ms epoch when the mail was sent (mail latency). */
  sentAt: number;
  /** How often the mail was forwarded to another node (a home that moved); bounded against loops. */
  hops?: number;
  /** Delivered at the addressed node whatever its view of placement (state handed to a new home). */
  pinned?: boolean;
}

/** The kind name of the router's reply sink: mail to it completes a pending `ask`. */
export const REPLY_KIND = "$reply";

/** The body of mail to the reply sink. */
export type ReplyBody = { ok: true; value: unknown } | { ok: false; error: WireError };

/** An error as data, so it can cross a node and be rebuilt on arrival. */
export interface WireError {
  name: string;
  code: string;
  message: string;
  retryable: boolean;
}

export function addressKey(address: Address): string {
  return `${address.kind}/${address.id}`;
}

export function formatAddress(address: Address): string {
  return `${address.node}:${address.kind}/${address.id}`;
}

const BYTES_TAG = "$bytes";

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return {
      [BYTES_TAG]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"),
    };
  }
  if (value && typeof value === "object" && (value as { type?: unknown }).type === "Buffer") {
    const data = (value as { data?: unknown }).data;
    if (Array.isArray(data)) return { [BYTES_TAG]: Buffer.from(data).toString("base64") };
  }
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === "object" && BYTES_TAG in value) {
    const encoded = (value as Record<string, unknown>)[BYTES_TAG];
    if (typeof encoded === "string") return Buffer.from(encoded, "base64");
  }
  return value;
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const { trace: _local, ...wire } = envelope;
  return Buffer.from(JSON.stringify(wire, replacer), "utf8");
}

/** Decodes wire bytes; throws on anything that is not an envelope (the caller counts and drops it). */
export function decodeEnvelope(data: Uint8Array): Envelope {
  const value: unknown = JSON.parse(Buffer.from(data).toString("utf8"), reviver);
  if (!isEnvelope(value)) throw new Error("not an envelope");
  return value;
}

function isEnvelope(value: unknown): value is Envelope {
  if (!value || typeof value !== "object") return false;
  const v = value as Partial<Envelope>;
  return (
    typeof v.id === "string" &&
    typeof v.from === "string" &&
    typeof v.sentAt === "number" &&
    !!v.to &&
    typeof v.to.node === "string" &&
    typeof v.to.kind === "string" &&
    typeof v.to.id === "string"
  );
}
