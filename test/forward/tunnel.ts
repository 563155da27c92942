// Tunnel encapsulation golden tests (Katran style): an input built with the test builder,
// encapsulated into the frame's headroom, compared byte for byte with the expected outer
// headers (fixed IP IDs and flow hash), every checksum verified by full recomputation,
// then decapsulated with the real server's code and compared with the input. Plus the
// IPVS field rules (TOS/ECN, TTL, DF), the MTU helpers, a seeded differential test and an
// allocation probe. Addresses: 198.18.0.0/15 and 2001:2::/48 only.
import { heapStats } from "bun:jsc";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Decapper, VipSet } from "../../src/decap/decap.ts";
import {
  GUE_SPORT_MAX, GUE_SPORT_MIN, TUN_F_CSUM, TUN_F_REMCSUM, TUN_GRE, TUN_GUE, TUN_IPIP, type TunnelDest, gueSourcePort,
  tunnelDest, tunnelEncap, tunnelIcmpInner, tunnelIcmpMtu, tunnelInnerMtu, tunnelMtuCheck, tunnelOverhead,
} from "../../src/forward/tunnel.ts";
import { csumAdd, csumFold, ipv4PseudoSum } from "../../src/wire/checksum.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIp4, checksumsValid, ip4, rng } from "../fixtures/builder.ts";
import { buildIp6, ip6, ip6ChecksumValid } from "../fixtures/ipv6.ts";

const DIR = "198.18.1.1"; // director's address toward the real servers
const RS = "198.18.1.11";
const VIP = "198.18.0.100";
const CL = "198.18.2.2";
const DIR6 = "2001:2::1";
const RS6 = "2001:2::11";
const VIP6 = "2001:2:0:100::100";
const CL6 = "2001:2:0:2::2";
const ID = 0x0101;
const HASH = 0x12345678; // GUE source port 40299 (0x9d6b), see gueSourcePort below

const d4 = (type: number, flags = 0, port = 6080) => tunnelDest(4, type, flags, port, [ip4(DIR)], [ip4(RS)]);
const d6 = (type: number, flags = 0, port = 6080) => tunnelDest(6, type, flags, port, ip6(DIR6), ip6(RS6));

// 198.18.2.2:40000 -> 198.18.0.100:53 UDP "hi", TTL 63 (already decremented), DF, id 0x1234.
const INNER4 = buildIp4({ src: CL, dst: VIP, proto: "udp", sport: 40000, dport: 53, payload: "hi", id: 0x1234, ttl: 63 });
const INNER6 = buildIp6({ src: CL6, dst: VIP6, sport: 40000, dport: 53, payload: "hi", hops: 63, tc: 0xb8 });

/** Puts `inner` at HEADROOM in a 0xa5-poisoned frame and encapsulates it. */
function encap(inner: Uint8Array, d: TunnelDest, id = ID, hash = HASH): { f: Frame; s: number; end: number } {
  const f = Frame.alloc(HEADROOM + inner.length + 16);
  f.u8.fill(0xa5);
  f.u8.set(inner, HEADROOM);
  const s = tunnelEncap(f, HEADROOM, inner.length, d, id, hash);
  return { f, s, end: HEADROOM + inner.length };
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

/** Every checksum of the outer packet recomputed from scratch. */
function outerChecksumsValid(u8: Uint8Array, s: number, end: number): boolean {
  const v = u8[s] >> 4;
  let l4 = s + 40;
  let proto = u8[s + 6];
  let pseudo = 0;
  const l4len = end - (v === 4 ? s + 20 : s + 40);
  if (v === 4) {
    if (csumFold(csumAdd(u8, s, 20, 0)) !== 0xffff) return false;
    l4 = s + 20;
    proto = u8[s + 9];
    const dv = new DataView(u8.buffer, u8.byteOffset);
    pseudo = ipv4PseudoSum(dv.getInt32(s + 12), dv.getInt32(s + 16), proto, l4len);
  } else {
    pseudo = csumAdd(u8, s + 8, 32, 0) + proto + l4len;
  }
  if (proto === 17 && (u8[l4 + 6] | u8[l4 + 7]) !== 0) return csumFold(csumAdd(u8, l4, l4len, pseudo)) === 0xffff;
  if (proto === 47 && (u8[l4] & 0x80) !== 0) return csumFold(csumAdd(u8, l4, l4len, 0)) === 0xffff;
  return true;
}

/** For a GUE outer packet, Decapper.fromPayload takes the UDP payload (what the socket reads). */
function decapAny(u8: Uint8Array, s: number, end: number): Uint8Array {
  const v = u8[s] >> 4;
  const ihl = v === 4 ? (u8[s] & 0x0f) * 4 : 40;
  const proto = v === 4 ? u8[s + 9] : u8[s + 6];
  const dc = new Decapper(new VipSet([ip4(VIP)], [ip6(VIP6)]));
  let at: number;
  if (proto === 17) at = dc.fromPayload(u8, s + ihl + 8, end - s - ihl - 8, 17, 0);
  else if (v === 4) at = dc.fromIp4(u8, s, end - s);
  else at = dc.fromPayload(u8, s + 40, end - s - 40, proto, 0);
  if (at < 0) throw new Error(`decap failed: ${at}`);
  return u8.slice(at, at + dc.innerLen);
}

// --- golden table -------------------------------------------------------------------------

interface Golden {
  description: string;
  inner: Uint8Array;
  dest: TunnelDest;
  /** Expected outer header bytes, written in front of the untouched inner packet. */
  outer: number[];
}

const GOLDEN: Golden[] = [
  {
    description: "IPIP: IPv4 in IPv4, protocol 4",
    inner: INNER4,
    dest: d4(TUN_IPIP),
    outer: [
      0x45, 0x00, 0x00, 0x32, // version 4, IHL 5, TOS 0 (inner's), total 50 = 20 + 30
      0x01, 0x01, 0x40, 0x00, // id 0x0101 (the worker counter), DF copied from the inner packet
      0x3f, 0x04, 0xac, 0x96, // TTL 63 copied, protocol 4 (IPIP), header checksum
      0xc6, 0x12, 0x01, 0x01, // source 198.18.1.1 (director's address toward the real server)
      0xc6, 0x12, 0x01, 0x0b, // destination 198.18.1.11 (the real server)
    ],
  },
  {
    description: "GUE: IPv4 in UDP in IPv4, no UDP checksum",
    inner: INNER4,
    dest: d4(TUN_GUE),
    outer: [
      0x45, 0x00, 0x00, 0x3e, // total 62 = 20 + 8 + 4 + 30
      0x01, 0x01, 0x40, 0x00,
      0x3f, 0x11, 0xac, 0x7d, // protocol 17 (UDP)
      0xc6, 0x12, 0x01, 0x01,
      0xc6, 0x12, 0x01, 0x0b,
      0x9d, 0x6b, 0x17, 0xc0, // source port 40299 (flow hash), destination port 6080 (--tun-port)
      0x00, 0x2a, 0x00, 0x00, // UDP length 42, checksum 0 (--tun-nocsum)
      0x00, 0x04, 0x00, 0x00, // GUE: version 0, C 0, Hlen 0, proto 4, flags 0
    ],
  },
  {
    description: "GUE with --tun-csum: full UDP checksum",
    inner: INNER4,
    dest: d4(TUN_GUE, TUN_F_CSUM),
    outer: [
      0x45, 0x00, 0x00, 0x3e, 0x01, 0x01, 0x40, 0x00, 0x3f, 0x11, 0xac, 0x7d,
      0xc6, 0x12, 0x01, 0x01, 0xc6, 0x12, 0x01, 0x0b,
      0x9d, 0x6b, 0x17, 0xc0,
      0x00, 0x2a, 0x4a, 0xe0, // UDP checksum over pseudo header, UDP, GUE and the inner packet
      0x00, 0x04, 0x00, 0x00,
    ],
  },
  {
    description: "GUE with --tun-remcsum: the checksum is on, no option (inner checksum is complete)",
    inner: INNER4,
    dest: d4(TUN_GUE, TUN_F_REMCSUM),
    outer: [
      0x45, 0x00, 0x00, 0x3e, 0x01, 0x01, 0x40, 0x00, 0x3f, 0x11, 0xac, 0x7d,
      0xc6, 0x12, 0x01, 0x01, 0xc6, 0x12, 0x01, 0x0b,
      0x9d, 0x6b, 0x17, 0xc0, 0x00, 0x2a, 0x4a, 0xe0,
      0x00, 0x04, 0x00, 0x00,
    ],
  },
  {
    description: "GRE: IPv4 in GRE in IPv4, protocol 47, type 0x0800",
    inner: INNER4,
    dest: d4(TUN_GRE),
    outer: [
      0x45, 0x00, 0x00, 0x36, // total 54 = 20 + 4 + 30
      0x01, 0x01, 0x40, 0x00,
      0x3f, 0x2f, 0xac, 0x67, // protocol 47 (GRE)
      0xc6, 0x12, 0x01, 0x01,
      0xc6, 0x12, 0x01, 0x0b,
      0x00, 0x00, 0x08, 0x00, // GRE: no flags, version 0, protocol type IPv4
    ],
  },
  {
    description: "GRE with --tun-csum: checksum word present",
    inner: INNER4,
    dest: d4(TUN_GRE, TUN_F_CSUM),
    outer: [
      0x45, 0x00, 0x00, 0x3a, // total 58 = 20 + 8 + 30
      0x01, 0x01, 0x40, 0x00,
      0x3f, 0x2f, 0xac, 0x63,
      0xc6, 0x12, 0x01, 0x01,
      0xc6, 0x12, 0x01, 0x0b,
      0x80, 0x00, 0x08, 0x00, // GRE: C, protocol type IPv4
      0x06, 0xa6, 0x00, 0x00, // checksum over GRE header + inner packet, reserved1 0
    ],
  },
  {
    description: "IPv4 in IPv6: next header 4, traffic class and hop limit from the inner packet",
    inner: INNER4,
    dest: d6(TUN_IPIP),
    outer: [
      0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
      0x00, 0x1e, 0x04, 0x3f, // payload length 30, next header 4, hop limit 63
      0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source 2001:2::1
      0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, // destination 2001:2::11
    ],
  },
  {
    description: "IPv6 in IPv4: protocol 41, TOS = the inner traffic class, DF 0",
    inner: INNER6,
    dest: d4(TUN_IPIP),
    outer: [
      0x45, 0xb8, 0x00, 0x46, // TOS 0xb8 (inner traffic class), total 70 = 20 + 50
      0x01, 0x01, 0x00, 0x00, // DF 0: an IPv6 inner packet has no DF to copy
      0x3f, 0x29, 0xeb, 0xa5, // TTL 63 (inner hop limit), protocol 41, header checksum
      0xc6, 0x12, 0x01, 0x01,
      0xc6, 0x12, 0x01, 0x0b,
    ],
  },
  {
    description: "IPv6 in IPv6 over GRE with checksum: next header 47, type 0x86DD",
    inner: INNER6,
    dest: d6(TUN_GRE, TUN_F_CSUM),
    outer: [
      0x6b, 0x80, 0x00, 0x00, // version 6, traffic class 0xb8, flow label 0
      0x00, 0x3a, 0x2f, 0x3f, // payload length 58 = 8 + 50, next header 47, hop limit 63
      0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
      0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11,
      0x80, 0x00, 0x86, 0xdd, // GRE: C, protocol type IPv6
      0x7c, 0x73, 0x00, 0x00, // checksum over GRE header + inner packet, reserved1
    ],
  },
];

const golden = suite("forward/tunnel: golden packets");
for (const g of GOLDEN) {
  golden(g.description, () => {
    const { f, s, end } = encap(g.inner, g.dest);
    const oh = tunnelOverhead(g.dest);
    assert.is(s, HEADROOM - oh, "new start = old start - overhead");
    assert.is(g.outer.length, oh);
    const got = f.u8.subarray(s, HEADROOM);
    const want = Uint8Array.from(g.outer);
    assert.is(hex(got), hex(want));
    assert.is(f.u8[s - 1], 0xa5, "nothing written before the outer header");
    assert.is(f.u8[end], 0xa5, "nothing written after the packet");
    assert.equal(f.u8.subarray(HEADROOM, end), g.inner, "inner packet untouched");
    assert.ok(outerChecksumsValid(f.u8, s, end), "outer checksums verify");
    assert.equal(decapAny(f.u8, s, end), g.inner, "decapsulates back to the input");
  });
}

// --- IPVS field rules ---------------------------------------------------------------------

const rules = suite("forward/tunnel: outer fields as IPVS sets them");
rules("TOS copied; CE becomes ECT(0) on the outer header (RFC 6040, INET_ECN_encapsulate)", () => {
  for (const [tos, outer] of [[0x00, 0x00], [0xb8, 0xb8], [0xb9, 0xb9], [0xba, 0xba], [0xbb, 0xba], [0x03, 0x02]]) {
    const inner = buildIp4({ src: CL, dst: VIP, proto: "udp", sport: 1, dport: 2 });
    inner[1] = tos;
    inner[10] = inner[11] = 0;
    const c = ~csumFold(csumAdd(inner, 0, 20, 0)) & 0xffff;
    inner[10] = c >> 8; inner[11] = c & 0xff;
    const { f, s, end } = encap(inner, d4(TUN_IPIP));
    assert.is(f.u8[s + 1], outer, `inner TOS ${tos.toString(16)}`);
    assert.ok(outerChecksumsValid(f.u8, s, end));
    const v6 = encap(inner, d6(TUN_IPIP));
    assert.is(((v6.f.u8[v6.s] & 0x0f) << 4) | (v6.f.u8[v6.s + 1] >> 4), outer, "IPv6 outer traffic class");
  }
});
rules("DF follows the inner packet; TTL is copied, not decremented again", () => {
  const inner = buildIp4({ src: CL, dst: VIP, proto: "tcp", sport: 1, dport: 80, ttl: 7 });
  inner[6] = 0; // clear DF
  inner[10] = inner[11] = 0;
  const c = ~csumFold(csumAdd(inner, 0, 20, 0)) & 0xffff;
  inner[10] = c >> 8; inner[11] = c & 0xff;
  for (const t of [TUN_IPIP, TUN_GUE, TUN_GRE]) {
    const { f, s, end } = encap(inner, d4(t));
    assert.is(f.u8[s + 6], 0, "no DF");
    assert.is(f.u8[s + 8], 7, "TTL 7");
    assert.ok(outerChecksumsValid(f.u8, s, end));
  }
});
rules("IP ID is the caller's, truncated to 16 bits", () => {
  const { f, s } = encap(INNER4, d4(TUN_IPIP), 0x1fffe);
  assert.equal([f.u8[s + 4], f.u8[s + 5]], [0xff, 0xfe]);
});
rules("errors: start below the overhead, outer length past 65535, neither IPv4 nor IPv6", () => {
  const f = Frame.alloc(70000);
  f.u8.set(INNER4, 10);
  f.u8.set(INNER4, 20);
  assert.is(tunnelEncap(f, 10, INNER4.length, d4(TUN_IPIP), 1, 1), -DROP.TUNNEL_TOO_BIG, "10 bytes of headroom < 20");
  assert.is(tunnelEncap(f, 20, INNER4.length, d4(TUN_IPIP), 1, 1), 0, "exactly 20 is enough");
  f.u8[HEADROOM] = 0x45;
  assert.is(tunnelEncap(f, HEADROOM, 65535 - 19, d4(TUN_IPIP), 1, 1), -DROP.TUNNEL_TOO_BIG);
  assert.is(tunnelEncap(f, HEADROOM, 65535 - 20, d4(TUN_IPIP), 1, 1), HEADROOM - 20, "exactly 65535 fits");
  assert.is(tunnelEncap(f, HEADROOM, 65535, d6(TUN_IPIP), 1, 1), HEADROOM - 40, "IPv6 payload length 65535 fits");
  assert.is(tunnelEncap(f, HEADROOM, 65536, d6(TUN_IPIP), 1, 1), -DROP.TUNNEL_TOO_BIG);
  f.u8[HEADROOM] = 0x50;
  assert.is(tunnelEncap(f, HEADROOM, 40, d4(TUN_GRE), 1, 1), -DROP.UNSUPPORTED_L3);
  assert.is(tunnelEncap(f, HEADROOM, 0, d4(TUN_GRE), 1, 1), -DROP.TUNNEL_TOO_BIG);
});
rules("HEADROOM covers the largest overhead", () => {
  for (const af of [4, 6]) for (const t of [TUN_IPIP, TUN_GUE, TUN_GRE]) for (const fl of [0, TUN_F_CSUM, TUN_F_REMCSUM]) {
    const d = af === 4 ? d4(t, fl) : d6(t, fl);
    assert.ok(tunnelOverhead(d) <= HEADROOM);
  }
  assert.is(tunnelOverhead(d6(TUN_GUE)), 52);
  assert.is(tunnelOverhead(d4(TUN_GRE, TUN_F_CSUM)), 28);
});
rules("outer checksums: the O(1) inner sum, and the full sum where the inner packet cannot vouch", () => {
  const fix4 = (p: Uint8Array) => {
    p[10] = p[11] = 0;
    const c = ~csumFold(csumAdd(p, 0, (p[0] & 15) * 4, 0)) & 0xffff;
    p[10] = c >> 8; p[11] = c & 0xff;
    return p;
  };
  const noCsum = buildIp4({ src: CL, dst: VIP, proto: "udp", sport: 1, dport: 2, payload: "no udp checksum", noUdpCsum: true });
  const other = fix4(buildIp4({ src: CL, dst: VIP, proto: "udp", sport: 1, dport: 2, payload: "protocol 1" }));
  other[9] = 1; fix4(other);
  const frag = buildIp4({ src: CL, dst: VIP, proto: "tcp", sport: 1, dport: 2, payload: "first fragment" });
  frag[6] |= 0x20; fix4(frag);
  const odd = buildIp4({ src: CL, dst: VIP, proto: "tcp", sport: 1, dport: 2, payload: "odd" });
  const ext6 = buildIp6({ src: CL6, dst: VIP6, sport: 1, dport: 2, payload: "next header 60" });
  ext6[6] = 60; // a destination-options header would follow: not summed as UDP
  for (const p of [noCsum, other, frag, odd, INNER6, ext6]) {
    for (const d of [d4(TUN_GUE, TUN_F_CSUM), d4(TUN_GRE, TUN_F_CSUM), d6(TUN_GUE, TUN_F_CSUM), d6(TUN_GRE, TUN_F_CSUM)]) {
      const { f, s, end } = encap(p, d);
      assert.ok(outerChecksumsValid(f.u8, s, end), `inner proto ${p[0] >> 4 === 4 ? p[9] : p[6]}`);
    }
  }
});
rules("an inner segment with a wrong checksum makes the outer checksum fail instead (same drop, one layer up)", () => {
  const bad = buildIp4({ src: CL, dst: VIP, proto: "tcp", sport: 1, dport: 2, payload: "corrupt" });
  bad[36] ^= 0x55; // TCP checksum
  const { f, s, end } = encap(bad, d4(TUN_GUE, TUN_F_CSUM));
  assert.not.ok(outerChecksumsValid(f.u8, s, end));
});
rules("tunnelDest refuses inconsistent input", () => {
  assert.throws(() => tunnelDest(4, TUN_IPIP, 0, 0, ip6(DIR6), [ip4(RS)]), /needs 1-word/);
  assert.throws(() => tunnelDest(6, TUN_IPIP, 0, 0, [1], [2]), /needs 4-word/);
  assert.throws(() => tunnelDest(4, 7, 0, 0, [1], [2]), /unknown tunnel type/);
});

// --- GUE source port ----------------------------------------------------------------------

const sport = suite("forward/tunnel: GUE source port = udp_flow_src_port");
sport("matches the kernel's 64-bit formula on 10 000 seeded hashes, inside [32768, 60999)", () => {
  const r = rng(42);
  for (let i = 0; i < 10_000; i++) {
    const h = (r() * 4294967296) | 0;
    const x = (h ^ (h << 16)) >>> 0;
    const want = Number((BigInt(x) * BigInt(GUE_SPORT_MAX - GUE_SPORT_MIN)) >> 32n) + GUE_SPORT_MIN;
    const got = gueSourcePort(h);
    assert.is(got, want);
    assert.ok(got >= GUE_SPORT_MIN && got < GUE_SPORT_MAX);
  }
  assert.is(gueSourcePort(HASH), 40299);
});

// --- MTU ----------------------------------------------------------------------------------

const mtu = suite("forward/tunnel: MTU helpers (ensure_mtu_is_adequate)");
mtu("inner MTU = route MTU - overhead; -1 below 68 (IPv4 outer) / 1280 (IPv6 outer)", () => {
  assert.is(tunnelInnerMtu(1500, d4(TUN_IPIP)), 1480);
  assert.is(tunnelInnerMtu(1500, d4(TUN_GUE)), 1468);
  assert.is(tunnelInnerMtu(1500, d4(TUN_GRE)), 1476);
  assert.is(tunnelInnerMtu(1500, d4(TUN_GRE, TUN_F_CSUM)), 1472);
  assert.is(tunnelInnerMtu(1500, d6(TUN_IPIP)), 1460);
  assert.is(tunnelInnerMtu(88, d4(TUN_IPIP)), 68);
  assert.is(tunnelInnerMtu(87, d4(TUN_IPIP)), -1);
  assert.is(tunnelInnerMtu(1320, d6(TUN_IPIP)), 1280);
  assert.is(tunnelInnerMtu(1319, d6(TUN_IPIP)), -1);
});
mtu("DF IPv4 too big -> the MTU to report; without DF -> send; IPv6 too big -> the MTU", () => {
  const big = buildIp4({ src: CL, dst: VIP, proto: "tcp", sport: 1, dport: 80, payload: new Uint8Array(1441) }); // 1481 bytes, DF
  assert.is(big.length, 1481);
  assert.is(tunnelMtuCheck(big, 0, big.length, 1480), 1480);
  assert.is(tunnelMtuCheck(big, 0, big.length, 1481), 0);
  big[6] = 0;
  assert.is(tunnelMtuCheck(big, 0, big.length, 1480), 0, "no DF: the outer packet is fragmented");
  const big6 = buildIp6({ src: CL6, dst: VIP6, sport: 1, dport: 2, payload: new Uint8Array(1433) }); // 1481 bytes
  assert.is(tunnelMtuCheck(big6, 0, big6.length, 1480), 1480);
  assert.is(tunnelMtuCheck(big6, 0, big6.length, 1500), 0);
});

// --- ICMP errors about tunnel packets (reference §5.5) -------------------------------------

const icmp = suite("forward/tunnel: ICMP errors quoting our tunnel packets");
icmp("the client's packet is found behind IPIP, GUE (with options) and GRE (with checksum) quotes", () => {
  for (const d of [d4(TUN_IPIP), d4(TUN_GUE), d4(TUN_GUE, TUN_F_CSUM), d4(TUN_GRE), d4(TUN_GRE, TUN_F_CSUM)]) {
    const { f, s, end } = encap(INNER4, d);
    // A router quotes 576 bytes at most; here: the outer header, the tunnel header and 28 bytes.
    const qlen = tunnelOverhead(d) + 28;
    assert.is(tunnelIcmpInner(f.u8, s, qlen, 6080), HEADROOM);
    assert.is(tunnelIcmpInner(f.u8, s, end - s, -1), HEADROOM, "any GUE port");
    assert.is(tunnelIcmpInner(f.u8, s, tunnelOverhead(d) + 19, 6080), -1, "inner header not fully quoted");
  }
});
icmp("not ours: other GUE port, GUE control or IPv6 payload, GRE IPv6 or routing, TCP, a non-first fragment, IPv6 inner", () => {
  let w = encap(INNER4, d4(TUN_GUE));
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 60, 6081), -1);
  w.f.u8[w.s + 28] = 0x20;
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 60, 6080), -1);
  w = encap(INNER6, d4(TUN_GUE));
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 80, 6080), -1);
  w = encap(INNER6, d4(TUN_GRE));
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 80, 6080), -1);
  w = encap(INNER6, d4(TUN_IPIP));
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 80, 6080), -1, "protocol 41: IPVS handles only IPv4 inner here");
  w = encap(INNER4, d4(TUN_GRE));
  w.f.u8[w.s + 20] = 0x40;
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 60, 6080), -1);
  w = encap(INNER4, d4(TUN_IPIP));
  w.f.u8[w.s + 9] = 6;
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 60, 6080), -1);
  w = encap(INNER4, d4(TUN_IPIP));
  w.f.u8[w.s + 7] = 0x10; // fragment offset 16 (x8 bytes)
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 60, 6080), -1);
  w.f.u8[w.s + 7] = 0;
  w.f.u8[w.s + 6] = 0x20; // MF only: a first fragment still has the headers
  assert.is(tunnelIcmpInner(w.f.u8, w.s, 60, 6080), HEADROOM);
});
icmp("the MTU told to the client loses the overhead, unless that goes below 68", () => {
  assert.is(tunnelIcmpMtu(1400, 20), 1380);
  assert.is(tunnelIcmpMtu(1400, 32), 1368);
  assert.is(tunnelIcmpMtu(89, 20), 69);
  assert.is(tunnelIcmpMtu(88, 20), 88);
});

// --- seeded differential round trip -------------------------------------------------------

const diff = suite("forward/tunnel: 2000 seeded random packets, every type, both families");
diff("encapsulate, verify every checksum and field from scratch, decapsulate to the same bytes", () => {
  const r = rng(7);
  const f = Frame.alloc(HEADROOM + 1600);
  const dests = [4, 6].flatMap((af) => [TUN_IPIP, TUN_GUE, TUN_GRE].flatMap((t) =>
    [0, TUN_F_CSUM, TUN_F_REMCSUM].map((fl) => (af === 4 ? d4(t, fl, 1 + Math.floor(r() * 65535)) : d6(t, fl, 1 + Math.floor(r() * 65535))))));
  for (let i = 0; i < 2000; i++) {
    const payload = new Uint8Array(Math.floor(r() * 1400));
    for (let k = 0; k < payload.length; k++) payload[k] = r() * 256;
    const proto = r() < 0.5 ? "udp" : "tcp";
    const inner = r() < 0.5
      ? buildIp4({ src: CL, dst: VIP, proto, sport: 1 + Math.floor(r() * 65535), dport: 80, payload, ttl: 1 + Math.floor(r() * 255), id: i })
      : buildIp6({ src: CL6, dst: VIP6, proto, sport: 1 + Math.floor(r() * 65535), dport: 80, payload, hops: 1 + Math.floor(r() * 255), tc: Math.floor(r() * 256) });
    const d = dests[i % dests.length];
    f.u8.fill(0xa5, 0, HEADROOM);
    f.u8.set(inner, HEADROOM);
    const end = HEADROOM + inner.length;
    const hash = (r() * 4294967296) | 0;
    const s = tunnelEncap(f, HEADROOM, inner.length, d, i, hash);
    assert.is(s, HEADROOM - tunnelOverhead(d));
    assert.ok(outerChecksumsValid(f.u8, s, end), `checksums, case ${i}`);
    const u8 = f.u8;
    const innerTtl = inner[0] >> 4 === 4 ? inner[8] : inner[7];
    assert.is(d.af === 4 ? u8[s + 8] : u8[s + 7], innerTtl);
    if (d.type === TUN_GUE) {
      const l4 = s + (d.af === 4 ? 20 : 40);
      assert.is((u8[l4] << 8) | u8[l4 + 1], gueSourcePort(hash));
      assert.is((u8[l4 + 2] << 8) | u8[l4 + 3], d.port);
      assert.is((u8[l4 + 6] | u8[l4 + 7]) !== 0, d.flags !== 0, "UDP checksum only with csum/remcsum");
    }
    assert.equal(decapAny(u8, s, end), inner);
    assert.ok(inner[0] >> 4 === 4 ? checksumsValid(inner) : ip6ChecksumValid(inner));
  }
});

// --- allocation -----------------------------------------------------------------------------

const alloc = suite("forward/tunnel: no allocation per packet");
alloc("100 000 encapsulations of each kind leave the heap object count flat", () => {
  const f = Frame.alloc(HEADROOM + 256);
  const dests = [d4(TUN_IPIP), d4(TUN_GUE, TUN_F_CSUM), d4(TUN_GRE, TUN_F_CSUM), d6(TUN_GUE, TUN_F_CSUM), d6(TUN_IPIP)];
  const run = (n: number) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      f.u8.set(INNER4, HEADROOM); // typed-array copy from an existing array: no allocation
      acc += tunnelEncap(f, HEADROOM, INNER4.length, dests[i % dests.length], i, i * 0x9e3779b1);
      acc += tunnelMtuCheck(f.u8, HEADROOM, INNER4.length, 1400);
    }
    return acc;
  };
  run(20_000); // warm up: JIT tiers settle first
  const before = heapStats().objectCount;
  const acc = run(100_000);
  const grown = heapStats().objectCount - before;
  assert.ok(acc > 0);
  assert.ok(grown <= 16, `heap grew by ${grown} objects over 100k packets`);
});

golden.run();
rules.run();
sport.run();
mtu.run();
icmp.run();
diff.run();
alloc.run();
