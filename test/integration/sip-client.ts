// test/integration: a PUBLISH client for tests that must chain many publications (SIPp's loop
// variables print as floating point). Real SIP over UDP, through the project's own endpoint.

import { silentLogger } from "../../bootstrap/log.js";
import { makeResponse, randomToken } from "../../protocol/sip/headers.js";
import type { SipRequest, SipResponse } from "../../protocol/sip/message.js";
import { SipEndpoint } from "../../transport/sip-endpoint.js";

const host = "127.0.0.1";

export interface PublishOptions {
  etag?: string;
  expires: number;
}

export class SipPublisher {
  private cseq = 0;
  private readonly callId = `${randomToken(12)}@${host}`;
  private readonly tag = randomToken(8);

  private constructor(private readonly endpoint: SipEndpoint) {}

  static async open(): Promise<SipPublisher> {
    const endpoint = await SipEndpoint.listen(
      { host, port: 0, maxMessageBytes: 1 << 20, log: silentLogger },
      // A publisher takes no requests.
      (incoming) => incoming.respond(makeResponse(incoming.request, 405)),
    );
    return new SipPublisher(endpoint);
  }

  /** One PUBLISH (RFC 3903) to the node at `port`; resolves with its final response. */
  publish(
    port: number,
    user: string,
    pidf: string | undefined,
    options: PublishOptions,
  ): Promise<SipResponse> {
    this.cseq += 1;
    const aor = `sip:${user}@${host}`;
    const request: SipRequest = {
      kind: "request",
      method: "PUBLISH",
      uri: `sip:${user}@${host}:${port}`,
      version: "2.0",
      headers: {
        via: [],
        from: { uri: aor, params: { tag: this.tag } },
        to: { uri: aor, params: {} },
        "call-id": this.callId,
        cseq: { seq: this.cseq, method: "PUBLISH" },
        event: "presence",
        expires: String(options.expires),
        ...(options.etag ? { "sip-if-match": options.etag } : {}),
        ...(pidf ? { "content-type": "application/pidf+xml" } : {}),
      },
      body: pidf ? Buffer.from(pidf, "utf8") : Buffer.alloc(0),
    };
    return this.endpoint.request(request, { transport: "udp", address: host, port });
  }

  close(): Promise<void> {
    return this.endpoint.close();
  }
}

export function etagOf(response: SipResponse): string {
  const etag = response.headers["sip-etag"];
  if (typeof etag !== "string" || etag.length === 0) {
    throw new Error(`no SIP-ETag in ${response.status} ${response.reason}`);
  }
  return etag;
}
