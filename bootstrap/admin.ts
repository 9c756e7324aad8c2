// bootstrap: the admin HTTP port of a node — /healthz, /api/cluster (and later /metrics, /readyz).
// Read-only views of the node; it never changes presence state.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { HostPort } from "./config.js";
import type { Logger } from "./log.js";

export interface AdminSources {
  view: () => Promise<unknown>;
  ready: () => boolean;
}

export interface AdminServer extends HostPort {
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  sources: AdminSources,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  switch (path) {
    case "/healthz":
      json(res, sources.ready() ? 200 : 503, { status: sources.ready() ? "ok" : "draining" });
      return;
    case "/api/cluster":
      json(res, 200, await sources.view());
      return;
    default:
      json(res, 404, { error: `no such path: ${path}`, paths: ["/healthz", "/api/cluster"] });
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
