// Golden frames for direct routing: ARP answers for DR VIPs, MAC resolution by ARP probe,
// queued frames flushed once the real server answers, and the DR rewrite itself (only the
// destination MAC and the TTL change).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../../src/dataplane/snapshot.ts";
import { VERDICT_CONSUMED, VERDICT_DROP, VERDICT_TX_L2 } from "../../src/dataplane/verdict.ts";
import { FWD_ROUTE } from "../../src/forward/fwd.ts";
import { L2Host } from "../../src/forward/neigh.ts";
import { MemDevice } from "../../src/io/mem_device.ts";
import { COUNTER_WORDS, DROP_BASE, MAX_DEST } from "../../src/stats/counters.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIcmp4, buildIp4, checksumsValid, ip4 } from "../fixtures/builder.ts";
import { CLIENT, RS1, VIP, natSnapshot } from "../fixtures/snapshots.ts";

const OUR = [0x0266, 0x11223344] as const; // 02:66:11:22:33:44
const CLIENT_MAC = [0x0200, 0x00000002 | 0];
const RS1_MAC = [0x0200, 0x0000000b | 0];

function eth(dst: readonly number[], src: readonly number[], type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  const dv = new DataView(f.buffer);
  dv.setUint16(0, dst[0]); dv.setInt32(2, dst[1]);
  dv.setUint16(6, src[0]); dv.setInt32(8, src[1]);
  dv.setUint16(12, type);
  f.set(payload, 14);
  return f;
}
function arp(op: number, sha: readonly number[], spa: string, tha: readonly number[], tpa: string): Uint8Array {
  const a = new Uint8Array(28);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, 1); dv.setUint16(2, 0x0800); a[4] = 6; a[5] = 4; dv.setUint16(6, op);
  dv.setUint16(8, sha[0]); dv.setInt32(10, sha[1]); dv.setInt32(14, spa === "0.0.0.0" ? 0 : ip4(spa));
  dv.setUint16(18, tha[0]); dv.setInt32(20, tha[1]); dv.setInt32(24, tpa === "0.0.0.0" ? 0 : ip4(tpa));
  return a;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function setup() {
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const snap = natSnapshot(1, "rr");
  for (const d of snap.services[0].dests) { d.fwd = FWD_ROUTE; d.port = 80; }
  const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, counters);
  const tap = new MemDevice("tap", true);
  pl.l2 = new L2Host(tap, OUR[0], OUR[1]);
  pl.nowMs = 1000;
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (frame: Uint8Array) => {
    f.u8.set(frame, HEADROOM);
    const v = pl.processFrame(f, HEADROOM, frame.length, 10);
    return { v, out: f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len) };
  };
  return { pl, tap, run, counters };
}

const s = suite("direct routing over TAP");
s("an ARP request for a DR VIP gets a reply with tslb's MAC; other addresses get none", () => {
  const { run, tap } = setup();
  assert.is(run(eth([0xffff, -1], CLIENT_MAC, 0x0806, arp(1, CLIENT_MAC, CLIENT, [0, 0], VIP))).v, VERDICT_CONSUMED);
  assert.is(tap.sent.length, 1);
  const want = eth(CLIENT_MAC, OUR, 0x0806, arp(2, OUR, VIP, CLIENT_MAC, CLIENT));
  const padded = new Uint8Array(60); padded.set(want);
  assert.is(hex(tap.sent[0]), hex(padded));
  run(eth([0xffff, -1], CLIENT_MAC, 0x0806, arp(1, CLIENT_MAC, CLIENT, [0, 0], "198.18.0.99")));
  assert.is(tap.sent.length, 1, "no answer for a non-VIP");
});
s("the first packet to a real server waits for its MAC: probe out, reply in, queue flushed", () => {
  const { run, tap, pl } = setup();
  const syn = buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: 0x02, ttl: 64 });
  assert.is(run(eth(OUR, CLIENT_MAC, 0x0800, syn)).v, VERDICT_CONSUMED);
  assert.is(tap.sent.length, 1);
  const probe = new Uint8Array(60); probe.set(eth([0xffff, -1], OUR, 0x0806, arp(1, OUR, "0.0.0.0", [0, 0], RS1)));
  assert.is(hex(tap.sent[0]), hex(probe), "ARP probe with sender 0.0.0.0");
  // The real server answers the probe (to 0.0.0.0, at our MAC).
  assert.is(run(eth(OUR, RS1_MAC, 0x0806, arp(2, RS1_MAC, RS1, OUR, "0.0.0.0"))).v, VERDICT_CONSUMED);
  assert.is(tap.sent.length, 2);
  const out = tap.sent[1];
  const expected = syn.slice(); expected[8] = 63; // TTL decremented
  assert.is(hex(out.subarray(0, 14)), hex(eth(RS1_MAC, OUR, 0x0800, new Uint8Array(0))));
  assert.is(hex(out.subarray(14, 34).filter((_, i) => i !== 10 && i !== 11)), hex(expected.subarray(0, 20).filter((_, i) => i !== 10 && i !== 11)));
  assert.is(hex(out.subarray(34)), hex(syn.subarray(20)), "TCP untouched");
  assert.ok(checksumsValid(out.subarray(14)));
  // Once resolved, packets go straight out.
  const ack = buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: 0x10 });
  const r = run(eth(OUR, CLIENT_MAC, 0x0800, ack));
  assert.is(r.v, VERDICT_TX_L2);
  assert.is(hex(r.out.subarray(0, 14)), hex(eth(RS1_MAC, OUR, 0x0800, new Uint8Array(0))));
  void pl;
});
s("an unanswered probe is repeated each second by tick(), three in all, then the queue is dropped", () => {
  const { run, tap, pl } = setup();
  const l2 = pl.l2!;
  run(eth(OUR, CLIENT_MAC, 0x0800, buildIp4({ src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: 0x02 })));
  assert.is(tap.sent.length, 1, "first probe at once");
  l2.tick(1500);
  assert.is(tap.sent.length, 1, "not before the retry time");
  l2.tick(2000);
  assert.is(tap.sent.length, 2, "second probe");
  l2.tick(2999);
  l2.tick(3000);
  assert.is(tap.sent.length, 3, "third probe");
  assert.is(l2.queueDrops, 0);
  l2.tick(4000);
  assert.is(tap.sent.length, 3, "no fourth probe");
  assert.is(l2.queueDrops, 1, "the waiting SYN is dropped");
  l2.tick(9000);
  assert.is(tap.sent.length, 3, "a failed neighbour is not probed by tick()");
});
s("frames not for tslb's MAC and TTL 1 are counted drops", () => {
  const { run, counters } = setup();
  const syn = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: 0x02 });
  assert.is(run(eth(CLIENT_MAC, RS1_MAC, 0x0800, syn)).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.NOT_FOR_US], 1);
  const ttl1 = buildIp4({ src: CLIENT, dst: VIP, sport: 2, dport: 80, flags: 0x02, ttl: 1 });
  assert.is(run(eth(OUR, CLIENT_MAC, 0x0800, ttl1)).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.TTL_EXCEEDED], 1);
  assert.is(run(new Uint8Array(10)).v, VERDICT_DROP);
});
s("300 000 random and mutated Ethernet frames (ARP, IPv4, IPv6/NDP) get a verdict each, never an exception", () => {
  const { pl, tap } = setup();
  const f = Frame.alloc(HEADROOM + 2048);
  const seeds = [
    eth([0xffff, -1], CLIENT_MAC, 0x0806, arp(1, CLIENT_MAC, CLIENT, [0, 0], VIP)),
    eth(OUR, RS1_MAC, 0x0806, arp(2, RS1_MAC, RS1, OUR, "0.0.0.0")),
    eth(OUR, CLIENT_MAC, 0x0800, buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: 0x02 })),
    eth(OUR, CLIENT_MAC, 0x0800, buildIcmp4("198.18.0.254", VIP, 3, 4, buildIp4({ src: VIP, dst: CLIENT, sport: 80, dport: 40000 }))),
    eth([0x3333, -1], CLIENT_MAC, 0x86dd, new Uint8Array(72).fill(0x60, 0, 1)),
  ];
  let r = 12345;
  const rnd = () => { r = (Math.imul(r, 1103515245) + 12345) >>> 0; return r / 4294967296; };
  let n = 0;
  for (let k = 0; k < 300_000; k++) {
    const base = seeds[k % seeds.length];
    let len = base.length;
    f.u8.set(base, HEADROOM);
    const m = rnd();
    if (m < 0.3) len = Math.floor(rnd() * (base.length + 1));
    else if (m < 0.8) for (let i = 0; i < 3; i++) f.u8[HEADROOM + Math.floor(rnd() * len)] ^= 1 << Math.floor(rnd() * 8);
    const v = pl.processFrame(f, HEADROOM, len, 10 + (k >> 14));
    if (v >= 0 && v <= 4) n++;
    pl.nowMs += 1;
    if (tap.sent.length > 1000) tap.sent.length = 0;
  }
  assert.is(n, 300_000);
});
s.run();

const nd = suite("direct routing over TAP, IPv6 neighbour discovery");
nd("an NS for a DR VIP6 is answered with a solicited NA carrying tslb's MAC; servers resolve by NS/NA", async () => {
  const { natSnapshot6, VIP6, RS6, CLIENT6 } = await import("../fixtures/snapshots.ts");
  const { buildIp6, ip6 } = await import("../fixtures/builder.ts");
  const { csumAdd, csumFold } = await import("../../src/wire/checksum.ts");
  const table = ConnTable.create(1024, MAX_DEST);
  const snap = natSnapshot6();
  for (const d of snap.services[0].dests) { d.fwd = FWD_ROUTE; d.port = 80; }
  const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, new Float64Array(COUNTER_WORDS));
  const tap = new MemDevice("tap", true);
  pl.l2 = new L2Host(tap, OUR[0], OUR[1]);
  pl.nowMs = 1000;
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (frame: Uint8Array) => { f.u8.set(frame, HEADROOM); return pl.processFrame(f, HEADROOM, frame.length, 10); };
  const icmp6 = (src: string, dst: string, body: Uint8Array) => {
    const b = new Uint8Array(40 + body.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 0x60000000); dv.setUint16(4, body.length); b[6] = 58; b[7] = 255;
    ip6(src).forEach((w, i) => dv.setInt32(8 + i * 4, w));
    ip6(dst).forEach((w, i) => dv.setInt32(24 + i * 4, w));
    b.set(body, 40);
    dv.setUint16(42, ~csumFold(csumAdd(b, 40, body.length, csumAdd(b, 8, 32, 0) + 58 + body.length)) & 0xffff);
    return b;
  };
  const ndp = (type: number, flags: number, target: string, optKind: number, mac: readonly number[]) => {
    const body = new Uint8Array(32);
    const dv = new DataView(body.buffer);
    body[0] = type; dv.setUint32(4, flags);
    ip6(target).forEach((w, i) => dv.setInt32(8 + i * 4, w));
    body[24] = optKind; body[25] = 1; dv.setUint16(26, mac[0]); dv.setInt32(28, mac[1]);
    return body;
  };
  const valid6 = (b: Uint8Array) => csumFold(csumAdd(b, 40, b.length - 40, csumAdd(b, 8, 32, 0) + 58 + (b.length - 40))) === 0xffff;
  // NS for the VIP from the client, to its solicited-node group.
  assert.is(run(eth([0x3333, 0xff000100 | 0], CLIENT_MAC, 0x86dd, icmp6(CLIENT6, "ff02::1:ff00:100", ndp(135, 0, VIP6, 1, CLIENT_MAC)))), VERDICT_CONSUMED);
  assert.is(tap.sent.length, 1);
  const na = tap.sent[0];
  const ndv = new DataView(na.buffer);
  assert.equal([ndv.getUint16(0), ndv.getInt32(2), ndv.getUint16(6), ndv.getInt32(8)], [CLIENT_MAC[0], CLIENT_MAC[1], OUR[0], OUR[1]]);
  const ip = na.subarray(14);
  assert.equal([ip[7], ip[40], new DataView(ip.buffer, ip.byteOffset).getUint32(44)], [255, 136, 0x60000000], "hop limit 255, NA, S|O");
  assert.equal([0, 1, 2, 3].map((i) => new DataView(ip.buffer, ip.byteOffset).getInt32(8 + i * 4)), ip6(VIP6), "from the VIP");
  assert.equal([ip[64], ip[65]], [2, 1], "target link-layer option");
  assert.ok(valid6(ip.slice()));
  // A SYN to the VIP: the server's MAC is unknown, so an NS from :: goes out first.
  const syn = buildIp6({ src: CLIENT6, dst: VIP6, sport: 40000, dport: 80, flags: 0x02 });
  assert.is(run(eth(OUR, CLIENT_MAC, 0x86dd, syn)), VERDICT_CONSUMED);
  const ns = tap.sent[1].subarray(14);
  assert.equal([ns[40], ns.length], [135, 64], "an NS without options");
  assert.is(new DataView(ns.buffer, ns.byteOffset).getInt32(8), 0, "from the unspecified address");
  // The server answers to all-nodes; the queued SYN goes out with its MAC.
  run(eth([0x3333, 1], RS1_MAC, 0x86dd, icmp6(RS6[0], "ff02::1", ndp(136, 0x20000000, RS6[0], 2, RS1_MAC))));
  assert.is(tap.sent.length, 3);
  assert.equal([new DataView(tap.sent[2].buffer).getUint16(0), new DataView(tap.sent[2].buffer).getInt32(2)], [RS1_MAC[0], RS1_MAC[1]]);
  assert.is(tap.sent[2][14 + 7], 63, "hop limit decremented");
});
nd.run();
