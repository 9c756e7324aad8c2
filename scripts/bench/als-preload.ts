// scripts/bench: a --node-flags="--import=…" preload for what-if runs of bench:sip — turns on one
// AsyncLocalStorage store, as the OpenTelemetry SDK's default context manager would, in an untraced node.

import { AsyncLocalStorage } from "node:async_hooks";

new AsyncLocalStorage<{ what: string }>().enterWith({ what: "als-preload" });
