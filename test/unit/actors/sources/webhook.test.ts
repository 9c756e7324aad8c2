// test/unit: the webhook source — its config, and how its HTTP hook answers or delivers each request.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SourceHttpRequest } from "../../../../actors/sources/api.js";
import { type WebhookConfig, webhook } from "../../../../actors/sources/webhook.js";

const config = webhook.config?.({ token: "s3cret-token" }) as WebhookConfig;

function request(
  path: string,
  body: string,
  options: { method?: string; authorization?: string } = {},
): SourceHttpRequest {
  return {
    method: options.method ?? "POST",
    path,
    headers: { authorization: options.authorization ?? "Bearer s3cret-token" },
    body: Buffer.from(body, "utf8"),
  };
}

function decide(req: SourceHttpRequest) {
  const http = webhook.http;
  assert.ok(http);
  return http(req, config);
}

describe("webhook - config", () => {
  it("webhook - needs a token of 8 characters or more, and takes no other option", () => {
    assert.throws(() => webhook.config?.({}), /--webhook-token/);
    assert.throws(() => webhook.config?.({ token: "short" }), /at least 8/);
    assert.throws(() => webhook.config?.({ token: "s3cret-token", colour: "x" }), /unknown option/);
  });
});

describe("webhook - requests", () => {
  it("webhook - a good POST is delivered as the state for the presentity of the path", () => {
    assert.deepEqual(
      decide(
        request(
          "sip:Alice@Example.com",
          '{"status":"open","note":"in a call","activities":["on-the-phone"]}',
        ),
      ),
      {
        deliver: {
          type: "set",
          presentity: "sip:Alice@example.com",
          update: { status: "open", note: "in a call", activities: ["on-the-phone"] },
        },
      },
    );
    assert.deepEqual(decide(request("bob@example.com", '{"status":"closed","expires":60}')), {
      deliver: {
        type: "set",
        presentity: "sip:bob@example.com",
        update: { status: "closed", expires: 60 },
      },
    });
  });

  it("webhook - DELETE withdraws the presentity's state", () => {
    assert.deepEqual(decide(request("sip:bob@example.com", "", { method: "DELETE" })), {
      deliver: { type: "clear", presentity: "sip:bob@example.com" },
    });
  });

  const refused: [string, SourceHttpRequest, number, RegExp][] = [
    ["no token", request("sip:a@b.c", "{}", { authorization: "" }), 401, /bearer token/],
    [
      "a wrong token",
      request("sip:a@b.c", "{}", { authorization: "Bearer s3cret-tokem" }),
      401,
      /bearer token/,
    ],
    [
      "another scheme",
      request("sip:a@b.c", "{}", { authorization: "Basic s3cret-token" }),
      401,
      /bearer token/,
    ],
    ["bad JSON", request("sip:a@b.c", '{"status":'), 400, /not JSON/],
    ["an unknown field", request("sip:a@b.c", '{"status":"open","mood":"x"}'), 422, /"mood"/],
    ["a bad value", request("sip:a@b.c", '{"status":"away"}'), 422, /status must be/],
    ["no presentity", request("", '{"status":"open"}'), 404, /presentity/],
    ["a host, not a presentity", request("example.com", '{"status":"open"}'), 404, /presentity/],
    ["GET", request("sip:a@b.c", "", { method: "GET" }), 405, /POST/],
  ];
  for (const [what, req, status, reason] of refused) {
    it(`webhook - ${what} is answered ${status} with a reason, nothing delivered`, () => {
      const decision = decide(req);
      assert.ok(!("deliver" in decision), "nothing reaches the source");
      assert.equal(decision.status, status);
      assert.match(String(decision.body.error), reason);
    });
  }

  it("webhook - a wrong token is refused before the path or body is looked at", () => {
    const decision = decide(request("", "{", { authorization: "Bearer nope" }));
    assert.ok(!("deliver" in decision));
    assert.equal(decision.status, 401);
    assert.match(decision.headers?.["www-authenticate"] ?? "", /^Bearer /);
  });
});
