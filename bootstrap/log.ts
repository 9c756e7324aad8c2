// bootstrap: the structured logger every layer takes (JSON lines on stderr), with the trace id on
// every line written inside a span. Layers receive a Logger; nothing else writes to the console.

import { activeSpanIds } from "../transport/tracing.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(value: string): value is LogLevel {
  return value in order;
}

/** A JSON-lines logger; `write` defaults to stderr so stdout stays free for the CLI's own output. */
export function createLogger(
  level: LogLevel,
  base: LogFields = {},
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const threshold = order[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (order[lvl] < threshold) return;
    const record: LogFields = { time: new Date().toISOString(), level: lvl, msg, ...base };
    const span = activeSpanIds();
    if (span) {
      record.trace_id = span.traceId;
      record.span_id = span.spanId;
    }
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        record[key] = value instanceof Error ? { name: value.name, message: value.message } : value;
      }
    }
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
