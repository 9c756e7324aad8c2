// scripts/bench/dispatch: publishes many presentities' PIDF state (RFC 3903 PUBLISH over UDP)
// through the project's own SIP endpoint, a bounded number in flight, before a promotion run.

import { silentLogger } from "../../../bootstrap/log.js";
import { makeResponse, randomToken } from "../../../protocol/sip/headers.js";
import type { SipRequest, SipResponse } from "../../../protocol/sip/message.js";
import { SipEndpoint } from "../../../transport/sip-endpoint.js";
import { pidfDocument } from "../pidf.js";

const host = "127.0.0.1";

export interface PublishPlan {
  /** SIP ports the PUBLISHes go to, in turn (each node forwards to the presentity's home). */
  ports: readonly number[];
  /** Presentity users: `${prefix}${i}` for i = 1…count. */
  prefix: string;
  count: number;
  /** Size of each PIDF document. */
  bodyBytes: number;
  /** PUBLISHes in flight at most. */
  concurrency: number;
  expires: number;
  /** A PUBLISH answered 5xx or 408 is sent again this many times (after 200 ms). */
  retries: number;
  /** No new PUBLISH starts after this long. */
  timeoutMs: number;
}

export interface PublishOutcome {
  ok: number;
  failed: number;
  retried: number;
  seconds: number;
  /** Final statuses other than 200, by status. */
  refusals: Record<string, number>;
}

function publishRequest(port: number, user: string, body: Buffer, expires: number): SipRequest {
  const aor = `sip:${user}@${host}`;
  return {
    kind: "request",
    method: "PUBLISH",
    uri: `sip:${user}@${host}:${port}`,
    version: "2.0",
    headers: {
      via: [],
      "max-forwards": "70",
      from: { uri: aor, params: { tag: randomToken(8) } },
      to: { uri: aor, params: {} },
      "call-id": `${randomToken(12)}@${host}`,
      cseq: { seq: 1, method: "PUBLISH" },
      event: "presence",
      expires: String(expires),
      "content-type": "application/pidf+xml",
    },
    body,
  };
}

function retryable(response: SipResponse): boolean {
  return response.status === 408 || response.status >= 500;
}

/** Sends one initial PUBLISH per presentity; resolves when every one has its final answer. */
export async function publishPresentities(plan: PublishPlan): Promise<PublishOutcome> {
  const endpoint = await SipEndpoint.listen(
    { host, port: 0, maxMessageBytes: 1 << 20, log: silentLogger },
    // A publisher takes no requests.
    (incoming) => incoming.respond(makeResponse(incoming.request, 405)),
  );
  const outcome: PublishOutcome = { ok: 0, failed: 0, retried: 0, seconds: 0, refusals: {} };
  const started = Date.now();
  let next = 1;
  const worker = async (): Promise<void> => {
    while (next <= plan.count && Date.now() - started < plan.timeoutMs) {
      const index = next++;
      const user = `${plan.prefix}${index}`;
      const port = plan.ports[index % plan.ports.length] ?? plan.ports[0] ?? 0;
      const body = Buffer.from(pidfDocument(`sip:${user}@${host}`, plan.bodyBytes), "utf8");
      let response = await endpoint.request(publishRequest(port, user, body, plan.expires), {
        transport: "udp",
        address: host,
        port,
      });
      for (let attempt = 0; attempt < plan.retries && retryable(response); attempt++) {
        outcome.retried += 1;
        await new Promise((resolve) => setTimeout(resolve, 200));
        response = await endpoint.request(publishRequest(port, user, body, plan.expires), {
          transport: "udp",
          address: host,
          port,
        });
      }
      if (response.status === 200) {
        outcome.ok += 1;
      } else {
        outcome.failed += 1;
        const key = `${response.status} ${response.reason}`;
        outcome.refusals[key] = (outcome.refusals[key] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, plan.concurrency) }, worker));
  } finally {
    await endpoint.close();
  }
  outcome.failed += Math.max(0, plan.count - outcome.ok - outcome.failed);
  outcome.seconds = (Date.now() - started) / 1000;
  return outcome;
}
