// scripts: lints docker-compose.yml against the vendored Compose-spec JSON Schema (there is no Docker
// engine in CI). Usage: node dist/scripts/lint-compose.js [file]; exits 1 with the errors.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2019 } from "ajv/dist/2019.js";
import { parse } from "yaml";

/** The repository root: this file runs as dist/scripts/lint-compose.js. */
const root = fileURLToPath(new URL("../../", import.meta.url));
const schemaFile = join(root, "test/fixtures/compose/compose-spec.json");

/** Formats the schema names; checked loosely here, as Compose itself checks them when it runs. */
const FORMATS: Record<string, RegExp> = {
  duration: /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp))?$/,
  ports: /^[\d.:[\]a-fA-F-]+(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[\d.:a-fA-F]+\/\d+$/,
};

/**
 * The schema names its draft as http://…# and carries draft-04 style "id" annotations; Ajv2019
 * refuses both. Dropped here: the draft is the same and the annotations change no validation.
 */
function forAjv(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forAjv);
  if (!node || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if ((key === "id" || key === "$schema") && typeof value === "string") continue;
    out[key] = forAjv(value);
  }
  return out;
}

/** The problems of a compose file (parse errors and schema violations); empty when it is valid. */
export function lintCompose(file: string): string[] {
  let document: unknown;
  try {
    document = parse(readFileSync(file, "utf8"), { merge: true });
  } catch (error) {
    return [`${file}: not YAML: ${(error as Error).message}`];
  }
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  for (const [name, pattern] of Object.entries(FORMATS)) ajv.addFormat(name, pattern);
  const validate = ajv.compile(forAjv(JSON.parse(readFileSync(schemaFile, "utf8"))) as object);
  if (validate(document)) return [];
  return (validate.errors ?? []).map(
    (error) => `${file}: ${error.instancePath || "/"} ${error.message ?? "is invalid"}`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? join(root, "docker-compose.yml");
  const problems = lintCompose(file);
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  if (problems.length > 0) process.exit(1);
  process.stdout.write(`${file}: valid against the Compose specification\n`);
}
