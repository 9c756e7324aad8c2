// scripts/bench: the OTLP/HTTP trace receiver of the SIP benchmark — takes POST /v1/traces and counts.
// Kept cheap (it shares the CPU with the node under test): requests, bytes, and spans found by walking
// the protobuf's two outer levels without decoding a span.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpCounts {
  requests: number;
  bytes: number;
  /** Spans in the protobuf requests (a JSON request adds none). */
  spans: number;
}

/** Reads a base-128 varint at `at`; returns the value and the offset after it. */
function varint(buf: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 1;
  let i = at;
  while (i < buf.length) {
    const byte = buf[i++] ?? 0;
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) return [value, i];
    shift *= 128;
  }
  throw new Error("truncated varint");
}

/** The byte ranges of the length-delimited fields numbered `field` in one protobuf message. */
function fields(buf: Uint8Array, from: number, to: number, field: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = from;
  while (at < to) {
    const [key, next] = varint(buf, at);
    at = next;
    switch (key & 7) {
      case 0:
        at = varint(buf, at)[1];
        break;
      case 1:
        at += 8;
        break;
      case 2: {
        const [length, start] = varint(buf, at);
        if (key >>> 3 === field) out.push([start, start + length]);
        at = start + length;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`unsupported protobuf wire type ${key & 7}`);
    }
  }
  if (at !== to) throw new Error("protobuf field runs past its message");
  return out;
}

/**
 * Spans in an ExportTraceServiceRequest: resource_spans = 1 → scope_spans = 2 → spans = 2
 * (opentelemetry-proto trace/v1/trace.proto).
 */
export function countSpans(buf: Uint8Array): number {
  let spans = 0;
  for (const [rFrom, rTo] of fields(buf, 0, buf.length, 1)) {
    for (const [sFrom, sTo] of fields(buf, rFrom, rTo, 2)) {
      spans += fields(buf, sFrom, sTo, 2).length;
    }
  }
  return spans;
}

export class OtlpSink {
  readonly counts: OtlpCounts = { requests: 0, bytes: 0, spans: 0 };
  /** Requests that were not a POST /v1/traces or whose protobuf did not parse. */
  rejected = 0;

  private constructor(
    private readonly server: Server,
    /** The base URL for OTEL_EXPORTER_OTLP_ENDPOINT. */
    readonly endpoint: string,
  ) {}

  static async open(): Promise<OtlpSink> {
    let sink: OtlpSink | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        if (!sink) return;
        const body = Buffer.concat(chunks);
        let spans = 0;
        try {
          if (req.method !== "POST" || req.url !== "/v1/traces") throw new Error(req.url);
          if (req.headers["content-type"] === "application/x-protobuf") spans = countSpans(body);
        } catch {
          sink.rejected++;
          res.writeHead(400).end();
          return;
        }
        sink.counts.requests++;
        sink.counts.bytes += body.length;
        sink.counts.spans += spans;
        // An empty ExportTraceServiceResponse: every span accepted.
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      });
    });
    server.listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => server.once("listening", resolve));
    const { port } = server.address() as AddressInfo;
    sink = new OtlpSink(server, `http://127.0.0.1:${port}`);
    return sink;
  }

  /** The counts so far, to subtract from later ones. */
  snapshot(): OtlpCounts {
    return { ...this.counts };
  }

  since(before: OtlpCounts): OtlpCounts {
    return {
      requests: this.counts.requests - before.requests,
      bytes: this.counts.bytes - before.bytes,
      spans: this.counts.spans - before.spans,
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
