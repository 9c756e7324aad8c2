// bootstrap: every setting of a node, its flag, environment variable, default and meaning, in one place.
// The CLI, the README's configuration table and the embedded cluster all read this table.

import type { SourceOption, SourceSpec } from "../actors/sources/registry.js";
import { isLogLevel, type LogLevel } from "./log.js";

export type Role = "primary" | "server" | "pool";

export interface HostPort {
  host: string;
  port: number;
}

export interface SipListen extends HostPort {
  /** Transport advertised in our Contact by default; the node listens on UDP and TCP either way. */
  transport: "udp" | "tcp";
}

export interface NodeConfig {
  id: string;
  role: Role;
  sip: SipListen;
  /** Where others reach this node's SIP (Contact, 302, membership); unset: the bound address. */
  sipAdvertise: HostPort | undefined;
  http: HostPort;
  /** NATS server URLs; empty for a node on its own (or the embedded cluster's loopback). */
  nats: string[];
  cluster: string;
  heartbeatMs: number;
  deadAfterMs: number;
  maxLoad: number;
  minLoad: number;
  dispatch: "redirect" | "proxy";
  loadMetric: "watchers" | "elu";
  reportIntervalMs: number;
  scaleInAfterMs: number;
  scaleCooldownMs: number;
  syncBatch: number;
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
  maxBodyBytes: number;
  udpBufferBytes: number;
  shutdownRetryAfter: number;
  shutdownTimeoutMs: number;
  sipT1: number;
  askTimeoutMs: number;
  maxMailbox: number;
  maxQueuedNotifies: number;
  logLevel: LogLevel;
  /** Which actor mail gets a PRODUCER/CONSUMER span pair when tracing is on. */
  traceMail: "remote" | "all";
  // Presence sources (actors/sources): which run, their options, their supervision.
  sources: SourceSpec[];
  sourceOptions: SourceOption[];
  sourceBackoffMs: number;
  sourceBackoffMaxMs: number;
  webhookToken: string;
  calendars: string[];
  calendarPollMs: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

interface Setting<K extends keyof NodeConfig> {
  key: K;
  flag: string;
  arg: string;
  description: string;
  default: string;
  parse: (raw: string) => NodeConfig[K];
  /** The flag may be given several times; its values (and the environment's) are comma-separated. */
  repeatable?: true;
}

function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`expected a whole number, got "${raw}"`);
    const value = Number(raw);
    if (value < min || value > max) {
      throw new ConfigError(`expected a number from ${min} to ${max}, got ${value}`);
    }
    return value;
  };
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function hostPort(raw: string): HostPort {
  const match = /^([^:/\s]+):(\d+)$/.exec(raw.trim());
  if (!match?.[1] || !match[2]) throw new ConfigError(`expected host:port, got "${raw}"`);
  const port = integer(0, 65535)(match[2]);
  const host = match[1] === "localhost" ? "127.0.0.1" : match[1];
  if (!IPV4.test(host)) throw new ConfigError(`expected an IPv4 address, got "${match[1]}"`);
  return { host, port };
}

export function parseSipListen(raw: string): SipListen {
  const match = /^(udp|tcp|sip):\/\/(.+)$/i.exec(raw.trim());
  if (!match?.[1] || !match[2]) {
    throw new ConfigError(`expected udp://host:port or tcp://host:port, got "${raw}"`);
  }
  const scheme = match[1].toLowerCase();
  return { ...hostPort(match[2]), transport: scheme === "tcp" ? "tcp" : "udp" };
}

function role(raw: string): Role {
  if (raw === "primary" || raw === "server" || raw === "pool") return raw;
  throw new ConfigError(`expected primary, server or pool, got "${raw}"`);
}

function nodeId(raw: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(raw)) {
    throw new ConfigError(`expected letters, digits, "-" or "_" (at most 63), got "${raw}"`);
  }
  return raw;
}

function natsUrls(raw: string): string[] {
  const urls = raw
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  for (const url of urls) {
    if (!/^(nats|tls):\/\/[^\s/]+:\d+$/.test(url)) {
      throw new ConfigError(`expected nats://host:port[,nats://host:port…], got "${url}"`);
    }
  }
  return urls;
}

function clusterName(raw: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(raw)) {
    throw new ConfigError(
      `expected letters, digits, "-" or "_" (a NATS subject token), got "${raw}"`,
    );
  }
  return raw;
}

function dispatch(raw: string): "redirect" | "proxy" {
  if (raw === "redirect" || raw === "proxy") return raw;
  throw new ConfigError(`expected redirect or proxy, got "${raw}"`);
}

function loadMetric(raw: string): "watchers" | "elu" {
  if (raw === "watchers" || raw === "elu") return raw;
  throw new ConfigError(`expected watchers or elu, got "${raw}"`);
}

function decimal(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+(\.\d+)?$/.test(raw.trim())) throw new ConfigError(`expected a number, got "${raw}"`);
    const value = Number(raw);
    if (value < min || value > max) {
      throw new ConfigError(`expected a number from ${min} to ${max}, got ${value}`);
    }
    return value;
  };
}

function logLevel(raw: string): LogLevel {
  if (isLogLevel(raw)) return raw;
  throw new ConfigError(`expected debug, info, warn or error, got "${raw}"`);
}

function traceMail(raw: string): "remote" | "all" {
  if (raw === "remote" || raw === "all") return raw;
  throw new ConfigError(`expected remote or all, got "${raw}"`);
}

// ---- presence sources ----

function list(raw: string): string[] {
  return raw
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

const SOURCE_NAME = "[a-z][a-z0-9-]{0,31}";

function sourceSpecs(raw: string): SourceSpec[] {
  return list(raw).map((item) => {
    const match = new RegExp(`^(${SOURCE_NAME})(?::(.+))?$`).exec(item);
    if (!match?.[1]) {
      throw new ConfigError(
        `expected a built-in source name or name:module-path (name: lower-case letters, digits, "-"), got "${item}"`,
      );
    }
    return { name: match[1], module: match[2] };
  });
}

function sourceOptions(raw: string): SourceOption[] {
  return list(raw).map((item) => {
    const match = new RegExp(`^(${SOURCE_NAME})\\.([A-Za-z0-9_-]+)=(.*)$`).exec(item);
    if (!match?.[1] || !match[2] || match[3] === undefined) {
      throw new ConfigError(`expected <source>.<key>=<value>, got "${item}"`);
    }
    return { source: match[1], key: match[2], value: match[3] };
  });
}

function calendars(raw: string): string[] {
  const entries = list(raw);
  for (const entry of entries) {
    if (!/^[^=\s]+=.+$/.test(entry)) {
      throw new ConfigError(`expected <presentity>=<file or URL>, got "${entry}"`);
    }
  }
  return entries;
}

/** The node settings, in the order `--help` and the README show them. */
export const SETTINGS = [
  {
    key: "id",
    flag: "--id",
    arg: "<id>",
    default: "n1",
    parse: nodeId,
    description: "node id, unique in the cluster",
  },
  {
    key: "role",
    flag: "--role",
    arg: "<role>",
    default: "primary",
    parse: role,
    description: "primary | server | pool",
  },
  {
    key: "sip",
    flag: "--sip",
    arg: "<url>",
    default: "udp://127.0.0.1:5060",
    parse: parseSipListen,
    description: "SIP address; the node listens on UDP and TCP on this port",
  },
  {
    key: "sipAdvertise",
    flag: "--sip-advertise",
    arg: "<host:port>",
    default: "",
    parse: (raw) => (raw.trim() === "" ? undefined : hostPort(raw.trim())),
    description:
      "SIP address given to others (Contact, 302 redirects) when it is not the --sip address, e.g. behind NAT or in a container",
  },
  {
    key: "http",
    flag: "--http",
    arg: "<host:port>",
    default: "127.0.0.1:8080",
    parse: hostPort,
    description: "admin HTTP address (/healthz, /readyz, /metrics, /api/cluster)",
  },
  {
    key: "nats",
    flag: "--nats",
    arg: "<urls>",
    default: "",
    parse: natsUrls,
    description:
      "NATS server URL(s), comma-separated; none: node alone (start: in-process transport)",
  },
  {
    key: "cluster",
    flag: "--cluster",
    arg: "<name>",
    default: "presence",
    parse: clusterName,
    description: "cluster name; clusters sharing one NATS do not see each other",
  },
  {
    key: "heartbeatMs",
    flag: "--heartbeat",
    arg: "<ms>",
    default: "1000",
    parse: integer(50, 60000),
    description: "how often a node tells the cluster it is alive",
  },
  {
    key: "deadAfterMs",
    flag: "--dead-after",
    arg: "<ms>",
    default: "4000",
    parse: integer(100, 600000),
    description: "a node (or a server's load reports) not heard from this long is gone",
  },
  {
    key: "maxLoad",
    flag: "--max-load",
    arg: "<level>",
    default: "100",
    parse: decimal(0.1, 1e9),
    description: "max-load: when every active server is above it, a pool server is promoted",
  },
  {
    key: "minLoad",
    flag: "--min-load",
    arg: "<level>",
    default: "20",
    parse: decimal(0, 1e9),
    description: "min-load: below it for --scale-in-after, one server is drained back to the pool",
  },
  {
    key: "dispatch",
    flag: "--dispatch",
    arg: "<mode>",
    default: "redirect",
    parse: dispatch,
    description: "redirect: 302 to the chosen server (the paper) | proxy: forward the SUBSCRIBE",
  },
  {
    key: "loadMetric",
    flag: "--load-metric",
    arg: "<metric>",
    default: "watchers",
    parse: loadMetric,
    description: "watchers: subscriptions / 10 | elu: event-loop utilisation x 100",
  },
  {
    key: "reportIntervalMs",
    flag: "--report-interval",
    arg: "<ms>",
    default: "1000",
    parse: integer(50, 600000),
    description:
      "how often a server reports its load (also at once on a change of 10% of max-load)",
  },
  {
    key: "scaleInAfterMs",
    flag: "--scale-in-after",
    arg: "<ms>",
    default: "30000",
    parse: integer(0, 86400000),
    description: "how long every server must stay below min-load before one is drained",
  },
  {
    key: "scaleCooldownMs",
    flag: "--scale-cooldown",
    arg: "<ms>",
    default: "10000",
    parse: integer(0, 86400000),
    description: "no drain or promotion this soon after the last one (no oscillation)",
  },
  {
    key: "syncBatch",
    flag: "--sync-batch",
    arg: "<n>",
    default: "200",
    parse: integer(1, 100000),
    description: "presentities per NOTIFY when a promoted server copies the presence data",
  },
  {
    key: "minExpires",
    flag: "--min-expires",
    arg: "<s>",
    default: "60",
    parse: integer(1, 86400),
    description: "shortest SUBSCRIBE/PUBLISH expiry accepted (shorter gets 423)",
  },
  {
    key: "maxExpires",
    flag: "--max-expires",
    arg: "<s>",
    default: "3600",
    parse: integer(1, 604800),
    description: "longest expiry granted (longer is cut to this)",
  },
  {
    key: "defaultExpires",
    flag: "--default-expires",
    arg: "<s>",
    default: "3600",
    parse: integer(1, 604800),
    description: "expiry granted when a request has no Expires",
  },
  {
    key: "maxBodyBytes",
    flag: "--max-body-bytes",
    arg: "<n>",
    default: "131072",
    parse: integer(1024, 16777216),
    description: "largest request body accepted (larger gets 413)",
  },
  {
    key: "udpBufferBytes",
    flag: "--udp-buffer",
    arg: "<bytes>",
    default: "4194304",
    parse: integer(65536, 268435456),
    description:
      "receive buffer of the SIP UDP socket; the kernel caps it at net.core.rmem_max (a warning says so)",
  },
  {
    key: "shutdownRetryAfter",
    flag: "--shutdown-retry-after",
    arg: "<s>",
    default: "30",
    parse: integer(0, 86400),
    description: "retry-after in the final NOTIFY sent on shutdown",
  },
  {
    key: "shutdownTimeoutMs",
    flag: "--shutdown-timeout",
    arg: "<ms>",
    default: "5000",
    parse: integer(0, 600000),
    description: "how long shutdown waits for final NOTIFYs to be answered",
  },
  {
    key: "sipT1",
    flag: "--sip-t1",
    arg: "<ms>",
    default: "500",
    parse: integer(10, 10000),
    description: "SIP timer T1 (RTT estimate); transactions time out after 64*T1",
  },
  {
    key: "askTimeoutMs",
    flag: "--ask-timeout",
    arg: "<ms>",
    default: "2000",
    parse: integer(10, 60000),
    description: "how long the node waits for an actor's answer before a 503",
  },
  {
    key: "maxMailbox",
    flag: "--max-mailbox",
    arg: "<n>",
    default: "10000",
    parse: integer(10, 10000000),
    description: "queued messages per actor before mail is refused",
  },
  {
    key: "maxQueuedNotifies",
    flag: "--max-queued-notifies",
    arg: "<n>",
    default: "1024",
    parse: integer(1, 100000),
    description: "NOTIFYs queued per subscription before intermediate states are merged",
  },
  {
    key: "logLevel",
    flag: "--log-level",
    arg: "<level>",
    default: "info",
    parse: logLevel,
    description: "debug | info | warn | error (JSON lines on stderr)",
  },
  {
    key: "traceMail",
    flag: "--trace-mail",
    arg: "<which>",
    default: "remote",
    parse: traceMail,
    description:
      "actor mail traced with a PRODUCER/CONSUMER span pair: remote (between nodes; local mail continues its sender's span) or all",
  },
  // ---- presence sources ----
  {
    key: "sources",
    flag: "--source",
    arg: "<source>",
    default: "",
    parse: sourceSpecs,
    repeatable: true,
    description:
      "presence source to run: webhook, calendar, or name:path-to-module (repeatable; comma-separated)",
  },
  {
    key: "sourceOptions",
    flag: "--source-option",
    arg: "<name.key=value>",
    default: "",
    parse: sourceOptions,
    repeatable: true,
    description:
      "an option of a source, e.g. office-hours.hours=9-17 (repeatable; comma-separated)",
  },
  {
    key: "sourceBackoffMs",
    flag: "--source-backoff",
    arg: "<ms>",
    default: "1000",
    parse: integer(10, 600000),
    description: "pause before a crashed source restarts; doubles with each crash in a row",
  },
  {
    key: "sourceBackoffMaxMs",
    flag: "--source-backoff-max",
    arg: "<ms>",
    default: "60000",
    parse: integer(10, 3600000),
    description:
      "longest pause before a restart; a source this long without a crash is healthy again",
  },
  {
    key: "webhookToken",
    flag: "--webhook-token",
    arg: "<token>",
    default: "",
    parse: (raw) => raw.trim(),
    description: "bearer token of the webhook source (POST /sources/webhook/<presentity>)",
  },
  {
    key: "calendars",
    flag: "--calendar",
    arg: "<presentity=file-or-url>",
    default: "",
    parse: calendars,
    repeatable: true,
    description:
      "calendar source: an .ics file or http(s) URL per presentity (repeatable; comma-separated)",
  },
  {
    key: "calendarPollMs",
    flag: "--calendar-poll",
    arg: "<ms>",
    default: "60000",
    parse: integer(100, 86400000),
    description: "how often the calendar source re-reads its calendars (files are also watched)",
  },
] as const satisfies readonly Setting<keyof NodeConfig>[];

/** The option name a command-line parser gives a flag: `--report-interval` → `reportInterval`. */
export function flagAttribute(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Parsed command-line options (keyed by flagAttribute) → raw settings keyed like NodeConfig. */
export function settingsFromOptions(
  options: Record<string, unknown>,
): Partial<Record<keyof NodeConfig, string>> {
  const raw: Partial<Record<keyof NodeConfig, string>> = {};
  for (const setting of SETTINGS) {
    const value = options[flagAttribute(setting.flag)];
    if (typeof value === "string") raw[setting.key] = value;
  }
  return raw;
}

/** The environment variable of a flag: `--max-body-bytes` → `PRESENCE_MAX_BODY_BYTES`. */
export function envName(flag: string): string {
  return `PRESENCE_${flag.replace(/^--/, "").replace(/-/g, "_").toUpperCase()}`;
}

/** A full config from raw strings (flags or environment), defaults for the rest; throws ConfigError naming the flag. */
export function buildConfig(raw: Partial<Record<keyof NodeConfig, string>>): NodeConfig {
  const config: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const value = raw[setting.key] ?? setting.default;
    try {
      config[setting.key] = setting.parse(value);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new ConfigError(`${setting.flag} (${envName(setting.flag)}): ${why}`);
    }
  }
  const result = config as unknown as NodeConfig;
  if (result.minExpires > result.maxExpires) {
    throw new ConfigError("--min-expires must not be larger than --max-expires");
  }
  if (result.minLoad >= result.maxLoad) {
    throw new ConfigError("--min-load must be smaller than --max-load");
  }
  if (result.sourceBackoffMs > result.sourceBackoffMaxMs) {
    throw new ConfigError("--source-backoff must not be larger than --source-backoff-max");
  }
  return result;
}
