// scripts/bench: PIDF (RFC 3863) bodies of a chosen size for the benchmark's PUBLISH requests.
// ASCII only, so that characters and bytes agree whatever counts the Content-Length.

const PIDF_NS = "urn:ietf:params:xml:ns:pidf";

/** One tuple as a device would publish it: status, contact, a note and a timestamp. */
function tuple(index: number, noteBytes: number): string {
  const note = `device ${index} `.padEnd(noteBytes, "abcdefghijklmnopqrstuvwxyz ".repeat(8));
  return (
    `<tuple id="t${index}"><status><basic>${index % 3 === 0 ? "closed" : "open"}</basic></status>` +
    `<contact priority="0.${index % 10}">sip:device${index}@127.0.0.1</contact>` +
    `<note>${note}</note><timestamp>2026-11-24T10:00:00Z</timestamp></tuple>`
  );
}

/** Tuples adding up to about `bytes` bytes (each about 300 bytes; at least one). */
export function pidfTuples(bytes: number, firstIndex = 1): string {
  const parts: string[] = [];
  let size = 0;
  let index = firstIndex;
  do {
    const next = tuple(index, 160);
    parts.push(next);
    size += next.length;
    index += 1;
  } while (size < bytes);
  return parts.join("\n");
}

/** A whole PIDF document of about `bytes` bytes for `entity`. */
export function pidfDocument(entity: string, bytes: number): string {
  const head = `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="${PIDF_NS}" entity="${entity}">\n`;
  const tail = "\n</presence>\n";
  return `${head}${pidfTuples(bytes - head.length - tail.length)}${tail}`;
}
