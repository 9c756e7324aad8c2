// bootstrap: the package's front door — the names a user of presence-cluster may import.
// Everything not exported here is internal and may change.

export { LoopbackHub } from "../transport/loopback.js";
export type { ActorTransport } from "../transport/transport.js";
export {
  buildConfig,
  ConfigError,
  envName,
  type NodeConfig,
  type Role,
  SETTINGS,
} from "./config.js";
export { createLogger, type Logger, type LogLevel } from "./log.js";
export { type ClusterView, type RunningNode, startNode } from "./node.js";
