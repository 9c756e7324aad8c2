// scripts/bench: a what-if preload for the node under test, never loaded by the node itself — every UDP
// socket gets a bigger receive buffer, to measure what the kernel default (net.core.rmem_default) costs.
// Use: npm run bench:sip -- --node-flags="--import=./dist/scripts/bench/udp-rcvbuf-preload.js"

import dgram from "node:dgram";

/** Bytes asked for (the kernel caps them at net.core.rmem_max); BENCH_UDP_RCVBUF_BYTES overrides. */
const bytes = Number(process.env.BENCH_UDP_RCVBUF_BYTES ?? 4 * 1024 * 1024);

const bind = dgram.Socket.prototype.bind;
dgram.Socket.prototype.bind = function (this: dgram.Socket, ...args: unknown[]) {
  this.once("listening", () => this.setRecvBufferSize(bytes));
  return bind.apply(this, args as never);
} as typeof bind;
