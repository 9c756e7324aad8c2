// scripts/bench/paper: progress of `bench paper` — a bar (cli-progress) on a terminal, one line per point
// otherwise (CI logs), each point's headline figures as it completes.

import { Presets, SingleBar } from "cli-progress";
import type { PointResult } from "./report.js";
import { average } from "./report.js";

export class Progress {
  private readonly bar: SingleBar | undefined;
  private count = 0;
  private readonly started = Date.now();

  constructor(private readonly total: number) {
    if (process.stderr.isTTY) {
      this.bar = new SingleBar(
        { format: "{bar} {value}/{total} points | {step} | ETA {eta_formatted}", hideCursor: true },
        Presets.shades_classic,
      );
      this.bar.start(total, 0, { step: "starting" });
    }
  }

  step(label: string): void {
    if (this.bar) this.bar.update(this.count, { step: label });
    else process.stderr.write(`[${this.count + 1}/${this.total}] ${label} …\n`);
  }

  done(point: PointResult | undefined): void {
    this.count += 1;
    const avg = point ? average(point.times) : undefined;
    const line = point
      ? `avg ${avg === undefined ? "-" : avg.toFixed(1)} ms over ${point.times.length} samples, ` +
        `${point.serversActive} server(s) active`
      : "";
    if (this.bar) this.bar.update(this.count, { step: line });
    else {
      const elapsed = Math.round((Date.now() - this.started) / 1000);
      process.stderr.write(`[${this.count}/${this.total}] ${line} (${elapsed} s)\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}
