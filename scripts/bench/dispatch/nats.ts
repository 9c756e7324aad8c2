// scripts/bench/dispatch: the nats-server of one benchmark cluster, on a free port of 127.0.0.1.
// Registered with processes.ts, so that an error or Ctrl-C stops it with the nodes.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { track } from "../processes.js";

export const NATS_SERVER = "nats-server";

export interface NatsServer {
  url: string;
  port: number;
  child: ChildProcess;
  pid: number;
}

/** A TCP port that was free a moment ago (nats-server binds it right after). */
async function freeTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free TCP port");
  return address.port;
}

async function accepts(port: number): Promise<boolean> {
  const socket = net.connect(port, "127.0.0.1");
  try {
    return await new Promise<boolean>((resolve) => {
      socket.once("connect", () => resolve(true));
      socket.once("error", () => resolve(false));
    });
  } finally {
    socket.destroy();
  }
}

/**
 * Starts nats-server (with JetStream in `dir`, as the integration harness does) and waits until it
 * accepts. `maxPayload` (bytes) replaces the server's 1 MB limit on one message; the server has
 * no flag for it, so it goes in a config file.
 */
export async function startNatsServer(
  dir: string,
  options: { maxPayload?: number | undefined; timeoutMs?: number } = {},
): Promise<NatsServer> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const port = await freeTcpPort();
  const store = join(dir, `nats-${port}`);
  mkdirSync(store, { recursive: true });
  const config: string[] = [];
  if (options.maxPayload !== undefined) {
    const file = join(store, "nats.conf");
    writeFileSync(file, `max_payload: ${Math.round(options.maxPayload)}\n`);
    config.push("-c", file);
  }
  const child = track(
    spawn(NATS_SERVER, [...config, "-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store], {
      stdio: ["ignore", "ignore", "pipe"],
    }),
  );
  let stderr = "";
  let spawnError: Error | undefined;
  child.once("error", (error) => {
    spawnError = error;
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    if (stderr.length < 16_384) stderr += chunk;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnError) {
      throw new Error(
        `cannot start ${NATS_SERVER} (${spawnError.message}): Debian: apt-get install nats-server`,
      );
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nats-server exited at start (port ${port}): ${stderr.slice(-2_000)}`);
    }
    if (child.pid !== undefined && (await accepts(port))) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nats-server did not accept connections on port ${port} in ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `nats://127.0.0.1:${port}`, port, child, pid: child.pid ?? -1 };
}
