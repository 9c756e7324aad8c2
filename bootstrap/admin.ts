// bootstrap: the admin HTTP port of a node — /healthz, /readyz, /metrics, /api/cluster.
// Read-only views of the node, plus /sources/<name>/… handed to presence sources (e.g. the webhook).

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { SourceHttpRequest } from "../actors/sources/api.js";
import type { SourceHttpAnswer } from "../actors/sources/manager.js";
import type { HostPort } from "./config.js";
import type { Logger } from "./log.js";

export interface AdminSources {
  view: () => Promise<unknown>;
  /** Alive and not shutting down (/healthz). */
  ready: () => boolean;
  /** Takes watchers now (/readyz): alive and, for a server, its control session up. */
  readyForWatchers: () => { ready: boolean; status: string };
  /** Prometheus exposition text (/metrics). */
  metrics: () => Promise<{ contentType: string; text: string }>;
  /** A request to /sources/<name>/<path>: the presence source's own HTTP entry. */
  source?: (name: string, request: SourceHttpRequest) => Promise<SourceHttpAnswer>;
}

/** Largest request body a presence source is handed (larger gets 413). */
const MAX_SOURCE_BODY = 64 * 1024;

export interface AdminServer extends HostPort {
  close(): Promise<void>;
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

/** The request body, or undefined when it is larger than `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** /sources/<name>/<path>: read the body, hand it to the source, answer with its JSON. */
async function sourceRoute(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  handler: NonNullable<AdminSources["source"]>,
): Promise<void> {
  const [, , name = "", ...rest] = path.split("/");
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest.join("/"));
  } catch {
    json(res, 400, { error: "the path is not valid percent-encoding" });
    return;
  }
  const body = await readBody(req, MAX_SOURCE_BODY);
  if (body === undefined) {
    json(res, 413, { error: `body larger than ${MAX_SOURCE_BODY} bytes` }, { connection: "close" });
    return;
  }
  const headers: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    headers[key] = Array.isArray(value) ? value.join(", ") : value;
  }
  const answer = await handler(name, {
    method: req.method ?? "GET",
    path: decoded,
    headers,
    body,
  });
  json(res, answer.status, answer.body, answer.headers);
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  sources: AdminSources,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  if (path.startsWith("/sources/") && sources.source) {
    await sourceRoute(req, res, path, sources.source);
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  switch (path) {
    case "/healthz":
      json(res, sources.ready() ? 200 : 503, { status: sources.ready() ? "ok" : "draining" });
      return;
    case "/readyz": {
      const { ready, status } = sources.readyForWatchers();
      json(res, ready ? 200 : 503, { status });
      return;
    }
    case "/metrics": {
      const { contentType, text } = await sources.metrics();
      res.writeHead(200, {
        "content-type": contentType,
        "content-length": Buffer.byteLength(text),
        "cache-control": "no-store",
      });
      res.end(text);
      return;
    }
    case "/api/cluster":
      json(res, 200, await sources.view());
      return;
    default:
      json(res, 404, {
        error: `no such path: ${path}`,
        paths: ["/healthz", "/readyz", "/metrics", "/api/cluster"],
      });
  }
}

export function startAdmin(
  address: HostPort,
  sources: AdminSources,
  log: Logger,
): Promise<AdminServer> {
  const server = createServer((req, res) => {
    route(req, res, sources).catch((error: unknown) => {
      log.error("admin request failed", { path: req.url, error });
      if (!res.headersSent) json(res, 500, { error: "internal error" });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 1_000;
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          `cannot listen on http://${address.host}:${address.port} for --http: ${error.code ?? error.message}`,
          { cause: error },
        ),
      );
    });
    server.listen(address.port, address.host, () => {
      const bound = server.address() as AddressInfo;
      resolve({
        host: bound.address,
        port: bound.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
