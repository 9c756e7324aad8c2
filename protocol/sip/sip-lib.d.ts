// protocol/sip: ambient typing for the parts of the untyped `sip` 0.0.6 package (CommonJS) that we touch.
// Only its pure helpers are typed; its transport and transaction layer is replaced by our own code.

declare module "sip" {
  /** `sip`'s own message shape: structured headers are loosely typed, the body is a string. */
  export interface SipLibMessage {
    method?: string;
    uri?: string;
    status?: number;
    reason?: string;
    version?: string;
    headers: Record<string, unknown>;
    content?: string;
  }

  /** Parses one message from a Buffer (decoded as binary) or a string; undefined when unparseable. */
  export function parse(data: Buffer | string): SipLibMessage | undefined;
  /** Serialises a message; Content-Length counts UTF-16 code units of `content`, not bytes. */
  export function stringify(message: SipLibMessage): string;
  /** "z9hG4bK" followed by Math.round(Math.random() * 1e6). */
  export function generateBranch(): string;
}
