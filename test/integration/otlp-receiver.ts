// test/integration: a tiny OTLP/HTTP trace receiver on 127.0.0.1 — decodes the JSON encoding
// (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) into flat spans with their resource's attributes.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

export type AttributeValue = string | number | boolean | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, AttributeValue>;
  resource: Record<string, AttributeValue>;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

interface OtlpKeyValue {
  key: string;
  value?: {
    stringValue?: string;
    intValue?: string | number;
    doubleValue?: number;
    boolValue?: boolean;
  };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpKeyValue[];
}

interface OtlpRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

function attributes(list: readonly OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) {
    if (!value) continue;
    out[key] =
      value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.doubleValue ??
      value.boolValue;
  }
  return out;
}

/** OTLP/JSON ids are hex; some encoders send base64: both come out as lower-case hex. */
function hexId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  if (/^[0-9a-fA-F]+$/.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, "base64").toString("hex");
}

export interface OtlpReceiver {
  /** The base URL for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  spans(): readonly ReceivedSpan[];
  /** Requests that could not be decoded (they fail the test that looks). */
  readonly errors: string[];
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received: ReceivedSpan[] = [];
  const errors: string[] = [];
  const server = createServer((req, res) => {
    body(req)
      .then((text) => {
        if (req.method !== "POST" || req.url !== "/v1/traces") {
          errors.push(`${req.method} ${req.url}`);
          res.writeHead(404).end();
          return;
        }
        if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
          errors.push(`content-type ${req.headers["content-type"]}`);
          res.writeHead(415).end();
          return;
        }
        const request = JSON.parse(text) as OtlpRequest;
        for (const resourceSpans of request.resourceSpans ?? []) {
          const resource = attributes(resourceSpans.resource?.attributes);
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              received.push({
                traceId: hexId(span.traceId) ?? "",
                spanId: hexId(span.spanId) ?? "",
                parentSpanId: hexId(span.parentSpanId),
                name: span.name,
                kind: span.kind,
                attributes: attributes(span.attributes),
                resource,
              });
            }
          }
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      })
      .catch((error: unknown) => {
        errors.push(String(error));
        res.writeHead(400).end();
      });
  });
  server.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => received,
    errors,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The spans of one trace on the chain from `span` up to its root (the span itself first). */
export function ancestry(span: ReceivedSpan, trace: readonly ReceivedSpan[]): ReceivedSpan[] {
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  const chain = [span];
  let current = span;
  while (current.parentSpanId !== undefined) {
    const parent = byId.get(current.parentSpanId);
    if (!parent) break;
    chain.push(parent);
    current = parent;
  }
  return chain;
}
