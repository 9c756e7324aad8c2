// bootstrap: OTLP encodings of ended spans, written as each span ends — protobuf (OTLP/HTTP's default) or
// JSON — into the body of the next export request, so the worker only sends bytes (tracing-export.ts).

import type { Attributes, AttributeValue } from "@opentelemetry/api";
import { isAttributeValue, millisToHrTime } from "@opentelemetry/core";
import { isSipHead, sipHeadAttributes } from "../transport/sip-span.js";
import type { SpanPart, WireEvent, WireLink, WireSpan } from "./tracing-export.js";

/** The span attribute limits (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, _VALUE_LENGTH_LIMIT). */
export interface AttributeLimits {
  attributeCount: number;
  attributeValueLength: number;
}

/** A string (or the strings of an array) cut to `limit` characters. */
function truncate(value: AttributeValue, limit: number): AttributeValue {
  if (limit === Number.POSITIVE_INFINITY) return value;
  if (typeof value === "string") return value.length > limit ? value.slice(0, limit) : value;
  if (Array.isArray(value)) {
    return value.map((v: unknown) =>
      typeof v === "string" && v.length > limit ? v.slice(0, limit) : v,
    ) as AttributeValue;
  }
  return value;
}

/**
 * A span's attribute objects as one, in order (a later value of a key replaces an earlier one),
 * with at most `count` keys (the rest counted as dropped), values cut to `valueLength`, and
 * values that are no attribute value left out.
 */
export function mergeAttributes(
  parts: readonly Attributes[],
  count: number,
  valueLength: number,
): [Attributes, number] {
  const merged: Attributes = {};
  let kept = 0;
  let dropped = 0;
  for (const part of parts) {
    for (const key in part) {
      const value = part[key];
      if (!Object.hasOwn(part, key) || value == null || !isAttributeValue(value)) continue;
      if (!Object.hasOwn(merged, key)) {
        if (kept >= count) {
          dropped++;
          continue;
        }
        kept++;
      }
      merged[key] = truncate(value, valueLength);
    }
  }
  return [merged, dropped];
}

/** A span's parts as attribute objects: a SIP head becomes the attributes read from it. */
export function attributeObjects(parts: readonly SpanPart[]): Attributes[] {
  const objects: Attributes[] = [];
  for (const part of parts) objects.push(isSipHead(part) ? sipHeadAttributes(part) : part);
  return objects;
}

/**
 * Whether the parts can be written as they are: no key in two parts, every value valid, no
 * more keys than `limits` allow and no value to cut. Then writing each part's keys in turn is
 * what `mergeAttributes` would give — without building the merged object.
 */
function asTheyAre(parts: readonly Attributes[], limits: AttributeLimits): boolean {
  if (limits.attributeValueLength !== Number.POSITIVE_INFINITY) return false;
  let keys = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as Attributes;
    for (const key in part) {
      const value = part[key];
      if (!Object.hasOwn(part, key) || value == null || !isAttributeValue(value)) return false;
      for (let j = 0; j < i; j++) if (Object.hasOwn(parts[j] as Attributes, key)) return false;
      keys++;
    }
  }
  return keys <= limits.attributeCount;
}

/** The parts to write and the count of attributes dropped, merged only where they must be. */
function attributesToWrite(
  parts: readonly Attributes[],
  limits: AttributeLimits,
): [readonly Attributes[], number] {
  if (asTheyAre(parts, limits)) return [parts, 0];
  const [merged, dropped] = mergeAttributes(
    parts,
    limits.attributeCount,
    limits.attributeValueLength,
  );
  return [[merged], dropped];
}

/** The instrumentation scope of a span, as WireSpan carries it. */
interface Scope {
  name: string;
  version: string | null;
  schemaUrl: string | null;
}

/** What an encoder keeps per scope: its spans so far. */
interface ScopeEntry<T> {
  scope: Scope;
  spans: T;
}

/** The spans of each scope in the order the scopes came, the last one found without a lookup. */
class ScopeSpans<T> {
  readonly entries = new Map<string, ScopeEntry<T>>();
  #last: ScopeEntry<T> | undefined;

  constructor(readonly create: () => T) {}

  of(wire: WireSpan): T {
    const last = this.#last;
    if (last && last.scope.name === wire[17] && last.scope.version === wire[18]) {
      if (last.scope.schemaUrl === wire[19]) return last.spans;
    }
    const key = `${wire[17]}\u0000${wire[18] ?? ""}\u0000${wire[19] ?? ""}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = {
        scope: { name: wire[17], version: wire[18], schemaUrl: wire[19] },
        spans: this.create(),
      };
      this.entries.set(key, entry);
    }
    this.#last = entry;
    return entry.spans;
  }
}

/** The OTLP span flags: the W3C trace flags and whether the parent (or link) is remote. */
function spanFlags(traceFlags: number, isRemote: boolean): number {
  return (traceFlags & 0xff) | 0x100 | (isRemote ? 0x200 : 0);
}

/** Ended spans of one export request, written as they come; `finish` gives the request body. */
export interface SpanEncoder {
  readonly contentType: string;
  /** Spans written since the last `finish`. */
  readonly count: number;
  write(span: WireSpan): void;
  /** The ExportTraceServiceRequest of the spans written; the encoder starts a new one. */
  finish(): Uint8Array;
}

export interface EncoderSetup extends AttributeLimits {
  resource: Attributes;
  resourceSchemaUrl?: string;
}

/** The OTLP/HTTP encodings (OTEL_EXPORTER_OTLP_PROTOCOL) the export writes. */
export type OtlpEncoding = "http/protobuf" | "http/json";

export function spanEncoder(protocol: OtlpEncoding, setup: EncoderSetup) {
  return protocol === "http/json" ? new JsonEncoder(setup) : new ProtobufEncoder(setup);
}

const TWO_32 = 0x100000000;

const utf8 = new TextEncoder();

/** A growing protobuf output buffer; a length-delimited field reserves one length byte. */
class ProtoWriter {
  buf: Uint8Array;
  pos = 0;
  #view: DataView;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.#view = new DataView(this.buf.buffer);
  }

  room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.#view = new DataView(grown.buffer);
  }

  /** An unsigned 32-bit value or, for larger or negative numbers, int64 two's complement. */
  varint(value: number): void {
    this.room(10);
    const buf = this.buf;
    if (value >= 0 && value < TWO_32) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = (abs / TWO_32) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 0x7f) {
      buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low;
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  string(value: string): void {
    const length = value.length;
    this.room(length + 5);
    const buf = this.buf;
    const start = this.pos;
    this.varint(length);
    let at = this.pos;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) {
        this.pos = start;
        this.bytes(Buffer.from(value, "utf8"));
        return;
      }
      buf[at++] = code;
    }
    this.pos = at;
  }

  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.raw(value);
  }

  /** Text as UTF-8, no length before it (the JSON encoding's writer). */
  utf8(text: string): void {
    this.room(text.length * 3);
    this.pos += utf8.encodeInto(text, this.buf.subarray(this.pos)).written;
  }

  /** A few bytes already encoded (a loop: cheaper than `set` for short runs). */
  copy(value: Uint8Array): void {
    const length = value.length;
    this.room(length);
    const buf = this.buf;
    let at = this.pos;
    for (let i = 0; i < length; i++) buf[at++] = value[i] as number;
    this.pos = at;
  }

  /** Bytes already encoded. */
  raw(value: Uint8Array): void {
    this.room(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  /** A trace or span id: hex characters as the bytes they spell. */
  hex(value: string): void {
    const length = value.length >>> 1;
    this.varint(length);
    this.room(length);
    const buf = this.buf;
    for (let i = 0; i < length; i++) {
      buf[this.pos++] =
        (nibble(value.charCodeAt(2 * i)) << 4) | nibble(value.charCodeAt(2 * i + 1));
    }
  }

  fixed32(value: number): void {
    this.room(4);
    this.#view.setUint32(this.pos, value >>> 0, true);
    this.pos += 4;
  }

  double(value: number): void {
    this.room(8);
    this.#view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  /** Epoch milliseconds as fixed64 nanoseconds, rounded as the SDK's HrTime does. */
  time(ms: number): void {
    const [seconds, nanos] = millisToHrTime(ms);
    // seconds × 1e9 + nanos exceeds 2^53: sum it in 32-bit halves.
    const lowSeconds = seconds & 0xffff;
    const highSeconds = (seconds / 0x10000) >>> 0;
    const fromLow = lowSeconds * 1e9;
    const fromHigh = highSeconds * 1e9;
    const low = (fromLow >>> 0) + (((fromHigh & 0xffff) * 0x10000) >>> 0) + nanos;
    const high =
      Math.floor(fromLow / TWO_32) + ((fromHigh / 0x10000) >>> 0) + Math.floor(low / TWO_32);
    this.room(8);
    this.#view.setUint32(this.pos, low >>> 0, true);
    this.#view.setUint32(this.pos + 4, high >>> 0, true);
    this.pos += 8;
  }

  /** Starts a length-delimited field's content; `end` writes its length before it. */
  begin(): number {
    this.room(1);
    return this.pos++;
  }

  end(at: number): void {
    const length = this.pos - at - 1;
    if (length < 0x80) {
      this.buf[at] = length;
      return;
    }
    let extra = 0;
    for (let v = length >>> 7; v > 0; v >>>= 7) extra++;
    this.room(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let v = length;
    let i = at;
    while (v > 0x7f) {
      this.buf[i++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[i] = v;
  }

  take(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

function nibble(code: number): number {
  if (code <= 57) return code - 48;
  if (code >= 97) return code - 87;
  return code - 55;
}

function anyValue(w: ProtoWriter, value: unknown): void {
  switch (typeof value) {
    case "string":
      w.tag(1, 2);
      w.string(value);
      return;
    case "boolean":
      w.tag(2, 0);
      w.varint(value ? 1 : 0);
      return;
    case "number":
      if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
        w.tag(3, 0);
        w.varint(value);
      } else {
        w.tag(4, 1);
        w.double(value);
      }
      return;
  }
  if (Array.isArray(value)) {
    w.tag(5, 2);
    const array = w.begin();
    for (const item of value) {
      w.tag(1, 2);
      const at = w.begin();
      anyValue(w, item);
      w.end(at);
    }
    w.end(array);
  }
}

/**
 * Attribute keys and span names come back span after span: each one's string field (tag, length,
 * bytes) is encoded once. Bounded: past the limit a text is encoded every time.
 */
class FieldCache {
  readonly #fields = new Map<string, Uint8Array>();

  constructor(
    private readonly field: number,
    private readonly max = 4096,
  ) {}

  of(text: string): Uint8Array {
    let bytes = this.#fields.get(text);
    if (bytes === undefined) {
      const w = new ProtoWriter(text.length * 3 + 8);
      w.tag(this.field, 2);
      w.string(text);
      bytes = w.take();
      if (this.#fields.size < this.max) this.#fields.set(text, bytes);
    }
    return bytes;
  }
}

/** KeyValue.key */
const keyFields = new FieldCache(1);
/** Span.name */
const nameFields = new FieldCache(5);

function keyValues(w: ProtoWriter, field: number, parts: readonly Attributes[]): void {
  for (const part of parts) {
    for (const key in part) {
      if (!Object.hasOwn(part, key)) continue;
      w.tag(field, 2);
      const at = w.begin();
      w.copy(keyFields.of(key));
      w.tag(2, 2);
      const value = w.begin();
      anyValue(w, part[key]);
      w.end(value);
      w.end(at);
    }
  }
}

function protoEvent(w: ProtoWriter, [name, timeMs, attributes, dropped]: WireEvent): void {
  w.tag(11, 2);
  const at = w.begin();
  w.tag(1, 1);
  w.time(timeMs);
  w.tag(2, 2);
  w.string(name);
  if (attributes) keyValues(w, 3, [attributes]);
  w.tag(4, 0);
  w.varint(dropped);
  w.end(at);
}

function protoLink(w: ProtoWriter, link: WireLink): void {
  const [traceId, spanId, traceFlags, traceState, isRemote, attributes, dropped] = link;
  w.tag(13, 2);
  const at = w.begin();
  w.tag(1, 2);
  w.hex(traceId);
  w.tag(2, 2);
  w.hex(spanId);
  if (traceState) {
    w.tag(3, 2);
    w.string(traceState);
  }
  if (attributes) keyValues(w, 4, [attributes]);
  w.tag(5, 0);
  w.varint(dropped);
  w.tag(6, 5);
  w.fixed32(spanFlags(traceFlags, isRemote));
  w.end(at);
}

/**
 * OTLP protobuf (opentelemetry/proto/trace/v1), field for field as the SDK's serializer writes
 * it: each span goes into its scope's buffer as ScopeSpans.spans; `finish` puts the resource
 * and scope messages around them.
 */
class ProtobufEncoder implements SpanEncoder {
  readonly contentType = "application/x-protobuf";
  count = 0;
  readonly #setup: EncoderSetup;
  /** The buffers are kept from batch to batch. */
  readonly #scopes = new ScopeSpans(() => new ProtoWriter(64 * 1024));
  /** The Resource message (ResourceSpans.resource, tag and length included). */
  readonly #resource: Uint8Array;

  constructor(setup: EncoderSetup) {
    this.#setup = setup;
    const w = new ProtoWriter(256);
    w.tag(1, 2);
    const at = w.begin();
    keyValues(w, 1, [setup.resource]);
    w.tag(2, 0);
    w.varint(0);
    w.end(at);
    this.#resource = w.take();
  }

  /** All or nothing: a span that cannot be written leaves the request as it was. */
  write(wire: WireSpan): void {
    const w = this.#scopes.of(wire);
    const start = w.pos;
    try {
      this.#span(w, wire);
    } catch (error) {
      w.pos = start;
      throw error;
    }
    this.count++;
  }

  #span(w: ProtoWriter, wire: WireSpan): void {
    const [parts, droppedAttributes] = attributesToWrite(attributeObjects(wire[12]), this.#setup);
    w.tag(2, 2);
    const at = w.begin();
    w.tag(1, 2);
    w.hex(wire[2]);
    w.tag(2, 2);
    w.hex(wire[3]);
    const traceState = wire[5];
    if (traceState) {
      w.tag(3, 2);
      w.string(traceState);
    }
    const parent = wire[6];
    if (parent) {
      w.tag(4, 2);
      w.hex(parent);
    }
    w.copy(nameFields.of(wire[0]));
    w.tag(6, 0);
    w.varint(wire[1] + 1);
    w.tag(7, 1);
    w.time(wire[8]);
    w.tag(8, 1);
    w.time(wire[9]);
    keyValues(w, 9, parts);
    w.tag(10, 0);
    w.varint(droppedAttributes);
    for (const event of wire[13] ?? []) protoEvent(w, event);
    w.tag(12, 0);
    w.varint(wire[15]);
    for (const link of wire[14] ?? []) protoLink(w, link);
    w.tag(14, 0);
    w.varint(wire[16]);
    w.tag(15, 2);
    const status = w.begin();
    const message = wire[11];
    if (message) {
      w.tag(2, 2);
      w.string(message);
    }
    w.tag(3, 0);
    w.varint(wire[10]);
    w.end(status);
    w.tag(16, 5);
    w.fixed32(spanFlags(wire[4], wire[7]));
    w.end(at);
  }

  finish(): Uint8Array {
    let size = this.#resource.length + 64;
    const scopes = [...this.#scopes.entries.values()];
    for (const { scope, spans } of scopes) size += spans.pos + scope.name.length + 64;
    const out = new ProtoWriter(size);
    out.tag(1, 2);
    const resourceSpans = out.begin();
    out.raw(this.#resource);
    for (const { scope, spans: w } of scopes) {
      if (w.pos === 0) continue;
      out.tag(2, 2);
      const scopeSpans = out.begin();
      out.tag(1, 2);
      const scopeAt = out.begin();
      out.tag(1, 2);
      out.string(scope.name);
      if (scope.version) {
        out.tag(2, 2);
        out.string(scope.version);
      }
      out.end(scopeAt);
      out.raw(w.buf.subarray(0, w.pos));
      if (scope.schemaUrl) {
        out.tag(3, 2);
        out.string(scope.schemaUrl);
      }
      out.end(scopeSpans);
      w.pos = 0;
    }
    if (this.#setup.resourceSchemaUrl) {
      out.tag(3, 2);
      out.string(this.#setup.resourceSchemaUrl);
    }
    out.end(resourceSpans);
    this.count = 0;
    return out.buf.subarray(0, out.pos);
  }
}

/** `,"name":<value as JSON>`, or nothing for no value (an optional OTLP/JSON field). */
function jsonField(name: string, value: string | null | undefined): string {
  return value ? `,"${name}":${JSON.stringify(value)}` : "";
}

/** Epoch milliseconds as the decimal string of nanoseconds OTLP/JSON writes. */
function jsonTime(ms: number): string {
  let [seconds, nanos] = millisToHrTime(ms);
  if (nanos >= 1e9) {
    seconds += 1;
    nanos -= 1e9;
  }
  return seconds > 0 ? `"${seconds}${String(nanos).padStart(9, "0")}"` : `"${nanos}"`;
}

function jsonValue(value: unknown): string {
  switch (typeof value) {
    case "string":
      return `{"stringValue":${JSON.stringify(value)}}`;
    case "boolean":
      return `{"boolValue":${value}}`;
    case "number":
      return Number.isInteger(value)
        ? `{"intValue":${value}}`
        : `{"doubleValue":${JSON.stringify(value)}}`;
  }
  if (Array.isArray(value)) return `{"arrayValue":{"values":[${value.map(jsonValue).join(",")}]}}`;
  return "{}";
}

function jsonAttributes(parts: readonly Attributes[]): string {
  let out = "";
  for (const part of parts) {
    for (const key in part) {
      if (!Object.hasOwn(part, key)) continue;
      if (out) out += ",";
      out += `{"key":${JSON.stringify(key)},"value":${jsonValue(part[key])}}`;
    }
  }
  return `[${out}]`;
}

function jsonEvent([name, timeMs, attributes, dropped]: WireEvent): string {
  return (
    `{"attributes":${jsonAttributes(attributes ? [attributes] : [])},"name":${JSON.stringify(name)},` +
    `"timeUnixNano":${jsonTime(timeMs)},"droppedAttributesCount":${dropped}}`
  );
}

function jsonLink(link: WireLink): string {
  const [traceId, spanId, traceFlags, traceState, isRemote, attributes, dropped] = link;
  const state = traceState ? `"traceState":${JSON.stringify(traceState)},` : "";
  return (
    `{"attributes":${jsonAttributes(attributes ? [attributes] : [])},"spanId":"${spanId}",` +
    `"traceId":"${traceId}",${state}"droppedAttributesCount":${dropped},` +
    `"flags":${spanFlags(traceFlags, isRemote)}}`
  );
}

/** OTLP/JSON as the SDK's JSON serializer writes it (hex ids, times as decimal strings). */
class JsonEncoder implements SpanEncoder {
  readonly contentType = "application/json";
  count = 0;
  readonly #setup: EncoderSetup;
  /** Each scope's spans as UTF-8, comma-separated; the buffers are kept from batch to batch. */
  readonly #scopes = new ScopeSpans(() => new ProtoWriter(64 * 1024));
  readonly #resource: string;
  /** The resource's schema URL field, written in Resource and again in ResourceSpans. */
  readonly #schemaUrl: string;

  constructor(setup: EncoderSetup) {
    this.#setup = setup;
    this.#schemaUrl = jsonField("schemaUrl", setup.resourceSchemaUrl);
    this.#resource = `{"attributes":${jsonAttributes([setup.resource])},"droppedAttributesCount":0${this.#schemaUrl}}`;
  }

  write(wire: WireSpan): void {
    const spans = this.#scopes.of(wire);
    const [parts, droppedAttributes] = attributesToWrite(attributeObjects(wire[12]), this.#setup);
    const parent = wire[6] ? `"parentSpanId":"${wire[6]}",` : "";
    const state = wire[5] ? `"traceState":${JSON.stringify(wire[5])},` : "";
    const message = wire[11] !== null ? `,"message":${JSON.stringify(wire[11])}` : "";
    const json =
      `{"traceId":"${wire[2]}","spanId":"${wire[3]}",${parent}${state}` +
      `"name":${JSON.stringify(wire[0])},"kind":${wire[1] + 1},` +
      `"startTimeUnixNano":${jsonTime(wire[8])},"endTimeUnixNano":${jsonTime(wire[9])},` +
      `"attributes":${jsonAttributes(parts)},"droppedAttributesCount":${droppedAttributes},` +
      `"events":[${(wire[13] ?? []).map(jsonEvent).join(",")}],"droppedEventsCount":${wire[15]},` +
      `"status":{"code":${wire[10]}${message}},` +
      `"links":[${(wire[14] ?? []).map(jsonLink).join(",")}],"droppedLinksCount":${wire[16]},` +
      `"flags":${spanFlags(wire[4], wire[7])}}`;
    spans.utf8(spans.pos > 0 ? `,${json}` : json);
    this.count++;
  }

  finish(): Uint8Array {
    const scopes = [...this.#scopes.entries.values()].filter(({ spans }) => spans.pos > 0);
    let size = this.#resource.length * 3 + this.#schemaUrl.length * 3 + 64;
    for (const { scope, spans } of scopes) size += spans.pos + scope.name.length * 3 + 128;
    const out = new ProtoWriter(size);
    out.utf8(`{"resourceSpans":[{"resource":${this.#resource},"scopeSpans":[`);
    scopes.forEach(({ scope, spans }, i) => {
      const version = jsonField("version", scope.version);
      out.utf8(
        `${i > 0 ? "," : ""}{"scope":{"name":${JSON.stringify(scope.name)}${version}},"spans":[`,
      );
      out.raw(spans.buf.subarray(0, spans.pos));
      spans.pos = 0;
      out.utf8(`]${jsonField("schemaUrl", scope.schemaUrl)}}`);
    });
    out.utf8(`]${this.#schemaUrl}}]}`);
    this.count = 0;
    return out.buf.subarray(0, out.pos);
  }
}
