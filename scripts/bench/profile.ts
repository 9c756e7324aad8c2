// scripts/bench: reads a V8 .cpuprofile (node --cpu-prof) and sums self time by function and by file.
// Self time of a sample is the gap to the next sample (as Chrome DevTools counts it).

import { existsSync, readFileSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  /** Function name, or V8's "(garbage collector)", "(program)", "(idle)". */
  name: string;
  /** Where it is: a path relative to the project, node:internal/…, or "" for V8's own entries. */
  file: string;
  /** 1-based line in `file` (the TypeScript source when dist/ has a source map). */
  line: number;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Busy time: everything except "(idle)". */
  busyMs: number;
  functions: SelfTime[];
  files: Array<{ file: string; ms: number; share: number }>;
}

/** A path shown relative to the project root; node_modules packages by name. */
function shown(path: string, root: string): string {
  const modules = path.lastIndexOf("/node_modules/");
  if (modules >= 0) return `node_modules/${path.slice(modules + "/node_modules/".length)}`;
  if (path.startsWith(`${root}/`)) return path.slice(root.length + 1);
  return path;
}

/** Maps compiled positions back to the TypeScript sources through dist/'s .js.map files. */
class SourcePositions {
  private readonly maps = new Map<string, { map: SourceMap; dir: string; root: string } | null>();

  constructor(private readonly root: string) {}

  /** File (relative to the project) and 1-based line of a 0-based compiled position. */
  locate(url: string, line: number, column: number): { file: string; line: number } {
    if (url === "") return { file: "", line: line + 1 };
    if (!url.startsWith("file://")) return { file: url, line: line + 1 };
    const path = fileURLToPath(url);
    const entry = this.mapOf(path);
    const found = entry?.map.findEntry(line, column);
    if (entry && found && "originalSource" in found) {
      const source = found.originalSource.startsWith("file://")
        ? fileURLToPath(found.originalSource)
        : resolve(entry.dir, entry.root, found.originalSource);
      return { file: shown(source, this.root), line: found.originalLine + 1 };
    }
    return { file: shown(path, this.root), line: line + 1 };
  }

  private mapOf(path: string): { map: SourceMap; dir: string; root: string } | null {
    const cached = this.maps.get(path);
    if (cached !== undefined) return cached;
    let entry: { map: SourceMap; dir: string; root: string } | null = null;
    const mapPath = `${path}.map`;
    if (path.startsWith(`${this.root}/dist/`) && existsSync(mapPath)) {
      try {
        const payload = JSON.parse(readFileSync(mapPath, "utf8")) as SourceMapPayload;
        entry = { map: new SourceMap(payload), dir: dirname(mapPath), root: payload.sourceRoot };
      } catch {
        entry = null;
      }
    }
    this.maps.set(path, entry);
    return entry;
  }
}

export function summariseProfile(path: string, root: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i];
    if (id === undefined) continue;
    // timeDeltas[i] is the gap before sample i; the time spent in sample i runs until the next one.
    const next = i + 1 < samples.length ? (timeDeltas[i + 1] ?? 0) : 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, next));
  }

  const positions = new SourcePositions(root);
  const functions = new Map<string, Omit<SelfTime, "share">>();
  const files = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    totalUs += us;
    const name = frame.functionName || "(anonymous)";
    if (name === "(idle)") idleUs += us;
    const { file, line } = positions.locate(frame.url, frame.lineNumber, frame.columnNumber);
    const key = `${name}\n${file}\n${line}`;
    const entry = functions.get(key) ?? { name, file, line, ms: 0 };
    entry.ms += us / 1000;
    functions.set(key, entry);
    const fileKey = file || name;
    files.set(fileKey, (files.get(fileKey) ?? 0) + us / 1000);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const share = (ms: number): number => (busyMs > 0 ? ms / busyMs : 0);
  return {
    totalMs: totalUs / 1000,
    busyMs,
    functions: [...functions.values()]
      .filter((f) => f.name !== "(idle)")
      .map((f) => ({ ...f, share: share(f.ms) }))
      .sort((a, b) => b.ms - a.ms),
    files: [...files]
      .filter(([file]) => file !== "(idle)")
      .map(([file, ms]) => ({ file, ms, share: share(ms) }))
      .sort((a, b) => b.ms - a.ms),
  };
}
