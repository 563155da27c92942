// Golden packets for the NAT64/NAT46 header translation (forward/xlat): every translated
// packet is compared byte for byte with the same packet built from scratch in the other
// family by the fixture builder, plus a seeded round-trip fuzz and an allocation check.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { assertNoHeapGrowth } from "../helpers/alloc.ts";
import { XLAT_MAX_L4, xlat4to6, xlat6to4 } from "../../src/forward/xlat.ts";
import { formatIPv6 } from "../../src/wire/addr.ts";
import { csumAdd, csumFold } from "../../src/wire/checksum.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { FRAG_FIRST, Pkt, parseIp } from "../../src/wire/pkt.ts";
import {
  buildIp4, buildIp6, checksumsValid, checksumsValid6, ip4, ip6, l4Csum6, rng, type Ip4Spec,
} from "../fixtures/builder.ts";

const x = suite("xlat");

const CLIENT = "198.18.0.2";
const VIP = "198.18.1.1";
const LADDR6 = "2001:db8:ff::1";
const RS6 = "2001:db8:1::10";
const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;

const f = Frame.alloc(HEADROOM + 70000);
const p = new Pkt();

/** Puts `b` at `at` in the frame (zeroing the headroom) and parses it. */
function load(b: Uint8Array, at = HEADROOM): number {
  f.u8.fill(0, 0, at + b.length + 64);
  f.u8.set(b, at);
  return parseIp(p, f, at, b.length);
}

function out(): Uint8Array {
  return f.u8.slice(p.start, p.start + p.len);
}

/** buildIp6 leaves the TCP ack at 0 where buildIp4 writes 2000 for ACK segments: align them. */
function build6(s: Ip4Spec & { ext?: number }): Uint8Array {
  const b = buildIp6(s);
  if ((s.proto ?? "tcp") === "tcp" && ((s.flags ?? SYN) & ACK)) {
    const l4 = 40 + (s.ext ?? 0);
    const dv = new DataView(b.buffer);
    dv.setUint32(l4 + 8, 2000);
    dv.setUint16(l4 + 16, l4Csum6(b, l4, 6));
  }
  return b;
}

/** Sets the IPv4 TOS and refreshes the header checksum. */
function withTos4(b: Uint8Array, tos: number): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset);
  b[1] = tos;
  const ihl = (b[0] & 0x0f) * 4;
  dv.setUint16(10, 0);
  dv.setUint16(10, ~csumFold(csumAdd(b, 0, ihl, 0)) & 0xffff);
  return b;
}

/** Sets the IPv6 traffic class. */
function withTc6(b: Uint8Array, tc: number): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset);
  dv.setUint32(0, (0x60000000 | (tc << 20)) >>> 0);
  return b;
}

/** Inserts `n` bytes (multiple of 4) of IPv4 options (NOPs, then an EOL) after the fixed header. */
function withOptions(b: Uint8Array, n: number): Uint8Array {
  const r = new Uint8Array(b.length + n);
  r.set(b.subarray(0, 20));
  r.fill(1, 20, 20 + n); // NOP
  r[20 + n - 1] = 0; // EOL
  r.set(b.subarray(20), 20 + n);
  const dv = new DataView(r.buffer);
  r[0] = 0x40 | ((20 + n) >> 2);
  dv.setUint16(2, r.length);
  return withTos4(r, r[1]);
}

function args6(a: string): [number, number, number, number] {
  const w = ip6(a);
  return [w[0], w[1], w[2], w[3]];
}

function to6(sAddr: string, dAddr: string, sport: number, dport: number): number {
  const [s0, s1, s2, s3] = args6(sAddr);
  const [d0, d1, d2, d3] = args6(dAddr);
  return xlat4to6(f, p, s0, s1, s2, s3, d0, d1, d2, d3, sport, dport);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
}

function golden(got: Uint8Array, want: Uint8Array, what: string) {
  assert.is(got.length, want.length, `${what}: length`);
  assert.is(hex(got), hex(want), what);
}

x("TCP v4→v6 with payload: every field and the checksum", () => {
  const spec = { sport: 40000, dport: 80, flags: ACK | PSH, payload: "GET / HTTP/1.1\r\n\r\n", ttl: 57 };
  const b = withTos4(buildIp4({ ...spec, src: CLIENT, dst: VIP }), 0xb8);
  assert.is(load(b), 0);
  const want = withTc6(build6({ ...spec, src: LADDR6, dst: RS6, sport: 61000, dport: 8080 }), 0xb8);
  const l4 = p.l4;
  assert.is(to6(LADDR6, RS6, 61000, 8080), 0);
  golden(out(), want, "v6 packet");
  assert.is(p.start, l4 - 40);
  assert.is(p.l3, p.start);
  assert.is(p.l4, l4);
  assert.is(p.len, want.length);
  assert.ok(checksumsValid6(out()));
  // The parsed original tuple stays for the caller.
  assert.is(p.ipv, 4);
  assert.is(p.src0, ip4(CLIENT));
  assert.is(p.dst0, ip4(VIP));
  assert.is(p.sport, 40000);
  assert.is(p.dport, 80);
  // The result parses as the expected IPv6 packet.
  const q = new Pkt();
  assert.is(parseIp(q, f, p.start, p.len), 0);
  assert.is(q.ipv, 6);
  assert.is(q.sport, 61000);
  assert.is(q.dport, 8080);
  assert.is(q.l4csum, p.l4csum);
});

x("TCP v6→v4 with payload: every field, header checksum, L4 checksum", () => {
  const spec = { sport: 8080, dport: 61000, flags: ACK | PSH, payload: "HTTP/1.1 200 OK\r\n\r\nhello", ttl: 63 };
  const b = withTc6(build6({ ...spec, src: RS6, dst: LADDR6 }), 0x28);
  assert.is(load(b), 0);
  const l4 = p.l4;
  const want = withTos4(buildIp4({ ...spec, src: VIP, dst: CLIENT, sport: 80, dport: 40000, id: 0xbeef }), 0x28);
  assert.is(xlat6to4(f, p, ip4(VIP), ip4(CLIENT), 80, 40000, 0xbeef), 0);
  golden(out(), want, "v4 packet");
  assert.is(p.start, l4 - 20);
  assert.is(p.l3, p.start);
  assert.is(p.len, want.length);
  assert.ok(checksumsValid(out()));
  assert.is(p.ipv, 6);
  assert.equal([p.src0, p.src1, p.src2, p.src3], ip6(RS6));
  assert.is(p.sport, 8080);
});

x("UDP both ways", () => {
  const payload = "dns?query\x00\x01";
  const b4 = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 5353, dport: 53, payload, ttl: 40 });
  assert.is(load(b4), 0);
  assert.is(to6(LADDR6, RS6, 1024, 5300), 0);
  const w6 = buildIp6({ src: LADDR6, dst: RS6, proto: "udp", sport: 1024, dport: 5300, payload, ttl: 40 });
  golden(out(), w6, "udp v4→v6");

  const r6 = buildIp6({ src: RS6, dst: LADDR6, proto: "udp", sport: 5300, dport: 1024, payload: "answer!", ttl: 64 });
  assert.is(load(r6), 0);
  assert.is(xlat6to4(f, p, ip4(VIP), ip4(CLIENT), 53, 5353, 7), 0);
  const w4 = buildIp4({ src: VIP, dst: CLIENT, proto: "udp", sport: 53, dport: 5353, payload: "answer!", ttl: 64, id: 7 });
  golden(out(), w4, "udp v6→v4");
});

x("UDP without checksum (0) v4→v6 gets a full computed checksum", () => {
  const payload = "no checksum here";
  const b = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 4000, dport: 53, payload, noUdpCsum: true });
  assert.is(new DataView(b.buffer).getUint16(26), 0);
  assert.is(load(b), 0);
  assert.is(to6(LADDR6, RS6, 1025, 53), 0);
  const want = buildIp6({ src: LADDR6, dst: RS6, proto: "udp", sport: 1025, dport: 53, payload });
  golden(out(), want, "computed checksum");
  assert.is.not(f.dv.getUint16(p.l4csum), 0);
  assert.ok(checksumsValid6(out()));
});

x("UDP whose checksum works out to 0 is sent as 0xffff (both ways)", () => {
  // Search for a source port that makes the IPv6 checksum 0xffff (computed value 0).
  for (let port = 1; port < 65536; port++) {
    const w = buildIp6({ src: LADDR6, dst: RS6, proto: "udp", sport: port, dport: 53, payload: "z" });
    if (new DataView(w.buffer).getUint16(46) !== 0xffff) continue;
    const b = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 4000, dport: 53, payload: "z" });
    assert.is(load(b), 0);
    assert.is(to6(LADDR6, RS6, port, 53), 0);
    golden(out(), w, "0xffff v4→v6");
    const b2 = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 4000, dport: 53, payload: "z", noUdpCsum: true });
    assert.is(load(b2), 0);
    assert.is(to6(LADDR6, RS6, port, 53), 0);
    golden(out(), w, "0xffff v4→v6 computed");
    return;
  }
  assert.unreachable("no port gives a zero checksum");
});

x("IPv6 UDP with checksum 0 (invalid) becomes IPv4 'no checksum'", () => {
  const b = buildIp6({ src: RS6, dst: LADDR6, proto: "udp", sport: 53, dport: 1025, payload: "x" });
  new DataView(b.buffer).setUint16(46, 0);
  assert.is(load(b), 0);
  assert.is(xlat6to4(f, p, ip4(VIP), ip4(CLIENT), 53, 4000, 1), 0);
  const want = buildIp4({ src: VIP, dst: CLIENT, proto: "udp", sport: 53, dport: 4000, payload: "x", id: 1, noUdpCsum: true });
  golden(out(), want, "no checksum");
});

x("IPv4 options are dropped", () => {
  for (const n of [4, 8, 40]) {
    const spec = { sport: 40001, dport: 443, flags: SYN, payload: "opts" };
    const b = withOptions(buildIp4({ ...spec, src: CLIENT, dst: VIP }), n);
    assert.is(load(b), 0, `parse ihl ${20 + n}`);
    assert.is(p.l4 - p.l3, 20 + n);
    assert.ok(checksumsValid(b));
    assert.is(to6(LADDR6, RS6, 62000, 8443), 0);
    golden(out(), build6({ ...spec, src: LADDR6, dst: RS6, sport: 62000, dport: 8443 }), `options ${n}`);
    assert.is(p.start, HEADROOM + 20 + n - 40);
  }
});

x("IPv6 extension headers (hop-by-hop) are dropped", () => {
  for (const ext of [8, 16]) {
    for (const proto of ["tcp", "udp"] as const) {
      const spec = { proto, sport: 8080, dport: 62000, flags: SYN | ACK, payload: "ext!", ext };
      const b = build6({ ...spec, src: RS6, dst: LADDR6 });
      assert.is(load(b), 0);
      assert.is(p.l4 - p.l3, 40 + ext);
      assert.is(xlat6to4(f, p, ip4(VIP), ip4(CLIENT), 443, 40001, 0x4242), 0);
      const want = buildIp4({ ...spec, src: VIP, dst: CLIENT, sport: 443, dport: 40001, id: 0x4242 });
      golden(out(), want, `ext ${ext} ${proto}`);
      assert.is(p.start, HEADROOM + 40 + ext - 20);
    }
  }
});

x("fragments are refused and left untouched", () => {
  const b = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 1, dport: 53, payload: "frag" });
  new DataView(b.buffer).setUint16(6, 0x2000); // MF, offset 0: a first fragment
  withTos4(b, 0);
  assert.is(load(b), 0);
  assert.is(p.frag, FRAG_FIRST);
  const before = f.u8.slice();
  const [start, l3, len] = [p.start, p.l3, p.len];
  assert.is(to6(LADDR6, RS6, 2, 53), DROP.FRAGMENT);
  assert.ok(f.u8.every((v, i) => v === before[i]), "frame unchanged");
  assert.equal([p.start, p.l3, p.len], [start, l3, len]);

  // IPv6: turn an 8-byte hop-by-hop header into a fragment header (first fragment, M set).
  const b6 = buildIp6({ src: RS6, dst: LADDR6, proto: "udp", sport: 53, dport: 2, payload: "frag", ext: 8 });
  b6[6] = 44;
  b6.set([17, 0, 0, 1, 0, 0, 0, 9], 40);
  assert.is(load(b6), 0);
  assert.is(p.frag, FRAG_FIRST);
  const before6 = f.u8.slice();
  assert.is(xlat6to4(f, p, ip4(VIP), ip4(CLIENT), 53, 1, 0), DROP.FRAGMENT);
  assert.ok(f.u8.every((v, i) => v === before6[i]), "frame unchanged");
});

x("no headroom for the IPv6 header, and IPv6 payload too big for IPv4", () => {
  const b = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 });
  assert.is(load(b, 10), 0);
  const before = f.u8.slice(0, 200);
  assert.is(to6(LADDR6, RS6, 2, 80), DROP.TX_ERROR);
  assert.ok(f.u8.subarray(0, 200).every((v, i) => v === before[i]), "frame unchanged");
  assert.is(p.start, 10);
  // Exactly 20 bytes of headroom is enough (l4 − 40 = 0).
  assert.is(load(b, 20), 0);
  assert.is(to6(LADDR6, RS6, 2, 80), 0);
  assert.is(p.start, 0);
  assert.ok(checksumsValid6(out()));

  const big = buildIp6({ src: RS6, dst: LADDR6, proto: "udp", sport: 53, dport: 2, payload: new Uint8Array(XLAT_MAX_L4 - 8 + 1) });
  assert.is(load(big), 0);
  assert.is(xlat6to4(f, p, ip4(VIP), ip4(CLIENT), 53, 1, 0), DROP.TUNNEL_TOO_BIG);
  const fits = buildIp6({ src: RS6, dst: LADDR6, proto: "udp", sport: 53, dport: 2, payload: new Uint8Array(XLAT_MAX_L4 - 8).fill(7) });
  assert.is(load(fits), 0);
  assert.is(xlat6to4(f, p, ip4(VIP), ip4(CLIENT), 53, 1, 0), 0);
  assert.is(p.len, 65535);
  assert.ok(checksumsValid(out()));
});

x("round trip v4→v6→v4 restores the original", () => {
  for (const proto of ["tcp", "udp"] as const) {
    const b = withTos4(buildIp4({ src: CLIENT, dst: VIP, proto, sport: 40000, dport: 80, flags: ACK, payload: "round trip", ttl: 33, id: 0x5151 }), 0x10);
    assert.is(load(b), 0);
    assert.is(to6(LADDR6, RS6, 61000, 8080), 0);
    const mid = out();
    assert.ok(checksumsValid6(mid));
    assert.is(parseIp(p, f, p.start, p.len), 0);
    assert.is(xlat6to4(f, p, ip4(CLIENT), ip4(VIP), 40000, 80, 0x5151), 0);
    golden(out(), b, `${proto} round trip`);
    assert.is(p.start, HEADROOM);
  }
});

// ---- fuzz ----

function rand4(r: () => number): string {
  return [0, 0, 0, 0].map(() => Math.floor(r() * 256)).join(".");
}
function rand6(r: () => number): string {
  return formatIPv6([0, 0, 0, 0].map(() => (r() * 4294967296) | 0));
}

x("fuzz: 10 000 random packets round-trip with valid checksums", () => {
  const r = rng(0x64a7);
  const payload = new Uint8Array(1500);
  for (let i = 0; i < 10000; i++) {
    const proto = r() < 0.5 ? "tcp" : "udp";
    const pl = payload.subarray(0, Math.floor(r() * 1400));
    for (let k = 0; k < pl.length; k++) pl[k] = (r() * 256) | 0;
    const spec = {
      proto, sport: (r() * 65536) | 0, dport: (r() * 65536) | 0, flags: (r() * 64) | 0, payload: pl.slice(),
      ttl: (r() * 256) | 0, id: (r() * 65536) | 0, noUdpCsum: proto === "udp" && r() < 0.2,
    } as const;
    const [c4, v4, l6, s6] = [rand4(r), rand4(r), rand6(r), rand6(r)];
    const sp2 = (r() * 65536) | 0, dp2 = (r() * 65536) | 0;
    const tos = (r() * 256) | 0;
    const opt = r() < 0.3 ? 4 * (1 + Math.floor(r() * 10)) : 0;

    // v4 → v6 → v4
    let b = withTos4(buildIp4({ ...spec, src: c4, dst: v4 }), tos);
    if (opt) b = withOptions(b, opt);
    assert.is(load(b), 0);
    assert.is(to6(l6, s6, sp2, dp2), 0);
    const m6 = out();
    if (!checksumsValid6(m6)) assert.unreachable(`v4→v6 checksum, packet ${i}`);
    assert.is(parseIp(p, f, p.start, p.len), 0);
    assert.is(xlat6to4(f, p, ip4(c4), ip4(v4), spec.sport, spec.dport, spec.id), 0);
    const back = out();
    if (!checksumsValid(back)) assert.unreachable(`v6→v4 checksum, packet ${i}`);
    const ref = withTos4(buildIp4({ ...spec, src: c4, dst: v4, noUdpCsum: false }), tos);
    if (hex(back) !== hex(ref)) assert.unreachable(`v4 round trip differs, packet ${i}`);

    // v6 → v4 → v6
    const ext = r() < 0.3 ? 8 * (1 + Math.floor(r() * 3)) : 0;
    const b6 = withTc6(build6({ ...spec, src: s6, dst: l6, ext, noUdpCsum: false }), tos);
    assert.is(load(b6), 0);
    assert.is(xlat6to4(f, p, ip4(v4), ip4(c4), sp2, dp2, spec.id), 0);
    const m4 = out();
    if (!checksumsValid(m4)) assert.unreachable(`v6→v4 checksum, packet ${i}`);
    assert.is(parseIp(p, f, p.start, p.len), 0);
    assert.is(to6(s6, l6, spec.sport, spec.dport), 0);
    const back6 = out();
    if (!checksumsValid6(back6)) assert.unreachable(`v4→v6 checksum, packet ${i}`);
    const ref6 = withTc6(build6({ ...spec, src: s6, dst: l6, noUdpCsum: false }), tos);
    if (hex(back6) !== hex(ref6)) assert.unreachable(`v6 round trip differs, packet ${i}`);
  }
});

x("translation allocates nothing", () => {
  const a = buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK, payload: "x".repeat(100) });
  const b = buildIp6({ src: RS6, dst: LADDR6, proto: "udp", sport: 8080, dport: 61000, payload: "y".repeat(100), ext: 8 });
  const [s0, s1, s2, s3] = args6(LADDR6);
  const [d0, d1, d2, d3] = args6(RS6);
  const vip = ip4(VIP);
  const client = ip4(CLIENT);
  let bad = 0;
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      f.u8.set(a, HEADROOM);
      parseIp(p, f, HEADROOM, a.length);
      bad |= xlat4to6(f, p, s0, s1, s2, s3, d0, d1, d2, d3, 61000, 8080);
      bad |= xlat6to4(f, p, client, vip, 40000, 80, i);
      f.u8.set(b, HEADROOM);
      parseIp(p, f, HEADROOM, b.length);
      bad |= xlat6to4(f, p, vip, client, 80, 40000, i);
      bad |= xlat4to6(f, p, d0, d1, d2, d3, s0, s1, s2, s3, 8080, 61000);
    }
  };
  assertNoHeapGrowth(loop);
  assert.is(bad, 0);
});

x.run();
