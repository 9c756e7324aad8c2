// scripts/bench: the fan-out benchmark's watcher side — a few UDP sockets that are the Contacts of the
// SIPp-made subscriptions; it answers each NOTIFY 200 and times PUBLISH→NOTIFY from the "ts=" note.

import dgram from "node:dgram";
import type { AddressInfo } from "node:net";

/** The note the publisher scenario puts in its first tuple: "ts=<seconds> <microseconds>" (doubles). */
const TS_MARK = Buffer.from("ts=");
const HEADER_END = Buffer.from("\r\n\r\n");
/** Headers a 200 to a NOTIFY copies from it (RFC 3261 §8.2.6.2), long and compact forms. */
const COPIED = /^(via|v|from|f|to|t|call-id|i|cseq):/i;

export interface SinkCounts {
  /** NOTIFYs received, retransmissions not counted. */
  notifies: number;
  /** NOTIFYs without a "ts=" note: the immediate NOTIFY of each new subscription. */
  initial: number;
  /** NOTIFYs whose Subscription-State is terminated. */
  terminated: number;
  /** NOTIFYs received again (same Call-ID and CSeq): our 200 was lost or late. */
  retransmitted: number;
  /** Datagrams that were not a NOTIFY we could answer. */
  malformed: number;
}

/**
 * Each socket's receive buffer is capped by net.core.rmem_max (4 MiB here), about 160 NOTIFYs of
 * 25 KB; several sockets ride out the moments this process waits for a CPU the node is using.
 */
const SOCKETS = 4;

export class NotifySink {
  private readonly sockets: dgram.Socket[];
  private readonly seen = new Set<string>();
  private readonly latencies: number[] = [];
  private firstTimed = Number.POSITIVE_INFINITY;
  private lastTimed = 0;
  readonly counts: SinkCounts = {
    notifies: 0,
    initial: 0,
    terminated: 0,
    retransmitted: 0,
    malformed: 0,
  };

  private constructor(sockets: dgram.Socket[]) {
    this.sockets = sockets;
    for (const socket of sockets) {
      socket.on("message", (message, remote) => this.onMessage(socket, message, remote));
    }
  }

  static async open(): Promise<NotifySink> {
    const sockets = await Promise.all(
      Array.from({ length: SOCKETS }, async () => {
        const socket = dgram.createSocket({
          type: "udp4",
          recvBufferSize: 4 * 1024 * 1024,
          sendBufferSize: 1024 * 1024,
        });
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.bind(0, "127.0.0.1", () => {
            socket.removeListener("error", reject);
            resolve();
          });
        });
        return socket;
      }),
    );
    return new NotifySink(sockets);
  }

  /** The ports to use as Contacts, watchers spread over them in turn. */
  get ports(): number[] {
    return this.sockets.map((s) => (s.address() as AddressInfo).port);
  }

  /** PUBLISH→NOTIFY latencies in ms of every timed NOTIFY, and the span over which they arrived. */
  timed(): { latencies: number[]; spanSeconds: number } {
    const span = this.latencies.length > 1 ? (this.lastTimed - this.firstTimed) / 1000 : 0;
    return { latencies: this.latencies, spanSeconds: span };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
  }

  private onMessage(socket: dgram.Socket, message: Buffer, remote: dgram.RemoteInfo): void {
    const now = performance.timeOrigin + performance.now();
    const end = message.indexOf(HEADER_END);
    if (end < 0 || message.toString("latin1", 0, 7) !== "NOTIFY ") {
      this.counts.malformed += 1;
      return;
    }
    const lines = message.toString("latin1", 0, end).split("\r\n");
    const copied: string[] = [];
    let callId = "";
    let cseq = "";
    let terminated = false;
    for (const line of lines.slice(1)) {
      if (COPIED.test(line)) {
        copied.push(line);
        const colon = line.indexOf(":");
        const name = line.slice(0, colon).trim().toLowerCase();
        if (name === "call-id" || name === "i") callId = line.slice(colon + 1).trim();
        else if (name === "cseq") cseq = line.slice(colon + 1).trim();
      } else if (/^subscription-state:\s*terminated/i.test(line)) {
        terminated = true;
      }
    }
    if (!callId || !cseq) {
      this.counts.malformed += 1;
      return;
    }
    const reply = Buffer.from(
      `SIP/2.0 200 OK\r\n${copied.join("\r\n")}\r\nContent-Length: 0\r\n\r\n`,
      "latin1",
    );
    socket.send(reply, remote.port, remote.address);

    const key = `${callId}\n${cseq}`;
    if (this.seen.has(key)) {
      this.counts.retransmitted += 1;
      return;
    }
    this.seen.add(key);
    this.counts.notifies += 1;
    if (terminated) this.counts.terminated += 1;
    const mark = message.indexOf(TS_MARK, end);
    if (mark < 0) {
      if (!terminated) this.counts.initial += 1;
      return;
    }
    const stamp = /^ts=([\d.]+) ([\d.]+)/.exec(message.toString("latin1", mark, mark + 64));
    if (!stamp || terminated) return;
    const sent = Number(stamp[1]) * 1000 + Number(stamp[2]) / 1000;
    this.latencies.push(now - sent);
    this.firstTimed = Math.min(this.firstTimed, now);
    this.lastTimed = Math.max(this.lastTimed, now);
  }
}
