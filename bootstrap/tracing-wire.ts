// bootstrap: ended spans as records in one buffer — written by the event loop, transferred to the export
// worker and read back there (a structured clone of span arrays cost the event loop ~6 µs a span).

import type { Attributes, AttributeValue } from "@opentelemetry/api";
import { isSipHead } from "../transport/sip-span.js";
import type { SpanPart, WireEvent, WireLink, WireSpan } from "./tracing-export.js";

const utf8 = new TextEncoder();

/** Value tags: an attribute value's type; OTHER is anything that is no attribute value. */
const NULL = 0;
const STRING = 1;
const BOOLEAN = 2;
const NUMBER = 3;
const ARRAY = 4;
const OTHER = 5;
const UNDEFINED = 6;

/** Part tags. */
const OBJECT_PART = 0;
const SIP_HEAD_PART = 1;

/** A count written where a list may be null. */
const NO_LIST = 0xffffffff;

/**
 * Ended spans written one after another into a growing buffer; `take` gives the records so far
 * (a view of the buffer: to be copied before the next write) and starts again at its beginning.
 * A span that cannot be written throws a TypeError and leaves the records as they were.
 */
export class SpanRecordWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  #count = 0;

  constructor(size = 64 * 1024) {
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Spans written since the last `take`. */
  get count(): number {
    return this.#count;
  }

  write(span: WireSpan): void {
    const start = this.#pos;
    try {
      this.#span(span);
    } catch (error) {
      this.#pos = start;
      throw error;
    }
    this.#count++;
  }

  /** The records written since the last take, and how many spans they hold. */
  take(): { records: Uint8Array; count: number } {
    const taken = { records: this.#buf.subarray(0, this.#pos), count: this.#count };
    this.#pos = 0;
    this.#count = 0;
    return taken;
  }

  #span(s: WireSpan): void {
    this.#string(s[0]);
    this.#room(2);
    this.#buf[this.#pos++] = s[1];
    this.#buf[this.#pos++] = s[4];
    this.#string(s[2]);
    this.#string(s[3]);
    this.#maybeString(s[5]);
    this.#maybeString(s[6]);
    this.#room(18);
    this.#buf[this.#pos++] = s[7] ? 1 : 0;
    this.#view.setFloat64(this.#pos, s[8], true);
    this.#view.setFloat64(this.#pos + 8, s[9], true);
    this.#pos += 16;
    this.#buf[this.#pos++] = s[10];
    this.#maybeString(s[11]);
    const parts = s[12];
    this.#u32(parts.length);
    for (const part of parts) this.#part(part);
    this.#events(s[13]);
    this.#links(s[14]);
    this.#u32(s[15]);
    this.#u32(s[16]);
    this.#string(s[17]);
    this.#maybeString(s[18]);
    this.#maybeString(s[19]);
  }

  #part(part: SpanPart): void {
    this.#room(1);
    if (isSipHead(part)) {
      this.#buf[this.#pos++] = SIP_HEAD_PART;
      this.#string(part.transport);
      this.#string(part.address);
      this.#u32(part.port);
      const head = part.sipHead;
      this.#u32(head.length);
      this.#room(head.length);
      this.#buf.set(head, this.#pos);
      this.#pos += head.length;
      return;
    }
    this.#buf[this.#pos++] = OBJECT_PART;
    this.#attributes(part);
  }

  #attributes(attributes: Attributes): void {
    const at = this.#pos;
    this.#u32(0);
    let count = 0;
    for (const key in attributes) {
      if (!Object.hasOwn(attributes, key)) continue;
      this.#string(key);
      this.#value(attributes[key]);
      count++;
    }
    this.#view.setUint32(at, count, true);
  }

  #maybeAttributes(attributes: Attributes | null): void {
    this.#room(1);
    this.#buf[this.#pos++] = attributes ? 1 : 0;
    if (attributes) this.#attributes(attributes);
  }

  #value(value: unknown): void {
    this.#room(9);
    switch (typeof value) {
      case "string":
        this.#buf[this.#pos++] = STRING;
        this.#string(value);
        return;
      case "boolean":
        this.#buf[this.#pos++] = BOOLEAN;
        this.#buf[this.#pos++] = value ? 1 : 0;
        return;
      case "number":
        this.#buf[this.#pos++] = NUMBER;
        this.#view.setFloat64(this.#pos, value, true);
        this.#pos += 8;
        return;
      case "undefined":
        this.#buf[this.#pos++] = UNDEFINED;
        return;
    }
    if (value === null) {
      this.#buf[this.#pos++] = NULL;
    } else if (Array.isArray(value)) {
      this.#buf[this.#pos++] = ARRAY;
      this.#u32(value.length);
      for (const item of value) this.#value(item);
    } else {
      this.#buf[this.#pos++] = OTHER;
    }
  }

  #events(events: WireEvent[] | null): void {
    if (events === null) {
      this.#u32(NO_LIST);
      return;
    }
    this.#u32(events.length);
    for (const [name, timeMs, attributes, dropped] of events) {
      this.#string(name);
      this.#room(8);
      this.#view.setFloat64(this.#pos, timeMs, true);
      this.#pos += 8;
      this.#maybeAttributes(attributes);
      this.#u32(dropped);
    }
  }

  #links(links: WireLink[] | null): void {
    if (links === null) {
      this.#u32(NO_LIST);
      return;
    }
    this.#u32(links.length);
    for (const [traceId, spanId, traceFlags, traceState, isRemote, attributes, dropped] of links) {
      this.#string(traceId);
      this.#string(spanId);
      this.#room(2);
      this.#buf[this.#pos++] = traceFlags;
      this.#buf[this.#pos++] = isRemote ? 1 : 0;
      this.#maybeString(traceState);
      this.#maybeAttributes(attributes);
      this.#u32(dropped);
    }
  }

  #u32(value: number): void {
    this.#room(4);
    this.#view.setUint32(this.#pos, value, true);
    this.#pos += 4;
  }

  /** UTF-8 after its byte length; ASCII (nearly every string here) copied by a loop. */
  #string(value: string): void {
    if (typeof value !== "string") throw new TypeError(`not a string: ${String(value)}`);
    const length = value.length;
    this.#room(length * 3 + 4);
    const buf = this.#buf;
    const start = this.#pos + 4;
    let at = start;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) {
        at = start + utf8.encodeInto(value, buf.subarray(start)).written;
        break;
      }
      buf[at++] = code;
    }
    this.#view.setUint32(this.#pos, at - start, true);
    this.#pos = at;
  }

  #maybeString(value: string | null): void {
    this.#room(1);
    if (value === null) {
      this.#buf[this.#pos++] = 0;
      return;
    }
    this.#buf[this.#pos++] = 1;
    this.#string(value);
  }

  #room(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#pos));
    this.#buf = grown;
    this.#view = new DataView(grown.buffer);
  }
}

/** The spans of a buffer of records; their SIP heads are views of it. */
export function readSpanRecords(records: Uint8Array): WireSpan[] {
  return new SpanRecordReader(records).spans();
}

class SpanRecordReader {
  readonly #buf: Buffer;
  readonly #view: DataView;
  readonly #length: number;
  #pos = 0;

  constructor(records: Uint8Array) {
    this.#buf = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
    this.#view = new DataView(records.buffer, records.byteOffset, records.byteLength);
    this.#length = records.byteLength;
  }

  spans(): WireSpan[] {
    const spans: WireSpan[] = [];
    while (this.#pos < this.#length) spans.push(this.#span());
    return spans;
  }

  #span(): WireSpan {
    const name = this.#string();
    const kind = this.#u8();
    const traceFlags = this.#u8();
    const traceId = this.#string();
    const spanId = this.#string();
    const traceState = this.#maybeString();
    const parentSpanId = this.#maybeString();
    const parentIsRemote = this.#u8() === 1;
    const startMs = this.#f64();
    const endMs = this.#f64();
    const statusCode = this.#u8();
    const statusMessage = this.#maybeString();
    const parts: SpanPart[] = [];
    for (let n = this.#u32(); n > 0; n--) parts.push(this.#part());
    const events = this.#events();
    const links = this.#links();
    const droppedEvents = this.#u32();
    const droppedLinks = this.#u32();
    return [
      name,
      kind,
      traceId,
      spanId,
      traceFlags,
      traceState,
      parentSpanId,
      parentIsRemote,
      startMs,
      endMs,
      statusCode,
      statusMessage,
      parts,
      events,
      links,
      droppedEvents,
      droppedLinks,
      this.#string(),
      this.#maybeString(),
      this.#maybeString(),
    ];
  }

  #part(): SpanPart {
    if (this.#u8() === OBJECT_PART) return this.#attributes();
    const transport = this.#string();
    const address = this.#string();
    const port = this.#u32();
    const length = this.#u32();
    const sipHead = new Uint8Array(this.#buf.buffer, this.#buf.byteOffset + this.#pos, length);
    this.#pos += length;
    return { sipHead, transport, address, port };
  }

  #attributes(): Attributes {
    const attributes: Attributes = {};
    for (let n = this.#u32(); n > 0; n--) {
      const key = this.#string();
      attributes[key] = this.#value() as AttributeValue;
    }
    return attributes;
  }

  #maybeAttributes(): Attributes | null {
    return this.#u8() === 1 ? this.#attributes() : null;
  }

  #value(): unknown {
    switch (this.#u8()) {
      case STRING:
        return this.#string();
      case BOOLEAN:
        return this.#u8() === 1;
      case NUMBER:
        return this.#f64();
      case ARRAY: {
        const items: unknown[] = [];
        for (let n = this.#u32(); n > 0; n--) items.push(this.#value());
        return items;
      }
      case OTHER:
        return {};
      case NULL:
        return null;
      default:
        return undefined;
    }
  }

  #events(): WireEvent[] | null {
    const count = this.#u32();
    if (count === NO_LIST) return null;
    const events: WireEvent[] = [];
    for (let n = count; n > 0; n--) {
      events.push([this.#string(), this.#f64(), this.#maybeAttributes(), this.#u32()]);
    }
    return events;
  }

  #links(): WireLink[] | null {
    const count = this.#u32();
    if (count === NO_LIST) return null;
    const links: WireLink[] = [];
    for (let n = count; n > 0; n--) {
      const traceId = this.#string();
      const spanId = this.#string();
      const traceFlags = this.#u8();
      const isRemote = this.#u8() === 1;
      const traceState = this.#maybeString();
      links.push([
        traceId,
        spanId,
        traceFlags,
        traceState,
        isRemote,
        this.#maybeAttributes(),
        this.#u32(),
      ]);
    }
    return links;
  }

  #u8(): number {
    return this.#view.getUint8(this.#pos++);
  }

  #u32(): number {
    const value = this.#view.getUint32(this.#pos, true);
    this.#pos += 4;
    return value;
  }

  #f64(): number {
    const value = this.#view.getFloat64(this.#pos, true);
    this.#pos += 8;
    return value;
  }

  #string(): string {
    const length = this.#u32();
    const value = this.#buf.toString("utf8", this.#pos, this.#pos + length);
    this.#pos += length;
    return value;
  }

  #maybeString(): string | null {
    return this.#u8() === 1 ? this.#string() : null;
  }
}
