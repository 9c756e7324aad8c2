// transport: the named errors of actor mail (no actor, node unreachable, timeout, remote failure).
// Each carries a code and whether retrying can help; errors cross nodes as WireError data.

import type { WireError } from "./envelope.js";

export type MailErrorCode =
  | "no-actor"
  | "unreachable"
  | "timeout"
  | "overloaded"
  | "refused"
  | "remote";

export class MailError extends Error {
  override readonly name = "MailError";
  constructor(
    readonly code: MailErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toWire(): WireError {
    return { name: this.name, code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** Rebuilds an error that arrived as data from another node (or a local actor). */
export function errorFromWire(error: WireError): MailError {
  const code: MailErrorCode =
    error.code === "no-actor" ||
    error.code === "unreachable" ||
    error.code === "timeout" ||
    error.code === "overloaded" ||
    error.code === "refused"
      ? error.code
      : "remote";
  return new MailError(code, error.message, error.retryable);
}

export function toWireError(error: unknown): WireError {
  if (error instanceof MailError) return error.toWire();
  const message = error instanceof Error ? error.message : String(error);
  return { name: "Error", code: "remote", message, retryable: false };
}
