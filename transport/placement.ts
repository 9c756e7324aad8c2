// transport: where a presentity's resource lives — rendezvous (highest random weight) hashing.
// Pure: the same key and candidate set give the same home on every node; a change of the set
// moves only the keys whose winner joined or left.

/** 32-bit FNV-1a followed by murmur3's finaliser, for well-spread weights from short strings. */
function weight(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The home of `key` among `candidates` (node ids); undefined when there is none. */
export function homeOf(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const node of candidates) {
    const w = weight(`${node}\u0000${key}`);
    if (w > bestWeight || (w === bestWeight && best !== undefined && node < best)) {
      best = node;
      bestWeight = w;
    }
  }
  return best;
}
