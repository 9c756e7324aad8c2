// scripts/bench: facts about the machine and the code a benchmark ran on, for its report header.
// Shared by bench:sip and bench:dispatch.

import { execFileSync } from "node:child_process";

/** The git commit of `root`, and how many files differ from it (results of an uncommitted tree). */
export function codeState(root: string): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync("git", ["-C", root, ...args], { encoding: "utf8" }).trim();
    const head = git("rev-parse", "--short", "HEAD");
    const changed = git("status", "--porcelain")
      .split("\n")
      .filter((l) => l.length > 0).length;
    return `git ${head}${changed > 0 ? ` + ${changed} changed or untracked file(s)` : ""}`;
  } catch {
    return "not a git checkout";
  }
}
