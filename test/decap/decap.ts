// The real server's decapsulation, without sockets: datagrams as the kernel hands them to a
// raw IPv4 socket (outer header included), to an IPv6 raw socket (payload only) and to a
// UDP socket (GUE payload), built with forward/tunnel.ts or by hand; every drop reason;
// RFC 6040 ECN decapsulation; GUE remote checksum; the option parser; no allocation.
import { heapStats } from "bun:jsc";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DECAP_DROP, DECAP_DROP_NAMES, Decapper, PAYLOAD_GUE, PAYLOAD_IPIP, PAYLOAD_IPV6, VipSet } from "../../src/decap/decap.ts";
import { DecapOptionError, decapArgs, parseDecapOptions } from "../../src/decap/options.ts";
import { TUN_F_CSUM, TUN_GRE, TUN_GUE, TUN_IPIP, tunnelDest, tunnelEncap } from "../../src/forward/tunnel.ts";
import { csumAdd, csumFold, ipv4PseudoSum } from "../../src/wire/checksum.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { IPPROTO_IPIP, gueWriteRemcsum } from "../../src/wire/gue.ts";
import { buildIp4, checksumsValid, ip4 } from "../fixtures/builder.ts";
import { buildIp6, ip6 } from "../fixtures/ipv6.ts";

const VIP = "198.18.0.100";
const VIP6 = "2001:2:0:100::100";
const CL = "198.18.2.2";
const CL6 = "2001:2:0:2::2";
const vips = () => new VipSet([ip4(VIP)], [ip6(VIP6)]);
const d4 = (t: number, fl = 0) => tunnelDest(4, t, fl, 6080, [ip4("198.18.1.1")], [ip4("198.18.1.11")]);
const d6 = (t: number, fl = 0) => tunnelDest(6, t, fl, 6080, ip6("2001:2:1::1"), ip6("2001:2:1::11"));

const INNER4 = buildIp4({ src: CL, dst: VIP, proto: "udp", sport: 40000, dport: 53, payload: "question" });
const INNER6 = buildIp6({ src: CL6, dst: VIP6, sport: 40000, dport: 53, payload: "question" });

/** Encapsulates `inner`; returns the frame and the outer packet's bounds. */
function wrap(inner: Uint8Array, d: ReturnType<typeof d4>): { u8: Uint8Array; s: number; end: number } {
  const f = Frame.alloc(HEADROOM + inner.length + 8);
  f.u8.set(inner, HEADROOM);
  const s = tunnelEncap(f, HEADROOM, inner.length, d, 7, 99);
  assert.ok(s >= 0);
  return { u8: f.u8, s, end: HEADROOM + inner.length };
}

/** What each kind of socket would read, handed to the matching Decapper entry. */
function receive(dc: Decapper, u8: Uint8Array, s: number, end: number): number {
  const v = u8[s] >> 4;
  const ihl = v === 4 ? (u8[s] & 0x0f) * 4 : 40;
  const proto = v === 4 ? u8[s + 9] : u8[s + 6];
  if (proto === 17) return dc.fromPayload(u8, s + ihl + 8, end - s - ihl - 8, PAYLOAD_GUE, 0);
  if (v === 4) return dc.fromIp4(u8, s, end - s);
  return dc.fromPayload(u8, s + 40, end - s - 40, proto, 0);
}

const ok = suite("decap: inner packets found where the kernel hands them over");
for (const [name, d] of [
  ["IPIP", d4(TUN_IPIP)], ["GRE", d4(TUN_GRE)], ["GRE csum", d4(TUN_GRE, TUN_F_CSUM)], ["GUE", d4(TUN_GUE)],
  ["GUE csum", d4(TUN_GUE, TUN_F_CSUM)], ["IPv6 outer IPIP", d6(TUN_IPIP)], ["IPv6 outer GRE", d6(TUN_GRE)],
  ["IPv6 outer GUE", d6(TUN_GUE)],
] as const) {
  ok(`${name}: IPv4 and IPv6 inner`, () => {
    for (const inner of [INNER4, INNER6]) {
      const dc = new Decapper(vips());
      const { u8, s, end } = wrap(inner, d);
      assert.is(receive(dc, u8, s, end), HEADROOM);
      assert.is(dc.innerLen, inner.length);
      assert.equal(u8.subarray(HEADROOM, end), inner);
    }
  });
}
ok("trailing bytes after the inner packet are not injected", () => {
  const dc = new Decapper(vips());
  const buf = new Uint8Array(20 + INNER4.length + 6);
  const { u8, s, end } = wrap(INNER4, d4(TUN_IPIP));
  buf.set(u8.subarray(s, end));
  // Outer total length covers the padding (a sender's padding); the inner length does not.
  buf[3] += 6;
  buf[11] = buf[10] = 0;
  const c = ~csumFold(csumAdd(buf, 0, 20, 0)) & 0xffff;
  buf[10] = c >> 8; buf[11] = c & 0xff;
  assert.is(dc.fromIp4(buf, 0, buf.length), 20);
  assert.is(dc.innerLen, INNER4.length);
});
ok("GUE version 1 (direct IP, no GUE header)", () => {
  const dc = new Decapper(vips());
  assert.is(dc.fromPayload(INNER4, 0, INNER4.length, PAYLOAD_GUE, 0), 0);
  assert.is(dc.innerLen, INNER4.length);
  assert.is(dc.fromPayload(INNER6, 0, INNER6.length, PAYLOAD_GUE, 0), 0);
});
ok("GUE remote checksum option: the inner UDP checksum is completed", () => {
  const pkt = buildIp4({ src: CL, dst: VIP, proto: "udp", sport: 40000, dport: 53, payload: "partial" });
  const full = (pkt[26] << 8) | pkt[27];
  const partial = csumFold(ipv4PseudoSum(ip4(CL), ip4(VIP), 17, pkt.length - 20));
  pkt[26] = partial >> 8; pkt[27] = partial & 0xff;
  const buf = new Uint8Array(12 + pkt.length);
  gueWriteRemcsum(buf, 0, IPPROTO_IPIP, 20, 26);
  buf.set(pkt, 12);
  const dc = new Decapper(vips());
  assert.is(dc.fromPayload(buf, 0, buf.length, PAYLOAD_GUE, 0), 12);
  assert.is((buf[38] << 8) | buf[39], full);
  assert.ok(checksumsValid(buf.subarray(12)));
});

// ---

const drop = suite("decap: every drop reason");
drop("not a VIP (IPv4, IPv6), and an empty VIP set", () => {
  const other = buildIp4({ src: CL, dst: "198.18.0.101", proto: "udp", sport: 1, dport: 2 });
  const other6 = buildIp6({ src: CL6, dst: "2001:2:0:100::101", sport: 1, dport: 2 });
  const dc = new Decapper(vips());
  for (const p of [other, other6]) {
    const { u8, s, end } = wrap(p, d4(TUN_IPIP));
    assert.is(dc.fromIp4(u8, s, end - s), -DECAP_DROP.NOT_VIP);
  }
  const empty = new Decapper(new VipSet([], []));
  const { u8, s, end } = wrap(INNER4, d4(TUN_IPIP));
  assert.is(empty.fromIp4(u8, s, end - s), -DECAP_DROP.NOT_VIP);
});
drop("malformed: outer header, inner checksum, inner length, GRE checksum, GUE header", () => {
  const dc = new Decapper(vips());
  let w = wrap(INNER4, d4(TUN_IPIP));
  w.u8[w.s + 10] ^= 1; // outer IPv4 checksum
  assert.is(dc.fromIp4(w.u8, w.s, w.end - w.s), -DECAP_DROP.MALFORMED);
  w = wrap(INNER4, d4(TUN_IPIP));
  w.u8[HEADROOM + 10] ^= 1; // inner IPv4 checksum
  assert.is(dc.fromIp4(w.u8, w.s, w.end - w.s), -DECAP_DROP.MALFORMED);
  w = wrap(INNER4, d4(TUN_IPIP));
  assert.is(dc.fromPayload(w.u8, HEADROOM, INNER4.length - 1, PAYLOAD_IPIP, 0), -DECAP_DROP.MALFORMED, "inner truncated");
  assert.is(dc.fromPayload(w.u8, HEADROOM, 0, PAYLOAD_IPIP, 0), -DECAP_DROP.MALFORMED, "empty");
  w = wrap(INNER4, d4(TUN_GRE, TUN_F_CSUM));
  w.u8[w.end - 1] ^= 0x40; // payload byte: GRE checksum no longer matches
  assert.is(dc.fromIp4(w.u8, w.s, w.end - w.s), -DECAP_DROP.MALFORMED);
  w = wrap(INNER4, d4(TUN_GUE));
  w.u8[w.s + 28] = 0x80; // GUE version 2
  assert.is(receive(dc, w.u8, w.s, w.end), -DECAP_DROP.MALFORMED);
  w = wrap(INNER6, d6(TUN_IPIP));
  assert.is(dc.fromPayload(w.u8, HEADROOM, 39, PAYLOAD_IPV6, 0), -DECAP_DROP.MALFORMED, "IPv6 header truncated");
});
drop("unknown protocol: GUE control, GUE proto 17, GRE type 0x6558, version mismatch, other outer protocols", () => {
  const dc = new Decapper(vips());
  let w = wrap(INNER4, d4(TUN_GUE));
  w.u8[w.s + 28] = 0x20;
  assert.is(receive(dc, w.u8, w.s, w.end), -DECAP_DROP.UNKNOWN_PROTO, "control message");
  w = wrap(INNER4, d4(TUN_GUE));
  w.u8[w.s + 29] = 17;
  assert.is(receive(dc, w.u8, w.s, w.end), -DECAP_DROP.UNKNOWN_PROTO, "GUE proto 17");
  w = wrap(INNER4, d4(TUN_GRE));
  w.u8[w.s + 22] = 0x65; w.u8[w.s + 23] = 0x58; // transparent Ethernet bridging
  w.u8[w.s + 10] = w.u8[w.s + 11] = 0;
  const c = ~csumFold(csumAdd(w.u8, w.s, 20, 0)) & 0xffff;
  w.u8[w.s + 10] = c >> 8; w.u8[w.s + 11] = c & 0xff;
  assert.is(dc.fromIp4(w.u8, w.s, w.end - w.s), -DECAP_DROP.UNKNOWN_PROTO, "GRE 0x6558");
  assert.is(dc.fromPayload(INNER6, 0, INNER6.length, PAYLOAD_IPIP, 0), -DECAP_DROP.UNKNOWN_PROTO, "IPv6 where IPv4 was announced");
  assert.is(dc.fromPayload(INNER4, 0, INNER4.length, PAYLOAD_IPV6, 0), -DECAP_DROP.UNKNOWN_PROTO, "IPv4 where IPv6 was announced");
  assert.is(dc.fromPayload(INNER4, 0, INNER4.length, 6, 0), -DECAP_DROP.UNKNOWN_PROTO, "outer protocol TCP");
});
drop("names line up with the numbers", () => {
  assert.is(DECAP_DROP_NAMES[DECAP_DROP.NOT_VIP], "not_vip");
  assert.is(DECAP_DROP_NAMES[DECAP_DROP.TX_ERROR], "tx_error");
  assert.is(Object.keys(DECAP_DROP).length + 1, DECAP_DROP_NAMES.length);
});

// ---

const ecn = suite("decap: ECN (RFC 6040 §4.2, Linux INET_ECN_decapsulate)");
ecn("outer CE marks an ECT inner packet CE (checksum patched); over not-ECT it is dropped", () => {
  for (const [innerEcn, want] of [[0, -DECAP_DROP.ECN], [1, 3], [2, 3], [3, 3]]) {
    const inner = buildIp4({ src: CL, dst: VIP, proto: "udp", sport: 1, dport: 2 });
    inner[1] = 0xb8 | innerEcn;
    inner[10] = inner[11] = 0;
    const c = ~csumFold(csumAdd(inner, 0, 20, 0)) & 0xffff;
    inner[10] = c >> 8; inner[11] = c & 0xff;
    const dc = new Decapper(vips());
    const r = dc.fromPayload(inner, 0, inner.length, PAYLOAD_IPIP, 3);
    if (want < 0) assert.is(r, want);
    else {
      assert.is(r, 0);
      assert.is(inner[1], 0xb8 | want);
      assert.ok(checksumsValid(inner), "header checksum patched");
    }
  }
  const v6 = buildIp6({ src: CL6, dst: VIP6, sport: 1, dport: 2, tc: 0x02 });
  assert.is(new Decapper(vips()).fromPayload(v6, 0, v6.length, PAYLOAD_IPV6, 3), 0);
  assert.is((v6[1] >> 4) & 3, 3, "IPv6 inner marked CE");
  const v6n = buildIp6({ src: CL6, dst: VIP6, sport: 1, dport: 2, tc: 0 });
  assert.is(new Decapper(vips()).fromPayload(v6n, 0, v6n.length, PAYLOAD_IPV6, 3), -DECAP_DROP.ECN);
});
ecn("the outer ECN of an IPv4 raw datagram is read from its TOS byte", () => {
  const { u8, s, end } = wrap(INNER4, d4(TUN_IPIP));
  u8[s + 1] = 3;
  u8[s + 10] = u8[s + 11] = 0;
  const c = ~csumFold(csumAdd(u8, s, 20, 0)) & 0xffff;
  u8[s + 10] = c >> 8; u8[s + 11] = c & 0xff;
  assert.is(new Decapper(vips()).fromIp4(u8, s, end - s), -DECAP_DROP.ECN, "inner not-ECT under CE");
});

// ---

const opt = suite("decap: options");
opt("defaults, lists, repetition, environment, and the command line winning", () => {
  const o = parseDecapOptions([], {});
  assert.equal([o.foreground, o.tun, o.vipText, o.guePorts, o.log, o.pidFile],
    [false, "tslbdecap0", [], [], "/run/tslb/decap.log", "/run/tslb/decap.pid"]);
  const p = parseDecapOptions(["--foreground", "--vip", `${VIP},${VIP6}`, "--vip=198.18.0.101", "--gue-port", "6080,6081",
    "--gue-port=6080", "--tun", "dc0"], { TSLB_DECAP_VIP: "198.18.9.9", TSLB_DECAP_TUN: "envtun" });
  assert.equal(p.vip4, [ip4(VIP), ip4("198.18.0.101")]);
  assert.equal(p.vip6, [ip6(VIP6)]);
  assert.equal(p.guePorts, [6080, 6081]);
  assert.is(p.tun, "dc0");
  const e = parseDecapOptions([], { TSLB_DECAP_VIP: "198.18.9.9", TSLB_DECAP_GUE_PORT: "7000", TSLB_DECAP_TUN: "envtun" });
  assert.equal([e.vipText, e.guePorts, e.tun], [["198.18.9.9"], [7000], "envtun"]);
  assert.equal(decapArgs(p), ["--decap", "--foreground", "--tun", "dc0", "--log", "/run/tslb/decap.log", "--pid-file",
    "/run/tslb/decap.pid", "--vip", `${VIP},${VIP6},198.18.0.101`, "--gue-port", "6080,6081"]);
});
opt("errors", () => {
  const bad = (argv: string[], re: RegExp) => assert.throws(() => parseDecapOptions(argv, {}), (e: Error) => e instanceof DecapOptionError && re.test(e.message));
  bad(["--vip", "198.18.0"], /not an IPv4 or IPv6 address/);
  bad(["--gue-port", "0"], /not a port/);
  bad(["--gue-port", "65536"], /not a port/);
  bad(["--gue-port", "6o80"], /not a port/);
  bad(["--tun", "a-very-long-device-name"], /1-15 bytes/);
  bad(["--vip"], /needs a value/);
  bad(["-L"], /unknown option -L/);
});

// ---

const alloc = suite("decap: no allocation per packet");
alloc("100 000 datagrams of every kind leave the heap object count flat", () => {
  const frames = [d4(TUN_IPIP), d4(TUN_GRE, TUN_F_CSUM), d4(TUN_GUE), d6(TUN_IPIP)].map((d) => wrap(INNER4, d));
  const notVip = wrap(buildIp4({ src: CL, dst: "198.18.0.101", proto: "udp", sport: 1, dport: 2 }), d4(TUN_IPIP));
  const dc = new Decapper(vips());
  const run = (n: number) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const w = frames[i & 3];
      acc += receive(dc, w.u8, w.s, w.end) + dc.innerLen;
      acc += dc.fromIp4(notVip.u8, notVip.s, notVip.end - notVip.s);
    }
    return acc;
  };
  run(20_000);
  const before = heapStats().objectCount;
  const acc = run(100_000);
  const grown = heapStats().objectCount - before;
  assert.ok(acc !== 0);
  assert.ok(grown <= 16, `heap grew by ${grown} objects`);
});

ok.run();
drop.run();
ecn.run();
opt.run();
alloc.run();
