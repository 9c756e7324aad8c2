// protocol/presence: the canonical key of a presentity, derived from a Request-URI or an AOR.
// One key per user whatever port or URI parameters a client used: `sip:user@host`.

import { parseUri } from "../sip/headers.js";

/**
 * `sip:alice@Example.COM:5070;transport=tcp` → `sip:alice@example.com`. The user part stays
 * case-sensitive (RFC 3261 §19.1.4), the host is not. `pres:` URIs (RFC 3859) map to `sip:`.
 * Returns undefined for a URI without a user part: it names a host, not a presentity.
 */
export function presentityOf(uri: string): string | undefined {
  const known = recent.get(uri);
  if (known !== undefined) return known ?? undefined;
  const normalised = uri.startsWith("pres:") ? `sip:${uri.slice(5)}` : uri;
  const parsed = parseUri(normalised);
  const key = parsed?.user ? `sip:${parsed.user}@${parsed.host.toLowerCase()}` : null;
  if (recent.size >= RECENT) recent.clear();
  recent.set(uri, key);
  return key ?? undefined;
}

/**
 * The same URI is asked about several times per request (the ingress, the transaction's span,
 * the watcher tally): the last few thousand answers are kept. `null`: no presentity.
 */
const RECENT = 4096;
const recent = new Map<string, string | null>();
