// Golden ICMP error translation for full NAT (icmpFullNatXmit): both rewrites undone in
// the quote, both outer addresses replaced, IPv4 and IPv6, both directions. The entries
// are made by the real pipeline; the error is keyed and looked up as Pipeline.icmp does.
// Expected messages are built from scratch (full checksums), so byte equality proves
// every field and every checksum.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { assertNoHeapGrowth } from "../helpers/alloc.ts";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig, type Snapshot } from "../../src/dataplane/snapshot.ts";
import { VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { FWD_FULLNAT } from "../../src/forward/fwd.ts";
import { icmpErrorKey, icmpFullNatXmit } from "../../src/forward/icmp_error.ts";
import { COUNTER_WORDS, MAX_DEST } from "../../src/stats/counters.ts";
import { csumAdd, csumFold } from "../../src/wire/checksum.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { Pkt, parseIp } from "../../src/wire/pkt.ts";
import {
  buildIcmp4, buildIp4, buildIp6, checksumsValid, checksumsValid6, icmpChecksumsValid, ip4, ip6, type Ip4Spec,
} from "../fixtures/builder.ts";
import { CLIENT, CLIENT6, RS1, RS6, VIP, VIP6, natSnapshot, natSnapshot6 } from "../fixtures/snapshots.ts";

const SYN = 0x02, ACK = 0x10;
const LADDR = "198.18.1.1";
const LADDR6 = "2001:2:0:1::1";
const ROUTER = "198.18.0.254";
const ROUTER6 = "2001:2:0:2::fe";

function fullNatSnapshot(v6: boolean): Snapshot {
  const snap = v6 ? natSnapshot6() : natSnapshot();
  for (const s of snap.services) {
    for (const d of s.dests) {
      d.fwd = FWD_FULLNAT;
      d.laddrs = v6 ? ip6(LADDR6) : [ip4(LADDR), 0, 0, 0];
    }
  }
  snap.fullnatPorts = [61000, 61999];
  return snap;
}

function setup(v6 = false) {
  const table = ConnTable.create(1024, MAX_DEST);
  const pl = new Pipeline(new ActiveConfig(fullNatSnapshot(v6), table.destState, null), table, new Float64Array(COUNTER_WORDS));
  const f = Frame.alloc(HEADROOM + 2048);
  /** A data packet through the pipeline: the bytes it sends. */
  const run = (s: Ip4Spec) => {
    const b = v6 ? buildIp6(s) : buildIp4(s);
    f.u8.set(b, HEADROOM);
    assert.is(pl.process(f, HEADROOM, b.length, 10), VERDICT_TX);
    return f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len);
  };
  const p = new Pkt();
  const q = new Pkt();
  /** Pipeline.icmp's steps, with icmpFullNatXmit as the xmit. */
  const translate = (err: Uint8Array) => {
    f.u8.set(err, HEADROOM);
    parseIp(p, f, HEADROOM, err.length);
    const k = icmpErrorKey(f, p, q);
    if (k !== 0) return { r: k, dir: -1, out: err };
    table.hashPkt(q);
    const id = table.lookup(q, 10);
    assert.ok(id >= 0, "the quoted flow's connection is found");
    const r = icmpFullNatXmit(f, p, q, table, id);
    return { r, dir: q.dir, out: f.u8.slice(p.start, p.start + p.len) };
  };
  return { run, translate, table, f, p, q };
}

/** ICMPv4 message with a 32-bit rest-of-header (e.g. the next-hop MTU in its low 16 bits). */
function icmp4(src: string, dst: string, type: number, code: number, rest: number, orig: Uint8Array, quoteLen = 576): Uint8Array {
  const u8 = buildIcmp4(src, dst, type, code, orig, quoteLen);
  const dv = new DataView(u8.buffer);
  dv.setUint32(24, rest);
  dv.setUint16(22, 0);
  dv.setUint16(22, ~csumFold(csumAdd(u8, 20, u8.length - 20, 0)) & 0xffff);
  return u8;
}

/** The ICMPv6 checksum sum over a message at 40 (0xffff when valid). */
const sum6 = (b: Uint8Array) => csumFold(csumAdd(b, 40, b.length - 40, csumAdd(b, 8, 32, 0) + 58 + (b.length - 40)));

/** ICMPv6 error (type < 128) quoting the first `quoteLen` bytes of `orig`. */
function icmp6(src: string, dst: string, type: number, code: number, rest: number, orig: Uint8Array, quoteLen = 1232): Uint8Array {
  const quote = orig.slice(0, Math.min(quoteLen, orig.length));
  const u8 = new Uint8Array(48 + quote.length);
  const dv = new DataView(u8.buffer);
  dv.setUint32(0, 0x60000000); dv.setUint16(4, 8 + quote.length); u8[6] = 58; u8[7] = 64;
  ip6(src).forEach((w, i) => dv.setInt32(8 + i * 4, w));
  ip6(dst).forEach((w, i) => dv.setInt32(24 + i * 4, w));
  u8[40] = type; u8[41] = code; dv.setUint32(44, rest);
  u8.set(quote, 48);
  dv.setUint16(42, ~sum6(u8) & 0xffff);
  return u8;
}

const a4 = (b: Uint8Array, o: number) => [b[o], b[o + 1], b[o + 2], b[o + 3]].join(".");
const a6 = (b: Uint8Array, o: number) => {
  const dv = new DataView(b.buffer, b.byteOffset);
  return [0, 1, 2, 3].map((i) => dv.getInt32(o + i * 4));
};
const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const v4 = suite("ICMP errors of full-NAT connections (IPv4)");

v4("frag needed from the real server about laddr:lport→RS reaches the client about client→VIP", () => {
  const { run, translate } = setup();
  const syn = buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN, payload: "hello" });
  const sent = run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN, payload: "hello" });
  const lport = u16(sent, 20);
  assert.equal([a4(sent, 12), a4(sent, 16), u16(sent, 22)], [LADDR, RS1, 8080]);
  const err = icmp4(RS1, LADDR, 3, 4, 1400, sent);
  const { r, dir, out } = translate(err);
  assert.is(r, 0);
  assert.is(dir, 1);
  // Field by field (the golden comparison below covers the rest).
  assert.is(a4(out, 12), VIP, "outer source: the VIP, as icmpNatXmit does");
  assert.is(a4(out, 16), CLIENT, "outer destination");
  assert.equal([out[20], out[21], u16(out, 26)], [3, 4, 1400], "type, code, next-hop MTU");
  assert.is(a4(out, 28 + 12), CLIENT, "quoted source");
  assert.is(a4(out, 28 + 16), VIP, "quoted destination");
  assert.equal([u16(out, 48), u16(out, 50)], [40000, 80], "quoted ports");
  assert.ok(icmpChecksumsValid(out));
  assert.ok(checksumsValid(out.subarray(28)), "quoted TCP checksum matches the quoted segment");
  assert.is(hex(out), hex(icmp4(VIP, CLIENT, 3, 4, 1400, syn)), "the whole message");
  void lport;
});

v4("time exceeded from a router on the server side: outer source becomes the VIP too", () => {
  const { run, translate } = setup();
  const syn = buildIp4({ src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: SYN });
  const sent = run({ src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: SYN });
  const { r, dir, out } = translate(icmp4("198.18.1.254", LADDR, 11, 0, 0, sent));
  assert.equal([r, dir], [0, 1]);
  assert.is(hex(out), hex(icmp4(VIP, CLIENT, 11, 0, 0, syn)));
  assert.ok(icmpChecksumsValid(out));
});

v4("an error from the client side about VIP→client goes to the real server about RS→laddr:lport", () => {
  const { run, translate } = setup();
  const sent = run({ src: CLIENT, dst: VIP, sport: 40002, dport: 80, flags: SYN });
  const lport = u16(sent, 20);
  const synack = { src: RS1, dst: LADDR, sport: 8080, dport: lport, flags: SYN | ACK, payload: "xyz" };
  const orig = buildIp4(synack);
  const reply = run(synack);
  assert.equal([a4(reply, 12), a4(reply, 16), u16(reply, 20), u16(reply, 22)], [VIP, CLIENT, 80, 40002]);
  // Port unreachable from the client itself (outer source = client, destination = VIP).
  const { r, dir, out } = translate(icmp4(CLIENT, VIP, 3, 3, 0, reply));
  assert.equal([r, dir], [0, 0]);
  assert.is(a4(out, 12), LADDR, "outer source: the local address");
  assert.is(a4(out, 16), RS1, "outer destination: the real server");
  assert.is(a4(out, 28 + 12), RS1, "quoted source");
  assert.is(a4(out, 28 + 16), LADDR, "quoted destination");
  assert.equal([u16(out, 48), u16(out, 50)], [8080, lport], "quoted ports");
  assert.ok(icmpChecksumsValid(out));
  assert.ok(checksumsValid(out.subarray(28)));
  assert.is(hex(out), hex(icmp4(LADDR, RS1, 3, 3, 0, orig)));
  // Time exceeded from a router on the client side: same translation.
  const te = translate(icmp4(ROUTER, VIP, 11, 0, 0, reply));
  assert.equal([te.r, te.dir], [0, 0]);
  assert.is(hex(te.out), hex(icmp4(LADDR, RS1, 11, 0, 0, orig)));
});

v4("UDP port unreachable both ways; the quoted UDP checksum is patched", () => {
  const { run, translate } = setup();
  const q = { src: CLIENT, dst: VIP, proto: "udp" as const, sport: 5000, dport: 53, payload: "query" };
  const sent = run(q);
  const lport = u16(sent, 20);
  let t = translate(icmp4(RS1, LADDR, 3, 3, 0, sent));
  assert.equal([t.r, t.dir], [0, 1]);
  assert.is(hex(t.out), hex(icmp4(VIP, CLIENT, 3, 3, 0, buildIp4(q))));
  assert.ok(checksumsValid(t.out.subarray(28)));
  const a = { src: RS1, dst: LADDR, proto: "udp" as const, sport: 5353, dport: lport, payload: "answer" };
  const reply = run(a);
  t = translate(icmp4(CLIENT, VIP, 3, 3, 0, reply));
  assert.equal([t.r, t.dir], [0, 0]);
  assert.is(hex(t.out), hex(icmp4(LADDR, RS1, 3, 3, 0, buildIp4(a))));
  assert.ok(checksumsValid(t.out.subarray(28)));
});

v4("a zero (absent) quoted UDP checksum stays zero", () => {
  const { run, translate } = setup();
  const q = { src: CLIENT, dst: VIP, proto: "udp" as const, sport: 5001, dport: 53, payload: "q", noUdpCsum: true };
  const sent = run(q);
  assert.is(u16(sent, 26), 0);
  const t = translate(icmp4(RS1, LADDR, 3, 3, 0, sent));
  assert.is(t.r, 0);
  assert.is(u16(t.out, 28 + 26), 0);
  assert.is(hex(t.out), hex(icmp4(VIP, CLIENT, 3, 3, 0, buildIp4(q))));
});

v4("a quote with only 8 bytes of L4 is still translated (TCP: no checksum to patch; UDP: patched)", () => {
  const { run, translate } = setup();
  const s = { src: CLIENT, dst: VIP, sport: 40003, dport: 80, flags: SYN };
  const sent = run(s);
  let t = translate(icmp4(RS1, LADDR, 3, 4, 1280, sent, 28));
  assert.equal([t.r, t.dir, t.out.length], [0, 1, 56]);
  assert.is(hex(t.out), hex(icmp4(VIP, CLIENT, 3, 4, 1280, buildIp4(s), 28)));
  assert.ok(icmpChecksumsValid(t.out));
  const u = { src: CLIENT, dst: VIP, proto: "udp" as const, sport: 5002, dport: 53, payload: "longer query" };
  const usent = run(u);
  const lport = u16(usent, 20);
  t = translate(icmp4(RS1, LADDR, 3, 3, 0, usent, 28));
  assert.equal([t.r, t.dir], [0, 1]);
  assert.is(hex(t.out), hex(icmp4(VIP, CLIENT, 3, 3, 0, buildIp4(u), 28)), "UDP checksum in the 8 bytes, patched");
  // The other direction, truncated too.
  const a = { src: RS1, dst: LADDR, proto: "udp" as const, sport: 5353, dport: lport, payload: "long answer" };
  const reply = run(a);
  t = translate(icmp4(ROUTER, VIP, 11, 0, 0, reply, 28));
  assert.equal([t.r, t.dir], [0, 0]);
  assert.is(hex(t.out), hex(icmp4(LADDR, RS1, 11, 0, 0, buildIp4(a), 28)));
  // Fewer than 4 bytes of L4 (no ports) never reaches the xmit: icmpErrorKey refuses it.
  assert.is(translate(icmp4(RS1, LADDR, 3, 3, 0, usent, 22)).r, DROP.TRUNCATED);
});

v4("a quoted IPv4 header shorter than 20 bytes is refused with a reason, untouched", () => {
  const { run, f, p, q, table } = setup();
  const sent = run({ src: CLIENT, dst: VIP, sport: 40004, dport: 80, flags: SYN });
  const err = icmp4(RS1, LADDR, 3, 3, 0, sent);
  f.u8.set(err, HEADROOM);
  parseIp(p, f, HEADROOM, err.length);
  assert.is(icmpErrorKey(f, p, q), 0);
  table.hashPkt(q);
  const id = table.lookup(q, 10);
  q.l4 = q.l3 + 16; // as if IHL were 4
  assert.is(icmpFullNatXmit(f, p, q, table, id), DROP.BAD_IP_HEADER);
  assert.is(hex(f.u8.slice(HEADROOM, HEADROOM + err.length)), hex(err));
});

v4("allocation-free", () => {
  const { run, f, p, q, table } = setup();
  const sent = run({ src: CLIENT, dst: VIP, sport: 40005, dport: 80, flags: SYN });
  const err = icmp4(RS1, LADDR, 3, 4, 1400, sent);
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      f.u8.set(err, HEADROOM);
      parseIp(p, f, HEADROOM, err.length);
      icmpErrorKey(f, p, q);
      table.hashPkt(q);
      icmpFullNatXmit(f, p, q, table, table.lookup(q, 10));
    }
  };
  assertNoHeapGrowth(loop);
});

v4.run();

const v6 = suite("ICMPv6 errors of full-NAT connections");

v6("packet too big from the real server reaches the client about client→VIP", () => {
  const { run, translate } = setup(true);
  const s = { src: CLIENT6, dst: VIP6, sport: 40000, dport: 80, flags: SYN, payload: "hello" };
  const sent = run(s);
  const lport = u16(sent, 40);
  assert.equal([a6(sent, 8), a6(sent, 24), u16(sent, 42)], [ip6(LADDR6), ip6(RS6[0]), 8080]);
  const { r, dir, out } = translate(icmp6(RS6[0], LADDR6, 2, 0, 1280, sent));
  assert.equal([r, dir], [0, 1]);
  assert.equal(a6(out, 8), ip6(VIP6), "outer source: the VIP");
  assert.equal(a6(out, 24), ip6(CLIENT6), "outer destination");
  assert.equal([out[40], out[41], new DataView(out.buffer).getUint32(44)], [2, 0, 1280], "type, code, MTU");
  assert.equal(a6(out, 48 + 8), ip6(CLIENT6), "quoted source");
  assert.equal(a6(out, 48 + 24), ip6(VIP6), "quoted destination");
  assert.equal([u16(out, 88), u16(out, 90)], [40000, 80], "quoted ports");
  assert.is(sum6(out), 0xffff, "ICMPv6 checksum");
  assert.ok(checksumsValid6(out.subarray(48)), "quoted TCP checksum");
  assert.is(hex(out), hex(icmp6(VIP6, CLIENT6, 2, 0, 1280, buildIp6(s))));
  void lport;
});

v6("an error from the client side about VIP→client goes to the real server about RS→laddr:lport", () => {
  const { run, translate } = setup(true);
  const sent = run({ src: CLIENT6, dst: VIP6, sport: 40001, dport: 80, flags: SYN });
  const lport = u16(sent, 40);
  const a = { src: RS6[0], dst: LADDR6, sport: 8080, dport: lport, flags: SYN | ACK };
  const reply = run(a);
  assert.equal([a6(reply, 8), a6(reply, 24), u16(reply, 40), u16(reply, 42)], [ip6(VIP6), ip6(CLIENT6), 80, 40001]);
  let t = translate(icmp6(CLIENT6, VIP6, 1, 4, 0, reply));
  assert.equal([t.r, t.dir], [0, 0]);
  assert.equal(a6(t.out, 8), ip6(LADDR6), "outer source: the local address");
  assert.equal(a6(t.out, 24), ip6(RS6[0]), "outer destination: the real server");
  assert.equal(a6(t.out, 48 + 8), ip6(RS6[0]));
  assert.equal(a6(t.out, 48 + 24), ip6(LADDR6));
  assert.equal([u16(t.out, 88), u16(t.out, 90)], [8080, lport]);
  assert.is(sum6(t.out), 0xffff);
  assert.ok(checksumsValid6(t.out.subarray(48)));
  assert.is(hex(t.out), hex(icmp6(LADDR6, RS6[0], 1, 4, 0, buildIp6(a))));
  // Hop limit exceeded at a router on the client side.
  t = translate(icmp6(ROUTER6, VIP6, 3, 0, 0, reply));
  assert.equal([t.r, t.dir], [0, 0]);
  assert.is(hex(t.out), hex(icmp6(LADDR6, RS6[0], 3, 0, 0, buildIp6(a))));
});

v6("UDP both ways, whole and with only 8 bytes of L4 quoted", () => {
  const { run, translate } = setup(true);
  const q = { src: CLIENT6, dst: VIP6, proto: "udp" as const, sport: 5000, dport: 53, payload: "query" };
  const sent = run(q);
  const lport = u16(sent, 40);
  let t = translate(icmp6(RS6[0], LADDR6, 1, 4, 0, sent));
  assert.equal([t.r, t.dir], [0, 1]);
  assert.is(hex(t.out), hex(icmp6(VIP6, CLIENT6, 1, 4, 0, buildIp6(q))));
  assert.ok(checksumsValid6(t.out.subarray(48)));
  t = translate(icmp6(RS6[0], LADDR6, 1, 4, 0, sent, 48));
  assert.equal([t.r, t.dir, t.out.length], [0, 1, 96]);
  assert.is(hex(t.out), hex(icmp6(VIP6, CLIENT6, 1, 4, 0, buildIp6(q), 48)));
  const a = { src: RS6[0], dst: LADDR6, proto: "udp" as const, sport: 5353, dport: lport, payload: "answer" };
  const reply = run(a);
  t = translate(icmp6(CLIENT6, VIP6, 1, 4, 0, reply, 48));
  assert.equal([t.r, t.dir], [0, 0]);
  assert.is(hex(t.out), hex(icmp6(LADDR6, RS6[0], 1, 4, 0, buildIp6(a), 48)));
  assert.is(sum6(t.out), 0xffff);
});

v6("TCP quote truncated to 8 bytes of L4, both directions", () => {
  const { run, translate } = setup(true);
  const s = { src: CLIENT6, dst: VIP6, sport: 40002, dport: 80, flags: SYN };
  const sent = run(s);
  const lport = u16(sent, 40);
  let t = translate(icmp6(RS6[0], LADDR6, 2, 0, 1280, sent, 48));
  assert.equal([t.r, t.dir], [0, 1]);
  assert.is(hex(t.out), hex(icmp6(VIP6, CLIENT6, 2, 0, 1280, buildIp6(s), 48)));
  const a = { src: RS6[0], dst: LADDR6, sport: 8080, dport: lport, flags: SYN | ACK };
  const reply = run(a);
  t = translate(icmp6(CLIENT6, VIP6, 2, 0, 1280, reply, 48));
  assert.equal([t.r, t.dir], [0, 0]);
  assert.is(hex(t.out), hex(icmp6(LADDR6, RS6[0], 2, 0, 1280, buildIp6(a), 48)));
});

v6.run();
