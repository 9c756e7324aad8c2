// test/integration: a strict reader of the Prometheus text exposition format (version 0.0.4), used by the
// tests of /metrics — every line is HELP, TYPE or a sample of a declared family, else it throws.

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly string[] = ["counter", "gauge", "histogram", "summary", "untyped"];

/** A float as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case, prom-client writes "Nan"). */
function parseValue(text: string, line: number): number {
  const special = text.toLowerCase();
  if (special === "+inf" || special === "inf") return Number.POSITIVE_INFINITY;
  if (special === "-inf") return Number.NEGATIVE_INFINITY;
  if (special === "nan") return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new Error(`line ${line}: not a sample value: ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Reads `{a="x",b="y"}` starting at `start` (the brace); returns the labels and the index after `}`. */
function parseLabels(
  text: string,
  start: number,
  line: number,
): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (text[i] !== "}") {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`line ${line}: label without "="`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name ${name}`);
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let value = "";
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === "\\") {
        const next = text[j + 1];
        if (next === "n") value += "\n";
        else if (next === "\\" || next === '"') value += next;
        else throw new Error(`line ${line}: bad escape \\${next ?? ""}`);
        j += 2;
        continue;
      }
      value += c;
      j += 1;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i += 1;
    else if (text[i] !== "}") throw new Error(`line ${line}: expected "," or "}" after a label`);
  }
  return { labels, end: i + 1 };
}

/** The family a sample name belongs to (histogram and summary samples carry suffixes). */
function familyOf(
  name: string,
  families: ReadonlyMap<string, MetricFamily>,
): MetricFamily | undefined {
  const exact = families.get(name);
  if (exact) return exact;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue;
    const family = families.get(name.slice(0, -suffix.length));
    if (family && (family.type === "histogram" || family.type === "summary")) return family;
  }
  return undefined;
}

/** Parses exposition text; throws on the first line that breaks the format. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (!text.endsWith("\n")) throw new Error("the exposition does not end with a newline");
  const families = new Map<string, MetricFamily>();
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === "") return;
    if (raw.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!match) return;
      const [, keyword, name = "", rest = ""] = match;
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      const family = families.get(name) ?? { name, type: "untyped", help: "", samples: [] };
      if (keyword === "TYPE") {
        if (!TYPES.includes(rest)) throw new Error(`line ${line}: unknown type ${rest}`);
        if (family.samples.length > 0)
          throw new Error(`line ${line}: TYPE after samples of ${name}`);
        family.type = rest as MetricType;
      } else {
        family.help = rest;
      }
      families.set(name, family);
      return;
    }
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`line ${line}: not a sample: ${raw}`);
    const name = raw.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
    let labels: Record<string, string> = {};
    let rest = raw.slice(nameEnd);
    if (rest.startsWith("{")) {
      const parsed = parseLabels(raw, nameEnd, line);
      labels = parsed.labels;
      rest = raw.slice(parsed.end);
    }
    const fields = rest.trim().split(/\s+/);
    if (!rest.startsWith(" ") || fields.length < 1 || fields.length > 2) {
      throw new Error(`line ${line}: expected " <value> [timestamp]": ${raw}`);
    }
    const value = parseValue(fields[0] ?? "", line);
    const family = familyOf(name, families);
    if (!family) throw new Error(`line ${line}: sample ${name} of no declared family`);
    if (family.type === "counter" && !name.endsWith("_total")) {
      throw new Error(`line ${line}: counter ${name} lacks the _total suffix`);
    }
    if (family.type === "counter" && value < 0)
      throw new Error(`line ${line}: negative counter ${name}`);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) {
    if (family.type === "histogram") checkHistogram(family);
  }
  return families;
}

/** Buckets cumulative and ending at +Inf equal to _count, per label set. */
function checkHistogram(family: MetricFamily): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(rest);
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (sample.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: bucket without le`);
      entry.buckets.push([parseValue(le, 0), sample.value]);
    } else if (sample.name === `${family.name}_count`) {
      entry.count = sample.value;
    }
  }
  for (const { buckets, count } of series.values()) {
    const last = buckets.at(-1);
    if (!last || last[0] !== Number.POSITIVE_INFINITY)
      throw new Error(`${family.name}: no +Inf bucket`);
    if (last[1] !== count) throw new Error(`${family.name}: +Inf bucket is not _count`);
    for (let i = 1; i < buckets.length; i++) {
      const [le, value] = buckets[i] ?? [0, 0];
      const [prevLe, prevValue] = buckets[i - 1] ?? [0, 0];
      if (le <= prevLe || value < prevValue)
        throw new Error(`${family.name}: buckets not cumulative`);
    }
  }
}

/** The value of one sample (0 when the family has none matching the labels). */
export function sampleValue(
  families: ReadonlyMap<string, MetricFamily>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
  sampleName: string = name,
): number {
  const family = families.get(name);
  if (!family) throw new Error(`no metric family ${name}`);
  return family.samples
    .filter(
      (s) =>
        s.name === sampleName &&
        Object.entries(labels).every(([key, value]) => s.labels[key] === value),
    )
    .reduce((sum, s) => sum + s.value, 0);
}
