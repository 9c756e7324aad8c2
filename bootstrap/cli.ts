#!/usr/bin/env node
// bootstrap: the `presence-cluster` command line — `node` runs one node, `start` the embedded default.
// Every flag also reads an environment variable; --help lists both with the default.

import { Command, InvalidArgumentError, Option } from "commander";
import { LoopbackHub } from "../transport/loopback.js";
import { buildConfig, ConfigError, envName, type NodeConfig, SETTINGS } from "./config.js";
import { createLogger } from "./log.js";
import { type RunningNode, startNode } from "./node.js";

type RawOptions = Partial<Record<keyof NodeConfig, string>>;

function withSettings(command: Command): Command {
  for (const setting of SETTINGS) {
    const option = new Option(`${setting.flag} ${setting.arg}`, setting.description)
      .env(envName(setting.flag))
      .default(setting.default)
      .argParser((raw: string) => {
        try {
          setting.parse(raw);
        } catch (error) {
          throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
        }
        return raw;
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
function runUntilSignalled(nodes: RunningNode[]): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`${signal} again: exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    Promise.allSettled(nodes.map((n) => n.stop())).then((results) => {
      const failed = results.some((r) => r.status === "rejected");
      process.exit(failed ? 1 : 0);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

async function runNodes(raw: RawOptions[]): Promise<void> {
  const configs = raw.map(buildConfig);
  const hub = new LoopbackHub();
  const nodes: RunningNode[] = [];
  for (const config of configs) {
    const log = createLogger(config.logLevel);
    nodes.push(await startNode(config, { transport: hub.connect(config.id), log }));
  }
  for (const node of nodes) announce(node);
  runUntilSignalled(nodes);
}

const program = new Command()
  .name("presence-cluster")
  .description("Clustered SIP presence server (SUBSCRIBE/NOTIFY/PUBLISH, PIDF) on actors")
  .showHelpAfterError("(run with --help to see every flag and its environment variable)");

withSettings(
  program
    .command("node")
    .description("run one node (one SIP endpoint, one actor system, one admin port)"),
).action((options: RawOptions) => runNodes([options]));

withSettings(
  program
    .command("start")
    .description("run the embedded default: the whole cluster in this process, SIP on 127.0.0.1"),
).action((options: RawOptions) => runNodes([options]));

program.parseAsync(process.argv).catch((error: unknown) => {
  const message =
    error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`presence-cluster: ${message}\n`);
  process.exit(1);
});
