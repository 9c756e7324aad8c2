// protocol/pidf: PIDF documents built from a simple status — basic open/closed, a note, RPID activities.
// What presence sources publish: one tuple of the source's own and, with activities, one dm:person (RFC 4480).

import { DATA_MODEL_NS, PIDF_NS } from "./pidf.js";
import { escapeXmlAttribute, escapeXmlText } from "./xml.js";

export const RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid";

/** RFC 4480 §3.2: the activities with an element of their own; others go in `<rpid:other>`. */
export const RPID_ACTIVITIES: ReadonlySet<string> = new Set([
  "appointment",
  "away",
  "breakfast",
  "busy",
  "dinner",
  "holiday",
  "in-transit",
  "looking-for-work",
  "meal",
  "meeting",
  "on-the-phone",
  "performance",
  "permanent-absence",
  "playing",
  "presentation",
  "shopping",
  "sleeping",
  "spectator",
  "steering",
  "travel",
  "tv",
  "unknown",
  "vacation",
  "working",
  "worship",
]);

export interface SimpleStatus {
  readonly status: "open" | "closed";
  readonly note?: string;
  readonly activities?: readonly string[];
}

/**
 * A PIDF document for `entity` with one tuple `id` (basic status, note) and, when there are
 * activities, a `dm:person` with id `<id>-person` holding them. Same input, same bytes.
 */
export function simplePidf(entity: string, id: string, status: SimpleStatus): Buffer {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="${PIDF_NS}" xmlns:dm="${DATA_MODEL_NS}" xmlns:rpid="${RPID_NS}" entity="${escapeXmlAttribute(entity)}">`,
    `  <tuple id="${escapeXmlAttribute(id)}">`,
    `    <status><basic>${status.status}</basic></status>`,
  ];
  if (status.note !== undefined) lines.push(`    <note>${escapeXmlText(status.note)}</note>`);
  lines.push("  </tuple>");
  const activities = [...new Set(status.activities ?? [])];
  if (activities.length > 0) {
    const elements = activities.map((activity) =>
      RPID_ACTIVITIES.has(activity)
        ? `<rpid:${activity}/>`
        : `<rpid:other>${escapeXmlText(activity)}</rpid:other>`,
    );
    lines.push(
      `  <dm:person id="${escapeXmlAttribute(`${id}-person`)}">`,
      `    <rpid:activities>${elements.join("")}</rpid:activities>`,
      "  </dm:person>",
    );
  }
  lines.push("</presence>", "");
  return Buffer.from(lines.join("\n"), "utf8");
}
