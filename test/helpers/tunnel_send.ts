// Director stand-in for the decap tests: builds a client request with the test builders,
// encapsulates it with tslb's own forward/tunnel.ts into a frame's headroom, and sends the
// outer packet through an IPPROTO_RAW socket of io/raw.ts. Runs inside the director
// namespace (under `timeout`). Usage: bun tunnel_send.ts '<json Send[]>'
// Prints one JSON line: {"sent": [bytes per packet]}.
import { openRaw, IPPROTO_RAW, sockaddrIn, sockaddrIn6 } from "../../src/io/raw.ts";
import { TUN_GRE, TUN_GUE, TUN_IPIP, tunnelDest, tunnelEncap } from "../../src/forward/tunnel.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIp4, ip4 } from "../fixtures/builder.ts";
import { buildIp6, ip6 } from "../fixtures/ipv6.ts";

export interface Send {
  type: "ipip" | "gue" | "gre";
  flags?: number;
  port?: number;
  /** Outer source (the director) and destination (the real server); the family follows. */
  outerSrc: string;
  outerDst: string;
  /** Inner packet: client -> VIP. */
  src: string;
  dst: string;
  proto?: "udp" | "tcp";
  sport: number;
  dport: number;
  payload?: string;
  /** Overwrite bytes of the built inner packet: [offset, value] pairs (to corrupt it). */
  poke?: [number, number][];
  /** Overwrite bytes of the outer headers after encapsulation: [offset from the outer start, value]. */
  outerPoke?: [number, number][];
  /** Outer TOS / traffic class ECN bits to force (0-3). */
  outerEcn?: number;
  innerTos?: number;
  count?: number;
}

const TYPES = { ipip: TUN_IPIP, gue: TUN_GUE, gre: TUN_GRE } as const;
const sends = JSON.parse(process.argv[2]) as Send[];
const f = Frame.alloc(HEADROOM + 65536);
const socks = { 4: openRaw(4, IPPROTO_RAW), 6: openRaw(6, IPPROTO_RAW) };
const sent: number[] = [];
for (const s of sends) {
  const v6in = s.src.includes(":");
  const inner = v6in
    ? buildIp6({ src: s.src, dst: s.dst, proto: s.proto, sport: s.sport, dport: s.dport, payload: s.payload, tc: s.innerTos })
    : buildIp4({ src: s.src, dst: s.dst, proto: s.proto, sport: s.sport, dport: s.dport, payload: s.payload });
  if (!v6in && s.innerTos !== undefined) {
    inner[1] = s.innerTos;
    inner[10] = inner[11] = 0;
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (inner[i] << 8) | inner[i + 1];
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const c = ~sum & 0xffff;
    inner[10] = c >> 8;
    inner[11] = c & 0xff;
  }
  for (const [o, v] of s.poke ?? []) inner[o] = v;
  const af = s.outerDst.includes(":") ? 6 : 4;
  const d = af === 4
    ? tunnelDest(4, TYPES[s.type], s.flags ?? 0, s.port ?? 0, [ip4(s.outerSrc)], [ip4(s.outerDst)])
    : tunnelDest(6, TYPES[s.type], s.flags ?? 0, s.port ?? 0, ip6(s.outerSrc), ip6(s.outerDst));
  for (let i = 0; i < (s.count ?? 1); i++) {
    f.u8.set(inner, HEADROOM);
    const start = tunnelEncap(f, HEADROOM, inner.length, d, 0x4000 + i, s.sport * 65536 + s.dport);
    if (start < 0) throw new Error(`encap failed: ${start}`);
    if (s.outerEcn !== undefined) {
      if (af === 4) {
        // TOS byte and the header checksum, recomputed (test side: plain arithmetic is fine).
        f.u8[start + 1] = (f.u8[start + 1] & 0xfc) | s.outerEcn;
        f.u8[start + 10] = f.u8[start + 11] = 0;
        let sum = 0;
        for (let k = 0; k < 20; k += 2) sum += (f.u8[start + k] << 8) | f.u8[start + k + 1];
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
        const c = ~sum & 0xffff;
        f.u8[start + 10] = c >> 8;
        f.u8[start + 11] = c & 0xff;
      } else {
        f.u8[start + 1] = (f.u8[start + 1] & 0xcf) | (s.outerEcn << 4);
      }
    }
    for (const [o, v] of s.outerPoke ?? []) f.u8[start + o] = v;
    const to = af === 4 ? sockaddrIn(ip4(s.outerDst), 0) : sockaddrIn6(ip6(s.outerDst), 0);
    const r = socks[af].sendTo(f.u8, start, HEADROOM + inner.length - start, to);
    if (r < 0) throw new Error(`sendto ${s.outerDst}: errno ${-r}`);
    sent.push(r);
  }
}
console.log(JSON.stringify({ sent }));
