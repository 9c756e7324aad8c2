// bootstrap: the package's front door — the names a user of presence-cluster may import.
// Everything not exported here is internal and may change.

export {
  defineSource,
  type PresenceUpdate,
  presentityKey,
  SourceConfigError,
  type SourceContext,
  type SourceDefinition,
  SourceError,
  type SourceHttpDecision,
  type SourceHttpRequest,
  type SourceOptions,
} from "../actors/sources/api.js";
export type { SourceView } from "../actors/sources/manager.js";
export { BUILT_IN_SOURCES } from "../actors/sources/registry.js";
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
