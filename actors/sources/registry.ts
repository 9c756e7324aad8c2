// actors/sources: the registry — turns `--source` entries into loaded sources with their config.
// Built-ins by name, user modules by path; every node loads them all, whichever runs them.

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type AnySourceDefinition,
  isSourceDefinition,
  isSourceName,
  SourceConfigError,
  type SourceOptions,
} from "./api.js";
import { calendar } from "./calendar.js";
import type { LoadedSource } from "./manager.js";
import { webhook } from "./webhook.js";

/** One `--source` entry: a built-in's name, or `name:module-path`. */
export interface SourceSpec {
  name: string;
  module: string | undefined;
}

/** One `--source-option <source>.<key>=<value>`. */
export interface SourceOption {
  source: string;
  key: string;
  value: string;
}

/** The node settings the sources read (a part of NodeConfig). */
export interface SourceSettings {
  sources: readonly SourceSpec[];
  sourceOptions: readonly SourceOption[];
  webhookToken: string;
  calendars: readonly string[];
  calendarPollMs: number;
}

export const BUILT_IN_SOURCES: Readonly<Record<string, AnySourceDefinition>> = {
  webhook,
  calendar,
};

/** The options a source's `config` gets: a built-in's own flags, then its `--source-option`s. */
function optionsOf(spec: SourceSpec, settings: SourceSettings): SourceOptions {
  const { name } = spec;
  const options: Record<string, string> = {};
  const builtIn = spec.module === undefined;
  if (builtIn && name === "webhook" && settings.webhookToken !== "") {
    options.token = settings.webhookToken;
  }
  if (builtIn && name === "calendar") {
    if (settings.calendars.length > 0) options.calendars = settings.calendars.join(",");
    options.poll = String(settings.calendarPollMs);
  }
  for (const option of settings.sourceOptions) {
    if (option.source === name) options[option.key] = option.value;
  }
  return options;
}

async function definitionOf(spec: SourceSpec, cwd: string): Promise<AnySourceDefinition> {
  if (spec.module === undefined) {
    const builtIn = BUILT_IN_SOURCES[spec.name];
    if (builtIn) return builtIn;
    throw new SourceConfigError(
      `--source ${spec.name}: no built-in source of that name (${Object.keys(BUILT_IN_SOURCES).join(", ")}); a module of your own is --source ${spec.name}:<path>`,
    );
  }
  const path = resolve(cwd, spec.module);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new SourceConfigError(
      `--source ${spec.name}: cannot load ${path}: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
  const definition = [loaded.default, loaded.source].find(isSourceDefinition);
  if (!definition) {
    throw new SourceConfigError(
      `--source ${spec.name}: ${path} exports no source (export default defineSource({...}))`,
    );
  }
  return definition;
}

/** Loads and configures every source; throws SourceConfigError naming the flag at fault. */
export async function loadSources(
  settings: SourceSettings,
  cwd: string = process.cwd(),
): Promise<LoadedSource[]> {
  const names = new Set(settings.sources.map((spec) => spec.name));
  for (const option of settings.sourceOptions) {
    if (!names.has(option.source)) {
      throw new SourceConfigError(
        `--source-option ${option.source}.${option.key}: no --source ${option.source}`,
      );
    }
  }
  const loaded: LoadedSource[] = [];
  for (const spec of settings.sources) {
    if (!isSourceName(spec.name)) {
      throw new SourceConfigError(`--source ${spec.name}: lower-case letters, digits and "-"`);
    }
    if (loaded.some((source) => source.name === spec.name)) {
      throw new SourceConfigError(`--source ${spec.name}: registered twice`);
    }
    const definition = await definitionOf(spec, cwd);
    const options = optionsOf(spec, settings);
    let config: unknown = options;
    try {
      if (definition.config) config = definition.config(options);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new SourceConfigError(`--source ${spec.name}: ${why}`, { cause: error });
    }
    loaded.push({
      name: spec.name,
      module: spec.module === undefined ? "built-in" : resolve(cwd, spec.module),
      definition,
      config,
    });
  }
  return loaded;
}
