#!/usr/bin/env node
// bootstrap: the `presence-cluster` command line — `node` runs one node, `start` the embedded default.
// Every flag also reads an environment variable; --help lists both with the default.

import { Command, InvalidArgumentError, Option } from "commander";
import { LoopbackHub } from "../transport/loopback.js";
import { NatsTransport } from "../transport/nats.js";
import type { ActorTransport } from "../transport/transport.js";
import { paperFlags, paperOptions } from "./bench-paper.js";
import {
  buildConfig,
  ConfigError,
  envName,
  type NodeConfig,
  type Role,
  SETTINGS,
  settingsFromOptions,
} from "./config.js";
import { createLogger } from "./log.js";
import { type RunningNode, startNode } from "./node.js";
import { startTracing, type Tracing } from "./tracing.js";

type RawOptions = Partial<Record<keyof NodeConfig, string>>;
type ParsedOptions = Record<string, unknown>;

function withSettings(command: Command, except: ReadonlyArray<keyof NodeConfig> = []): Command {
  for (const setting of SETTINGS) {
    if (except.includes(setting.key)) continue;
    const option = new Option(`${setting.flag} ${setting.arg}`, setting.description)
      .env(envName(setting.flag))
      .default(setting.default)
      .argParser((raw: string, previous: string) => {
        try {
          setting.parse(raw);
        } catch (error) {
          throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
        }
        // A repeated flag adds to the list (its default is empty).
        return "repeatable" in setting && previous !== "" ? `${previous},${raw}` : raw;
      });
    command.addOption(option);
  }
  return command;
}

function announce(node: RunningNode): void {
  process.stdout.write(
    [
      `presence-cluster node ${node.id} (${node.role}) ready`,
      `  SIP    udp+tcp ${node.sip.host}:${node.sip.port}`,
      `  admin  http://${node.http.host}:${node.http.port}/api/cluster`,
      "",
    ].join("\n"),
  );
}

/** Runs nodes until SIGINT/SIGTERM, then stops them cleanly; a second signal exits at once. */
function runUntilSignalled(nodes: RunningNode[], tracing: Tracing): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`${signal} again: exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    Promise.allSettled(nodes.map((n) => n.stop())).then(async (results) => {
      await tracing.shutdown();
      const failed = results.some((r) => r.status === "rejected");
      process.exit(failed ? 1 : 0);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

async function transportFor(config: NodeConfig, hub: LoopbackHub): Promise<ActorTransport> {
  if (config.nats.length === 0) return hub.connect(config.id);
  return NatsTransport.connect({
    servers: config.nats,
    cluster: config.cluster,
    nodeId: config.id,
    heartbeatMs: config.heartbeatMs,
    deadAfterMs: config.deadAfterMs,
    deliveryTimeoutMs: config.askTimeoutMs,
    log: createLogger(config.logLevel, { node: config.id }),
  });
}

async function runNodes(configs: NodeConfig[]): Promise<void> {
  const hub = new LoopbackHub();
  const nodes: RunningNode[] = [];
  const [first] = configs;
  const tracing = first
    ? startTracing(
        configs.length === 1 ? first.id : "embedded",
        createLogger(first.logLevel, configs.length === 1 ? { node: first.id } : {}),
      )
    : undefined;
  try {
    for (const config of configs) {
      const log = createLogger(config.logLevel);
      nodes.push(await startNode(config, { transport: await transportFor(config, hub), log }));
    }
  } catch (error) {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await tracing?.shutdown();
    throw error;
  }
  for (const node of nodes) announce(node);
  runUntilSignalled(nodes, tracing ?? { shutdown: async () => {} });
}

/** The embedded default: a primary, two servers and a pool node, ports counted up from the base flags. */
const EMBEDDED: ReadonlyArray<{ id: string; role: Role }> = [
  { id: "primary", role: "primary" },
  { id: "s1", role: "server" },
  { id: "s2", role: "server" },
  { id: "pool1", role: "pool" },
];

function embeddedConfigs(raw: RawOptions): NodeConfig[] {
  const base = buildConfig(raw);
  return EMBEDDED.map(({ id, role }, i) => ({
    ...base,
    id,
    role,
    sip: { ...base.sip, port: base.sip.port === 0 ? 0 : base.sip.port + 2 * i },
    http: { ...base.http, port: base.http.port === 0 ? 0 : base.http.port + i },
  }));
}

const program = new Command()
  .name("presence-cluster")
  .description("Clustered SIP presence server (SUBSCRIBE/NOTIFY/PUBLISH, PIDF) on actors")
  .showHelpAfterError("(run with --help to see every flag and its environment variable)");

withSettings(
  program
    .command("node")
    .description("run one node (one SIP endpoint, one actor system, one admin port)"),
).action((options: ParsedOptions) => runNodes([buildConfig(settingsFromOptions(options))]));

withSettings(
  program
    .command("start")
    .description(
      "run the embedded default: a primary, two servers and a pool node in this process " +
        "(SIP ports --sip +0/+2/+4/+6, admin ports --http +0/+1/+2/+3); " +
        "in-process transport, or NATS with --nats",
    ),
  ["id", "role"],
).action((options: ParsedOptions) => runNodes(embeddedConfigs(settingsFromOptions(options))));

const bench = program.command("bench").description("benchmarks that start their own nodes");
paperFlags(
  bench
    .command("paper")
    .description(
      "the paper's experiment (figs. 6-9): a single server against the cluster (primary + pool), " +
        "users growing; writes figN.csv, figN.svg and summary.md",
    ),
).action(async (raw: Record<string, unknown>, command: Command) => {
  const options = paperOptions(raw, (name) => command.getOptionValueSource(name) === "cli");
  // Loaded only here: the charting library is large and nodes never need it (nor ship it: the
  // container image holds the node, not the benchmarks).
  const { runPaper } = await import("../scripts/bench/paper/run.js").catch((error: unknown) => {
    throw new Error(
      `bench paper needs a full checkout built with npm run build (${String(error)})`,
    );
  });
  process.exitCode = await runPaper(options);
});

program.parseAsync(process.argv).catch((error: unknown) => {
  const message =
    error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`presence-cluster: ${message}\n`);
  process.exit(1);
});
