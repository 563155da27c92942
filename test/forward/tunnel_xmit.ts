// Tunnel xmit on the director: MSS clamping, the ICMP answer for DF packets over the
// tunnel MTU (IPv4 fragmentation needed, IPv6 packet too big), TTL, encapsulation.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { TUN_IPIP, tunnelDest } from "../../src/forward/tunnel.ts";
import { TUNNEL_ICMP_SENT, tunnelXmit } from "../../src/forward/tunnel_xmit.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { Pkt, parseIp } from "../../src/wire/pkt.ts";
import { csumAdd, csumFold } from "../../src/wire/checksum.ts";
import { buildIp4, buildIp6, checksumsValid, checksumsValid6, ip4, ip6 } from "../fixtures/builder.ts";

const LB = "198.18.1.1", RS = "198.18.1.11", VIP = "198.18.0.100", CL = "198.18.2.2";
const tun4 = tunnelDest(4, TUN_IPIP, 0, 0, [ip4(LB)], [ip4(RS)]);

function load(b: Uint8Array): { f: Frame; p: Pkt } {
  const f = Frame.alloc(HEADROOM + 4096);
  f.u8.set(b, HEADROOM);
  const p = new Pkt();
  assert.is(parseIp(p, f, HEADROOM, b.length), 0);
  return { f, p };
}
/** A SYN with an MSS option of `mss` (data offset 6). */
function synWithMss(mss: number): Uint8Array {
  const base = buildIp4({ src: CL, dst: VIP, sport: 1000, dport: 80, flags: 0x02 });
  const b = new Uint8Array(base.length + 4);
  b.set(base.subarray(0, 40));
  const dv = new DataView(b.buffer);
  dv.setUint16(2, b.length);
  b[32] = 6 << 4;
  b[40] = 2; b[41] = 4; dv.setUint16(42, mss);
  dv.setUint16(10, 0); dv.setUint16(10, ~csumFold(csumAdd(b, 0, 20, 0)) & 0xffff);
  // TCP checksum from scratch.
  dv.setUint16(36, 0);
  const sum = csumAdd(b, 20, 24, ((ip4(CL) >>> 16) + (ip4(CL) & 0xffff) + (ip4(VIP) >>> 16) + (ip4(VIP) & 0xffff) + 6 + 24));
  dv.setUint16(36, ~csumFold(sum) & 0xffff);
  return b;
}

const t = suite("tunnel xmit");
t("encapsulates behind an IPIP header with the TTL decremented", () => {
  const { f, p } = load(buildIp4({ src: CL, dst: VIP, sport: 1, dport: 80, payload: "x", ttl: 9 }));
  assert.is(tunnelXmit(f, p, tun4, 1480, 7, false, false), 0);
  const out = f.u8.subarray(p.start, p.start + p.len);
  assert.is(out[9], 4, "outer protocol IPIP");
  assert.is(out[8], 8, "outer TTL copied from the decremented inner one");
  assert.is(out[20 + 8], 8, "inner TTL decremented");
  assert.ok(checksumsValid(out.subarray(20)), "inner checksums still valid");
  assert.is(csumFold(csumAdd(out, 0, 20, 0)), 0xffff, "outer header checksum");
});
t("--mss-clamp lowers a SYN's MSS to fit the tunnel, keeping the checksum right", () => {
  const { f, p } = load(synWithMss(1460));
  assert.is(tunnelXmit(f, p, tun4, 1480, 1, false, true), 0);
  const inner = f.u8.slice(p.start + 20, p.start + p.len);
  assert.is(new DataView(inner.buffer).getUint16(42), 1440);
  assert.ok(checksumsValid(inner));
  const { f: f2, p: p2 } = load(synWithMss(1200));
  tunnelXmit(f2, p2, tun4, 1480, 1, false, true);
  assert.is(new DataView(f2.u8.buffer).getUint16(p2.start + 20 + 42), 1200, "a smaller MSS is left alone");
});
t("a DF packet over the tunnel MTU becomes ICMP fragmentation-needed from the VIP to the client", () => {
  const big = buildIp4({ src: CL, dst: VIP, sport: 1000, dport: 80, flags: 0x10, payload: new Uint8Array(1460) });
  const { f, p } = load(big);
  assert.is(tunnelXmit(f, p, tun4, 1480, 1, false, false), TUNNEL_ICMP_SENT);
  const out = f.u8.slice(p.start, p.start + p.len);
  const dv = new DataView(out.buffer);
  assert.equal([out[9], out[20], out[21], dv.getUint16(26)], [1, 3, 4, 1480]);
  assert.is(dv.getInt32(12), ip4(VIP));
  assert.is(dv.getInt32(16), ip4(CL));
  assert.is(out.length, 28 + 20 + 8, "quotes the IP header and 8 bytes");
  assert.is(csumFold(csumAdd(out, 0, 20, 0)), 0xffff);
  assert.is(csumFold(csumAdd(out, 20, out.length - 20, 0)), 0xffff);
});
t("without DF the packet is sent (the outer packet may be fragmented)", () => {
  const big = buildIp4({ src: CL, dst: VIP, sport: 1000, dport: 80, flags: 0x10, payload: new Uint8Array(1460) });
  big[6] = 0; big[10] = 0; big[11] = 0;
  new DataView(big.buffer).setUint16(10, ~csumFold(csumAdd(big, 0, 20, 0)) & 0xffff);
  const { f, p } = load(big);
  assert.is(tunnelXmit(f, p, tun4, 1480, 1, false, false), 0);
});
t("IPv6: packet too big with the MTU, from the VIP", () => {
  const vip6 = "2001:2:0:ff::100", cl6 = "2001:2:0:2::2";
  const tun6 = tunnelDest(6, TUN_IPIP, 0, 0, ip6("2001:2:0:1::1"), ip6("2001:2:0:1::11"));
  const { f, p } = load(buildIp6({ src: cl6, dst: vip6, sport: 1, dport: 80, flags: 0x10, payload: new Uint8Array(1400) }));
  assert.is(tunnelXmit(f, p, tun6, 1280, 1, false, false), TUNNEL_ICMP_SENT);
  const out = f.u8.slice(p.start, p.start + p.len);
  const dv = new DataView(out.buffer);
  assert.equal([out[6], out[40], dv.getUint32(44)], [58, 2, 1280]);
  assert.ok(out.length <= 1280, "fits the minimum MTU");
});
t("TTL 1 and a tunnel without a route are drops", () => {
  const { f, p } = load(buildIp4({ src: CL, dst: VIP, sport: 1, dport: 80, ttl: 1 }));
  assert.is(tunnelXmit(f, p, tun4, 1480, 1, false, false), DROP.TTL_EXCEEDED);
  const { f: f2, p: p2 } = load(buildIp4({ src: CL, dst: VIP, sport: 1, dport: 80 }));
  assert.is(tunnelXmit(f2, p2, tun4, -1, 1, false, false), DROP.TUNNEL_TOO_BIG);
  void checksumsValid6;
});
t.run();
