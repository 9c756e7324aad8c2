// actors/sources: the built-in webhook source — `POST /sources/webhook/<presentity>` sets presence.
// Checked on the node that took the request (bearer token, JSON, fields); applied where the source runs.

import { timingSafeEqual } from "node:crypto";
import {
  defineSource,
  type PresenceUpdate,
  presentityKey,
  SourceConfigError,
  type SourceHttpDecision,
  updateProblem,
} from "./api.js";

export type WebhookMessage =
  | { type: "set"; presentity: string; update: PresenceUpdate }
  | { type: "clear"; presentity: string };

export interface WebhookConfig {
  token: Buffer;
}

function refuse(
  status: number,
  error: string,
  headers?: Record<string, string>,
): SourceHttpDecision<WebhookMessage> {
  return headers ? { status, body: { error }, headers } : { status, body: { error } };
}

function authorised(header: string | undefined, token: Buffer): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1], "utf8");
  return given.length === token.length && timingSafeEqual(given, token);
}

/** `sip:alice@example.com` or `alice@example.com` (sip: implied), percent-encoded or not. */
function presentityFromPath(path: string): string | undefined {
  return path.includes("/") ? undefined : presentityKey(path);
}

export const webhook = defineSource<WebhookConfig, null, WebhookMessage>({
  name: "webhook",
  description:
    "presence set over HTTP: POST /sources/webhook/<presentity> on any node's admin port",
  config(options) {
    for (const key of Object.keys(options)) {
      if (key !== "token") throw new SourceConfigError(`webhook: unknown option "${key}" (token)`);
    }
    const token = options.token ?? "";
    if (token.length < 8 || /\s/.test(token)) {
      throw new SourceConfigError(
        "webhook needs a bearer token of at least 8 characters without spaces: --webhook-token (PRESENCE_WEBHOOK_TOKEN)",
      );
    }
    return { token: Buffer.from(token, "utf8") };
  },
  http(request, config) {
    // The token comes first: an unauthenticated caller learns nothing about paths or bodies.
    if (!authorised(request.headers.authorization, config.token)) {
      return refuse(401, "missing or wrong bearer token (Authorization: Bearer <token>)", {
        "www-authenticate": 'Bearer realm="presence-cluster webhook"',
      });
    }
    const presentity = presentityFromPath(request.path);
    if (presentity === undefined) {
      return refuse(404, "expected /sources/webhook/<presentity>, e.g. sip:alice@example.com");
    }
    if (request.method === "DELETE") return { deliver: { type: "clear", presentity } };
    if (request.method !== "POST" && request.method !== "PUT") {
      return refuse(405, "use POST (set presence) or DELETE (withdraw it)", {
        allow: "POST, PUT, DELETE",
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(request.body.toString("utf8"));
    } catch (error) {
      return refuse(400, `body is not JSON: ${error instanceof Error ? error.message : error}`);
    }
    const problem = updateProblem(body);
    if (problem !== undefined) return refuse(422, problem);
    return { deliver: { type: "set", presentity, update: body as PresenceUpdate } };
  },
  start: () => null,
  receive(state, message, ctx) {
    if (message.type === "set") ctx.publish(message.presentity, message.update);
    else ctx.clear(message.presentity);
    return state;
  },
});
