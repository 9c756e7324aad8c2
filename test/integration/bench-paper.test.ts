// test/integration: `presence-cluster bench paper --quick` through the CLI — its own nats-server and
// nodes, real SIP from its load generator — and what it writes: every CSV row, promotions, measured times.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { cliPath, testDir } from "./harness.js";

type Row = Record<string, string>;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bench(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, [cliPath, "bench", "paper", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
}

function rows(dir: string, figure: number): Row[] {
  return parse(readFileSync(join(dir, `fig${figure}.csv`)), { columns: true }) as Row[];
}

const num = (row: Row, column: string): number => Number(row[column]);

describe("bench paper", () => {
  it("bench paper - a flag with a bad value is named and nothing runs", async () => {
    const run = await bench(["--users", "many", "--out", testDir("bench-paper", "bad")]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--users takes numbers/);
    const figures = await bench(["--figures", "5", "--out", testDir("bench-paper", "bad5")]);
    assert.equal(figures.code, 1);
    assert.match(figures.stderr, /--figures: no figure 5/);
  });

  // A guard against a hang: two runs take ~2 min on an idle machine, 4–5 min on a slow shared one
  // beside the other test files.
  it("bench paper - --quick writes every row, promotes where load exceeds max-load, and measures", {
    timeout: 900_000,
  }, async () => {
    const dir = testDir("bench-paper", "quick");
    const run = await bench(["--quick", "--out", dir]);
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    for (const figure of [6, 7, 8, 9]) {
      const found = rows(dir, figure);
      // Users 10 and 20, each on the single server and on the cluster.
      assert.deepEqual(
        found.map((r) => `${r.users} ${r.mode}`),
        ["10 single", "20 single", "10 cluster", "20 cluster"],
        `fig${figure}.csv`,
      );
      const svg = readFileSync(join(dir, `fig${figure}.svg`), "utf8");
      assert.match(svg, /^<svg[\s\S]*<\/svg>$/);
      assert.match(svg, new RegExp(`Fig\\. ${figure}`));
      for (const row of found) {
        const label = `fig${figure} ${row.mode} ${row.users}`;
        // Times are measured: positive, ordered, and plausible on loopback (under a minute).
        assert.ok(num(row, "samples") > 0, `${label}: samples`);
        assert.ok(
          num(row, "avg_ms") > 0 && num(row, "avg_ms") < 60_000,
          `${label}: avg ${row.avg_ms}`,
        );
        assert.ok(num(row, "p50_ms") <= num(row, "p95_ms"), label);
        assert.ok(num(row, "p95_ms") <= num(row, "p99_ms"), label);
        const load = (num(row, "users") * num(row, "resources_per_user")) / 10;
        if (row.mode === "single") {
          assert.equal(num(row, "servers_active"), 1, label);
          assert.equal(num(row, "promotions"), 0, label);
        } else if (load > 10 * 1.5) {
          // --quick's max-load is 10: well above it, a pool server was promoted and took users.
          assert.ok(num(row, "promotions") >= 1, `${label}: load ${load}, no promotion`);
          assert.ok(num(row, "servers_active") >= 2, `${label}: ${row.servers_active} active`);
          // Users spread once the servers' reports say what a user weighs: not in the first point,
          // whose users all arrive within the primary's first report interval.
          if (row.users === "20") {
            assert.ok(row.users_per_server?.includes(" "), `${label}: users all on one server`);
          }
        }
      }
    }
    const summary = readFileSync(join(dir, "summary.md"), "utf8");
    assert.match(
      summary,
      /\| users \| avg single ms \| avg cluster ms \| reduction % \| paper % \|/,
    );
    assert.match(run.stdout, /wrote .*fig9\.svg/);

    // A second, smaller run: measured figures differ from run to run.
    const again = testDir("bench-paper", "again");
    const second = await bench(["--quick", "--figures", "6", "--users", "10", "--out", again]);
    assert.equal(second.code, 0, second.stderr.slice(-3000));
    const first = rows(dir, 6).filter((r) => r.users === "10");
    const other = rows(again, 6);
    assert.equal(other.length, 2);
    assert.notDeepEqual(
      first.map((r) => r.avg_ms),
      other.map((r) => r.avg_ms),
    );
    assert.ok(existsSync(join(again, "fig6.svg")));
  });
});
