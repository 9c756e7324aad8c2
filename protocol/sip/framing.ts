// protocol/sip: RFC 3261 §18.3 stream framing — cuts whole messages out of a TCP byte stream by Content-Length.
// Works on Buffers only (a UTF-8 body split across chunks must never be decoded); parsing is codec.ts's job.

export type Framed =
  | { kind: "message"; data: Buffer }
  /** The header section (terminating CRLFCRLF included), so a 413 can be answered; the body is skipped. */
  | { kind: "too-large"; head: Buffer }
  /** Unframeable: the caller closes the connection. */
  | { kind: "garbage"; reason: string };

export interface FramingLimits {
  /** Start line plus headers plus the terminating CRLFCRLF, in bytes. */
  maxHeaderBytes: number;
  maxBodyBytes: number;
}

const CR = 13;
const LF = 10;
const HEADER_END = Buffer.from("\r\n\r\n", "latin1");
const CONTENT_LENGTH = /^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*$/gim;

type State =
  | { kind: "head" }
  | { kind: "body"; total: number }
  | { kind: "skip"; remaining: number }
  | { kind: "closed" };

/**
 * Incremental framer for one connection. Bytes are appended to a growable buffer (amortised O(n) even when
 * a peer sends one byte per segment) and the header terminator search resumes where it stopped.
 */
export class StreamFramer {
  private readonly limits: FramingLimits;
  private buffer = Buffer.alloc(0);
  /** Unconsumed bytes are buffer[start, end). */
  private start = 0;
  private end = 0;
  /** Where the CRLFCRLF search resumes, relative to `start`. */
  private searched = 0;
  private state: State = { kind: "head" };

  constructor(limits: FramingLimits) {
    this.limits = limits;
  }

  push(chunk: Buffer): Framed[] {
    if (this.state.kind === "closed") return [];
    const out: Framed[] = [];
    let input = chunk;
    if (this.state.kind === "skip") input = this.skip(input);
    if (input.length > 0) this.append(input);
    for (;;) {
      const framed = this.next();
      if (!framed) break;
      out.push(framed);
      if (framed.kind === "garbage") {
        this.state = { kind: "closed" };
        this.buffer = Buffer.alloc(0);
        this.start = 0;
        this.end = 0;
        break;
      }
    }
    return out;
  }

  /** Drops the body bytes of a too-large message from `input`; returns what follows them. */
  private skip(input: Buffer): Buffer {
    if (this.state.kind !== "skip") return input;
    const dropped = Math.min(this.state.remaining, input.length);
    this.state.remaining -= dropped;
    if (this.state.remaining === 0) this.state = { kind: "head" };
    return input.subarray(dropped);
  }

  private append(input: Buffer): void {
    const used = this.end - this.start;
    if (this.end + input.length > this.buffer.length) {
      const needed = used + input.length;
      if (needed <= this.buffer.length && this.start >= this.buffer.length / 2) {
        this.buffer.copy(this.buffer, 0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2, 4096));
        this.buffer.copy(grown, 0, this.start, this.end);
        this.buffer = grown;
      }
      this.start = 0;
      this.end = used;
    }
    input.copy(this.buffer, this.end);
    this.end += input.length;
  }

  private consume(bytes: number): void {
    this.start += bytes;
    this.searched = 0;
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    }
  }

  private next(): Framed | undefined {
    if (this.state.kind === "skip") {
      const available = this.end - this.start;
      const dropped = Math.min(this.state.remaining, available);
      this.consume(dropped);
      this.state.remaining -= dropped;
      if (this.state.remaining > 0) return undefined;
      this.state = { kind: "head" };
    }
    if (this.state.kind === "body") {
      const { total } = this.state;
      if (this.end - this.start < total) return undefined;
      const data = Buffer.from(this.buffer.subarray(this.start, this.start + total));
      this.consume(total);
      this.state = { kind: "head" };
      return { kind: "message", data };
    }
    if (this.state.kind !== "head") return undefined;

    // RFC 5626 §3.5.1 keep-alives (CRLFCRLF pings, CRLF pongs) and RFC 3261 §7.5 leading CRLFs.
    while (
      this.start < this.end &&
      (this.buffer[this.start] === CR || this.buffer[this.start] === LF)
    ) {
      this.consume(1);
    }
    const available = this.end - this.start;
    if (available === 0) return undefined;
    const window = this.buffer.subarray(this.start, this.end);
    const found = window.indexOf(HEADER_END, Math.max(0, this.searched - 3));
    if (found < 0) {
      this.searched = available;
      if (available > this.limits.maxHeaderBytes) {
        return { kind: "garbage", reason: "Header section too large" };
      }
      return undefined;
    }
    const headEnd = found + HEADER_END.length;
    if (headEnd > this.limits.maxHeaderBytes)
      return { kind: "garbage", reason: "Header section too large" };

    const length = contentLength(window.toString("latin1", 0, found));
    if (typeof length === "string") return { kind: "garbage", reason: length };
    if (length > this.limits.maxBodyBytes) {
      const head = Buffer.from(window.subarray(0, headEnd));
      this.consume(headEnd);
      this.state = { kind: "skip", remaining: length };
      return { kind: "too-large", head };
    }
    this.state = { kind: "body", total: headEnd + length };
    return this.next();
  }
}

/** The Content-Length of a header section, or why the stream cannot be framed. */
function contentLength(head: string): number | string {
  // Folded continuation lines join their header first, so a folded value cannot hide from the scan.
  const unfolded =
    head.includes("\r\n ") || head.includes("\r\n\t") ? head.replace(/\r\n[ \t]+/g, " ") : head;
  let found: number | undefined;
  for (const match of unfolded.matchAll(CONTENT_LENGTH)) {
    const raw = match[1] ?? "";
    if (!/^\d{1,10}$/.test(raw)) return "Malformed Content-Length";
    const value = Number(raw);
    // Two different lengths would let a peer smuggle a message past us.
    if (found !== undefined && found !== value) return "Conflicting Content-Length headers";
    found = value;
  }
  return found ?? "Missing Content-Length";
}
