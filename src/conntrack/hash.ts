// Seeded flow hash over int32 words (murmur3's mixing steps, Math.imul: no floats, no
// allocation). The same function hashes both directions of a connection, each key
// written "as the packet arrives": (proto, src, sport, dst, dport).

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Hash of a flow; IPv4 callers pass 0 for address words 1–3. */
export function flowHash(
  seed: number, proto: number,
  s0: number, s1: number, s2: number, s3: number, sport: number,
  d0: number, d1: number, d2: number, d3: number, dport: number,
): number {
  let h = seed ^ proto;
  h = mix(h, s0);
  h = mix(h, d0);
  h = mix(h, (sport << 16) | dport);
  if ((s1 | s2 | s3 | d1 | d2 | d3) !== 0) {
    h = mix(h, s1); h = mix(h, s2); h = mix(h, s3);
    h = mix(h, d1); h = mix(h, d2); h = mix(h, d3);
  }
  return finish(h);
}
