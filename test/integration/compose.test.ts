// test/integration: the compose topology as local processes — reads docker-compose.yml, starts its
// nats-servers with their cluster flags and each node service with its command and environment
// (service host names → 127.0.0.1, every port → a free one), then a SIPp watcher and publisher.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { lintCompose } from "../../scripts/lint-compose.js";
import { freePort, pidf, projectRoot, type SipTraceMessage, scene, waitFor } from "./harness.js";

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, unknown>;
}

const composeFile = join(projectRoot, "docker-compose.yml");

/** Ports of the topology: each (service, container port) gets a free port on 127.0.0.1. */
class PortMap {
  private readonly ports = new Map<string, number>();
  private readonly published = new Map<number, { service: string; port: number }>();

  constructor(private readonly services: Record<string, ComposeService>) {
    for (const [name, service] of Object.entries(services)) {
      for (const mapping of service.ports ?? []) {
        const [host, container] = mapping.split("/")[0]?.split(":") ?? [];
        this.published.set(Number(host), { service: name, port: Number(container ?? host) });
      }
    }
  }

  async allocate(): Promise<void> {
    for (const [name, service] of Object.entries(this.services)) {
      const texts = [
        ...(service.command ?? []),
        ...Object.values(service.environment ?? {}).map(String),
        ...(service.healthcheck?.test ?? []),
        ...(service.ports ?? []),
      ];
      for (const text of texts) {
        for (const match of text.matchAll(/:(\d{2,5})\b/g)) await this.of(name, Number(match[1]));
        if (/^\d{2,5}$/.test(text)) await this.of(name, Number(text));
      }
      for (const mapping of service.ports ?? []) {
        const [, container] = mapping.split("/")[0]?.split(":") ?? [];
        await this.of(name, Number(container));
      }
    }
    // Ports named only from another service (routes, URLs) are allocated as they are met.
    for (const [name] of Object.entries(this.services)) {
      for (const service of Object.values(this.services)) {
        const texts = [...(service.command ?? []), ...Object.values(service.environment ?? {})];
        for (const text of texts.map(String)) {
          for (const match of text.matchAll(new RegExp(`\\b${name}:(\\d+)`, "g"))) {
            await this.of(name, Number(match[1]));
          }
        }
      }
    }
  }

  private async of(service: string, port: number): Promise<number> {
    const key = `${service}:${port}`;
    let local = this.ports.get(key);
    if (local === undefined) {
      local = await freePort();
      this.ports.set(key, local);
    }
    return local;
  }

  /** The local port of a service's container port (allocated before). */
  port(service: string, port: number): number {
    const local = this.ports.get(`${service}:${port}`);
    if (local === undefined) throw new Error(`no port for ${service}:${port}`);
    return local;
  }

  /** The local port behind a port published on the Docker host. */
  hostPort(port: number): number {
    const target = this.published.get(port);
    if (!target) throw new Error(`port ${port} is not published by any service`);
    return this.port(target.service, target.port);
  }

  /**
   * Rewrites host:port pairs for local processes: a service name → that service; 0.0.0.0 → this
   * service; 127.0.0.1 → the Docker host's published port ("host") or this service ("container").
   */
  rewrite(text: string, self: string, loopback: "host" | "container"): string {
    return text.replace(/([A-Za-z0-9_.-]+):(\d{2,5})\b/g, (whole, host: string, raw: string) => {
      const port = Number(raw);
      if (host in this.services) return `127.0.0.1:${this.port(host, port)}`;
      if (host === "0.0.0.0") return `127.0.0.1:${this.port(self, port)}`;
      if (host === "127.0.0.1" || host === "localhost") {
        return `127.0.0.1:${loopback === "host" ? this.hostPort(port) : this.port(self, port)}`;
      }
      return whole;
    });
  }
}

/** The URL a service's health check fetches, as a local process sees it. */
function healthUrl(service: ComposeService, self: string, ports: PortMap): string {
  const test = (service.healthcheck?.test ?? []).join(" ");
  const url = /http:\/\/[^'"\s)]+/.exec(test)?.[0];
  assert.ok(url, `service ${self} has an HTTP health check`);
  return ports.rewrite(url, self, "container");
}

async function healthy(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await response.arrayBuffer();
  return response.ok;
}

const isNotify = (message: SipTraceMessage): boolean =>
  message.direction === "received" && message.method === "NOTIFY";

describe("compose - the shipped docker-compose.yml", () => {
  it("compose - the file is valid against the Compose specification schema", () => {
    assert.deepEqual(lintCompose(composeFile), []);
  });

  it(
    "compose - its services run as local processes and a SIPp watcher and publisher work through them",
    scene("compose", async (s) => {
      const compose = parse(readFileSync(composeFile, "utf8"), { merge: true }) as {
        services: Record<string, ComposeService>;
      };
      const services = compose.services;
      const ports = new PortMap(services);
      await ports.allocate();
      const processes: ChildProcess[] = [];
      const run = (name: string, command: string, args: string[], env: NodeJS.ProcessEnv) => {
        const fd = openSync(join(s.dir, `${name}.log`), "w");
        const child = spawn(command, args, { cwd: projectRoot, env, stdio: ["ignore", fd, fd] });
        closeSync(fd);
        processes.push(child);
      };
      // Jaeger's stand-in: an OTLP/HTTP endpoint that counts the trace exports it gets.
      let exports = 0;
      const jaeger = createServer((req, res) => {
        if (req.method === "POST" && req.url === "/v1/traces") exports += 1;
        req.resume();
        req.on("end", () => res.writeHead(200).end());
      });
      const nodes = Object.entries(services).filter(([, svc]) => svc.command?.[0] === "node");
      const natsServers = Object.entries(services).filter(([, svc]) =>
        (svc.image ?? "").startsWith("nats:"),
      );
      try {
        const otlp = Object.values(services)
          .map((svc) => String(svc.environment?.OTEL_EXPORTER_OTLP_ENDPOINT ?? ""))
          .find((url) => url !== "");
        assert.ok(otlp, "the nodes export traces");
        const [jaegerHost = "", jaegerPort = ""] = new URL(otlp).host.split(":");
        jaeger.listen(ports.port(jaegerHost, Number(jaegerPort)), "127.0.0.1");
        await new Promise<void>((resolve) => jaeger.once("listening", resolve));
        assert.ok((jaeger.address() as AddressInfo).port > 0);

        assert.equal(natsServers.length, 3, "a 3-node NATS cluster");
        for (const [name, svc] of natsServers) {
          const store = join(s.dir, `${name}-store`);
          mkdirSync(store, { recursive: true });
          // Ports given as bare numbers (--port, --http_port) are mapped like host:port pairs;
          // clients listen on loopback only.
          const args = [
            "--addr",
            "127.0.0.1",
            ...(svc.command ?? []).map((arg, i, all) => {
              const flag = all[i - 1] ?? "";
              if (flag === "--store_dir") return store;
              if (/^(--port|--http_port|-p|-m)$/.test(flag))
                return String(ports.port(name, Number(arg)));
              return ports.rewrite(arg, name, "container");
            }),
          ];
          assert.ok(args.includes("--jetstream"), `${name} runs JetStream`);
          run(name, "nats-server", args, { PATH: process.env.PATH ?? "" });
        }
        await waitFor(
          async () => {
            for (const [name, svc] of natsServers) {
              const health = healthUrl(svc, name, ports);
              if (!(await healthy(health))) return false;
              const routes = (await (await fetch(new URL("/routez", health))).json()) as {
                num_routes: number;
              };
              if (routes.num_routes !== natsServers.length - 1) return false;
            }
            return true;
          },
          { what: "the NATS servers healthy and routed to each other", timeoutMs: 15_000 },
        );

        assert.deepEqual(nodes.map(([, svc]) => svc.environment?.PRESENCE_ROLE).sort(), [
          "pool",
          "pool",
          "primary",
          "server",
          "server",
        ]);
        const inherited = Object.fromEntries(
          Object.entries(process.env).filter(([key]) => !/^(PRESENCE|OTEL)_/.test(key)),
        );
        for (const [name, svc] of nodes) {
          const env: NodeJS.ProcessEnv = { ...inherited, OTEL_BSP_SCHEDULE_DELAY: "200" };
          for (const [key, value] of Object.entries(svc.environment ?? {})) {
            env[key] = ports.rewrite(String(value), name, "host");
          }
          const [, script = "", ...rest] = svc.command ?? [];
          run(name, process.execPath, [join(projectRoot, script), ...rest], env);
        }
        await waitFor(
          async () => {
            for (const [name, svc] of nodes) {
              if (!(await healthy(healthUrl(svc, name, ports)))) return false;
            }
            return true;
          },
          { what: "every node service healthy", timeoutMs: 20_000 },
        );
        const admin = (name: string) => `http://127.0.0.1:${ports.port(name, 8080)}`;
        await waitFor(
          async () => {
            const view = (await (await fetch(`${admin("primary")}/api/cluster`)).json()) as {
              supervisor?: { activeServers: number };
            };
            return view.supervisor?.activeServers === 3;
          },
          { what: "the primary and both servers with control sessions up", timeoutMs: 20_000 },
        );

        const user = "composed";
        const primarySip = `127.0.0.1:${ports.hostPort(5060)}`;
        const watchers = [];
        // Load ties at first: the primary keeps one watcher, the next is redirected to a server.
        for (const service of [`${user}0`, `${user}1`]) {
          const watcher = await s.startSipp({
            scenario: "watcher-redirect.xml",
            transport: "udp",
            target: primarySip,
            service,
            vars: { expires: 600 },
          });
          await watcher.waitForMessage(isNotify, `${service}'s first NOTIFY`);
          watchers.push(watcher);
        }
        const redirected = watchers
          .flatMap((w) => w.trace())
          .find((m) => m.direction === "received" && m.status === 302);
        const serverSip = [5062, 5064].map((p) => `127.0.0.1:${ports.hostPort(p)}`);
        assert.ok(
          serverSip.some((sip) => (redirected?.header("contact") ?? "").includes(sip)),
          `redirected to a server's advertised address: ${redirected?.header("contact")}`,
        );
        for (const [i, watcher] of watchers.entries()) {
          const published = await s.runSipp({
            scenario: "publish.xml",
            transport: "udp",
            target: `127.0.0.1:${ports.hostPort(5064)}`,
            service: `${user}${i}`,
            vars: { expires: 600 },
            files: {
              "body.pidf": pidf(`${user}${i}`, [
                { id: "t", basic: "open", note: "final-note-reached" },
              ]),
            },
          });
          assert.equal(published.code, 0, published.describe());
          const result = await watcher.done;
          assert.equal(result.code, 0, result.describe());
        }
        await waitFor(() => exports > 0, { what: "trace exports at Jaeger's OTLP port" });
      } finally {
        for (const child of processes) child.kill("SIGKILL");
        jaeger.close();
        jaeger.closeAllConnections();
      }
    }),
  );
});
