// scripts/bench: a what-if preload for a traced node under test, never loaded by the node itself — puts
// in the OpenTelemetry SDK's default AsyncLocalStorage context manager before the node registers its own.
// Use: npm run bench:sip -- --tracing 1 --node-flags="--import=./dist/scripts/bench/otel-als-preload.js"

import { context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";

if (!context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())) {
  throw new Error("otel-als-preload: a context manager was already registered");
}
