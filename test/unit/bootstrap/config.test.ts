// test/unit: the settings table — defaults, parsing, environment names and errors that name the flag.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Option } from "commander";
import {
  buildConfig,
  ConfigError,
  envName,
  flagAttribute,
  SETTINGS,
  settingsFromOptions,
} from "../../../bootstrap/config.js";

describe("config - settings table", () => {
  it("config - defaults give a primary on 127.0.0.1:5060 with admin on 8080", () => {
    const config = buildConfig({});
    assert.equal(config.role, "primary");
    assert.deepEqual(config.sip, { host: "127.0.0.1", port: 5060, transport: "udp" });
    assert.deepEqual(config.http, { host: "127.0.0.1", port: 8080 });
    assert.equal(config.minExpires, 60);
    assert.equal(config.maxBodyBytes, 131072);
  });

  it("config - every flag has an environment variable named after it", () => {
    assert.equal(envName("--max-body-bytes"), "PRESENCE_MAX_BODY_BYTES");
    const names = SETTINGS.map((s) => envName(s.flag));
    assert.equal(new Set(names).size, names.length);
  });

  it("config - parses SIP URLs of both transports", () => {
    assert.deepEqual(buildConfig({ sip: "tcp://127.0.0.2:5070" }).sip, {
      host: "127.0.0.2",
      port: 5070,
      transport: "tcp",
    });
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ["role", { role: "boss" }, /--role \(PRESENCE_ROLE\): expected primary, server or pool/],
    ["sip scheme", { sip: "http://127.0.0.1:1" }, /--sip \(PRESENCE_SIP\)/],
    ["sip port", { sip: "udp://127.0.0.1:70000" }, /--sip .*65535/],
    ["http", { http: "nowhere" }, /--http \(PRESENCE_HTTP\): expected host:port/],
    ["number", { minExpires: "soon" }, /--min-expires .*whole number/],
    ["id", { id: "a b" }, /--id/],
    ["log level", { logLevel: "loud" }, /--log-level/],
    [
      "trace-mail",
      { traceMail: "some" },
      /--trace-mail \(PRESENCE_TRACE_MAIL\): expected remote or all/,
    ],
  ];
  for (const [what, raw, message] of bad) {
    it(`config - a bad ${what} is refused with the flag named`, () => {
      assert.throws(
        () => buildConfig(raw),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }

  it("config - actor mail is traced in span pairs between nodes unless --trace-mail all", () => {
    assert.equal(buildConfig({}).traceMail, "remote");
    assert.equal(buildConfig({ traceMail: "all" }).traceMail, "all");
  });

  it("config - min expiry above max expiry is refused", () => {
    assert.throws(() => buildConfig({ minExpires: "100", maxExpires: "50" }), /--min-expires/);
  });
});

describe("config - presence sources", () => {
  it("config - --source takes built-in names and name:path entries, comma-separated", () => {
    assert.deepEqual(buildConfig({ sources: "webhook, desk:./dist/desk.js" }).sources, [
      { name: "webhook", module: undefined },
      { name: "desk", module: "./dist/desk.js" },
    ]);
    assert.deepEqual(buildConfig({}).sources, []);
  });

  it("config - --source-option is <source>.<key>=<value>; the value may hold = and :", () => {
    assert.deepEqual(
      buildConfig({ sourceOptions: "desk.presentity=sip:desk@example.com,desk.q=a=b" })
        .sourceOptions,
      [
        { source: "desk", key: "presentity", value: "sip:desk@example.com" },
        { source: "desk", key: "q", value: "a=b" },
      ],
    );
  });

  it("config - --calendar is <presentity>=<file or URL>, comma-separated", () => {
    assert.deepEqual(
      buildConfig({ calendars: "sip:a@x.org=/cal/a.ics,b@x.org=https://x.org/b.ics" }).calendars,
      ["sip:a@x.org=/cal/a.ics", "b@x.org=https://x.org/b.ics"],
    );
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ["source name", { sources: "Web_Hook" }, /--source \(PRESENCE_SOURCE\): expected a built-in/],
    ["source option", { sourceOptions: "desk=1" }, /--source-option \(PRESENCE_SOURCE_OPTION\)/],
    ["calendar", { calendars: "/cal/a.ics" }, /--calendar \(PRESENCE_CALENDAR\)/],
    ["backoff", { sourceBackoffMs: "5" }, /--source-backoff \(PRESENCE_SOURCE_BACKOFF\)/],
  ];
  for (const [what, raw, message] of bad) {
    it(`config - a bad ${what} is refused with the flag named`, () => {
      assert.throws(
        () => buildConfig(raw),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }

  it("config - a first restart pause longer than the longest is refused", () => {
    assert.throws(
      () => buildConfig({ sourceBackoffMs: "5000", sourceBackoffMaxMs: "1000" }),
      /--source-backoff must not be larger than --source-backoff-max/,
    );
  });

  it("config - the repeatable settings are the list-valued ones", () => {
    const repeatable = SETTINGS.filter((s) => "repeatable" in s).map((s) => s.flag);
    assert.deepEqual(repeatable, ["--source", "--source-option", "--calendar"]);
  });
});

describe("config - README", () => {
  it("config - the README's configuration table lists every setting as the code has it", () => {
    const readme = readFileSync("README.md", "utf8");
    for (const s of SETTINGS) {
      const row = `| \`${s.flag}\` | \`${envName(s.flag)}\` | \`${s.default}\` | ${s.description.replace(/\|/g, "\\|")} |`;
      assert.ok(readme.includes(row), `README row missing or stale: ${row}`);
    }
  });
});

describe("config - command line", () => {
  it("config - every flag reaches its setting through the parser's option name", () => {
    for (const setting of SETTINGS) {
      const attribute = new Option(`${setting.flag} ${setting.arg}`).attributeName();
      assert.equal(flagAttribute(setting.flag), attribute, setting.flag);
      assert.deepEqual(
        settingsFromOptions({ [attribute]: "x" }),
        { [setting.key]: "x" },
        setting.flag,
      );
    }
  });
});
