// Full NAT (--fullnat) through the real pipeline: both rewrites in each direction, the
// local-port pool (collisions, exhaustion, ports freed with their entries), IPv6.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { assertNoHeapGrowth } from "../helpers/alloc.ts";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig, type Snapshot } from "../../src/dataplane/snapshot.ts";
import { VERDICT_DROP, VERDICT_PASS, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { FWD_FULLNAT, FWD_MASQ } from "../../src/forward/fwd.ts";
import { COUNTER_WORDS, DROP_BASE, MAX_DEST } from "../../src/stats/counters.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { formatIPv6 } from "../../src/wire/addr.ts";
import { buildIp4, buildIp6, checksumsValid, checksumsValid6, fillL4Csum, ip4, ip6, type Ip4Spec } from "../fixtures/builder.ts";
import { CLIENT, CLIENT6, RS1, RS6, VIP, VIP6, natSnapshot, natSnapshot6 } from "../fixtures/snapshots.ts";

const SYN = 0x02, ACK = 0x10, RST = 0x04;
const LADDR = "198.18.1.1";
const LADDR2 = "198.18.1.2";
const LADDR6 = "2001:2:0:1::1";

/** natSnapshot with every destination switched to full NAT from `laddrs`, pool lo..hi. */
function fullNatSnapshot(v6: boolean, laddrs: string[], pool: [number, number]): Snapshot {
  const snap = v6 ? natSnapshot6() : natSnapshot();
  for (const s of snap.services) {
    for (const d of s.dests) {
      d.fwd = FWD_FULLNAT;
      d.laddrs = laddrs.flatMap((a) => (v6 ? ip6(a) : [ip4(a), 0, 0, 0]));
    }
  }
  snap.fullnatPorts = pool;
  return snap;
}

/** `nat46`: an IPv4 service whose real servers are IPv6 (RS6), from LADDR6. */
function setup(opts: { v6?: boolean; laddrs?: string[]; pool?: [number, number]; proxy?: number; masq?: boolean; nat46?: boolean } = {}) {
  const v6 = opts.v6 ?? false;
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const snap = fullNatSnapshot(v6, opts.laddrs ?? [v6 ? LADDR6 : LADDR], opts.pool ?? [61000, 61999]);
  for (const svc of snap.services) {
    svc.proxy = opts.proxy ?? 0;
    if (opts.masq) for (const d of svc.dests) d.fwd = FWD_MASQ;
    if (opts.nat46) svc.dests.forEach((d, i) => Object.assign(d, { addr: ip6(RS6[i]), af: 6, laddrs: ip6(LADDR6) }));
  }
  const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (s: Ip4Spec | Uint8Array, now = 10) => {
    const b = s instanceof Uint8Array ? s : v6 ? buildIp6(s) : buildIp4(s);
    f.u8.set(b, HEADROOM);
    const v = pl.process(f, HEADROOM, b.length, now);
    return { v, out: f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len) };
  };
  return { table, counters, pl, run, f };
}

function fields4(b: Uint8Array) {
  const dv = new DataView(b.buffer);
  const a = (o: number) => [b[o], b[o + 1], b[o + 2], b[o + 3]].join(".");
  const l4 = (b[0] & 15) * 4;
  return { src: a(12), dst: a(16), sport: dv.getUint16(l4), dport: dv.getUint16(l4 + 2) };
}

function fields6(b: Uint8Array) {
  const dv = new DataView(b.buffer);
  const a = (o: number) => formatIPv6([dv.getInt32(o), dv.getInt32(o + 4), dv.getInt32(o + 8), dv.getInt32(o + 12)]);
  return { src: a(8), dst: a(24), sport: dv.getUint16(40), dport: dv.getUint16(42) };
}

const fn = suite("pipeline: full NAT");

fn("TCP: client→VIP becomes laddr:lport→RS, the reply RS→laddr:lport becomes VIP→client", () => {
  const { run, table } = setup();
  let r = run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN });
  assert.is(r.v, VERDICT_TX);
  const out = fields4(r.out);
  assert.is(out.src, LADDR);
  assert.is(out.dst, RS1);
  assert.is(out.dport, 8080);
  assert.ok(out.sport >= 61000 && out.sport <= 61999, `local port ${out.sport} from the pool`);
  assert.ok(checksumsValid(r.out));
  const lport = out.sport;
  r = run({ src: RS1, dst: LADDR, sport: 8080, dport: lport, flags: SYN | ACK });
  assert.is(r.v, VERDICT_TX);
  assert.equal(fields4(r.out), { src: VIP, dst: CLIENT, sport: 80, dport: 40000 });
  assert.ok(checksumsValid(r.out));
  r = run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK, payload: "GET / HTTP/1.0\r\n\r\n" });
  assert.equal(fields4(r.out), { src: LADDR, dst: RS1, sport: lport, dport: 8080 });
  assert.ok(checksumsValid(r.out));
  assert.is(table.count, 1);
});

fn("UDP both ways, and a zero UDP checksum stays zero", () => {
  const { run } = setup();
  let r = run({ src: CLIENT, dst: VIP, proto: "udp", sport: 5000, dport: 53, payload: "q" });
  const out = fields4(r.out);
  assert.equal([out.src, out.dst, out.dport], [LADDR, RS1, 5353]);
  assert.ok(checksumsValid(r.out));
  r = run({ src: RS1, dst: LADDR, proto: "udp", sport: 5353, dport: out.sport, payload: "a" });
  assert.equal(fields4(r.out), { src: VIP, dst: CLIENT, sport: 53, dport: 5000 });
  assert.ok(checksumsValid(r.out));
  r = run({ src: CLIENT, dst: VIP, proto: "udp", sport: 5001, dport: 53, payload: "q", noUdpCsum: true });
  assert.is(new DataView(r.out.buffer).getUint16(26), 0);
});

fn("two clients with the same port get different local ports toward the same server", () => {
  const { run } = setup({ pool: [61000, 61001] });
  // rr: RS1, RS2, RS1 — the first and third go to RS1 and must not share a local port.
  const a = fields4(run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN }).out);
  run({ src: "198.18.0.3", dst: VIP, sport: 40000, dport: 80, flags: SYN });
  const c = fields4(run({ src: "198.18.0.4", dst: VIP, sport: 40000, dport: 80, flags: SYN }).out);
  assert.is(a.dst, RS1);
  assert.is(c.dst, RS1);
  assert.is.not(a.sport, c.sport);
});

fn("an exhausted pool refuses the new connection with a reset, counted; established ones carry on", () => {
  const { run, counters, table } = setup({ pool: [61000, 61001] });
  // One port per server... two ports per server: rr sends 1,3 to RS1 and 2,4 to RS2; the fifth is refused.
  const lports: number[] = [];
  for (let i = 0; i < 4; i++) lports.push(fields4(run({ src: CLIENT, dst: VIP, sport: 40000 + i, dport: 80, flags: SYN }).out).sport);
  const r = run({ src: CLIENT, dst: VIP, sport: 40004, dport: 80, flags: SYN });
  assert.is(r.v, VERDICT_TX, "a reset goes back to the client");
  assert.equal(fields4(r.out), { src: VIP, dst: CLIENT, sport: 80, dport: 40004 });
  assert.is(r.out[33] & RST, RST);
  assert.is(counters[DROP_BASE + DROP.FULLNAT_NO_PORT], 1);
  assert.is(table.count, 4);
  // The first connection still works both ways.
  assert.equal(fields4(run({ src: RS1, dst: LADDR, sport: 8080, dport: lports[0], flags: SYN | ACK }).out).dst, CLIENT);
  assert.equal(fields4(run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK }).out).sport, lports[0]);
  // UDP exhaustion is a counted drop (nothing to reset).
  for (let i = 0; i < 4; i++) run({ src: CLIENT, dst: VIP, proto: "udp", sport: 6000 + i, dport: 53, payload: "q" });
  assert.is(run({ src: CLIENT, dst: VIP, proto: "udp", sport: 6004, dport: 53, payload: "q" }).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.FULLNAT_NO_PORT], 2);
});

fn("a finished TCP connection gives its port up at once; a live one keeps it", () => {
  const { run, counters, table } = setup({ pool: [61000, 61000] });
  run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN }); // RS1: 61000
  run({ src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: SYN }); // RS2: 61000
  run({ src: RS1, dst: LADDR, sport: 8080, dport: 61000, flags: SYN | ACK });
  run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK });
  // RS1's connection is established, RS2's half-open: both hold their port.
  assert.is(fields4(run({ src: CLIENT, dst: VIP, sport: 40002, dport: 80, flags: SYN }).out).src, VIP, "RS1 full: reset");
  assert.is(fields4(run({ src: CLIENT, dst: VIP, sport: 40003, dport: 80, flags: SYN }).out).src, VIP, "RS2 full: reset");
  assert.is(counters[DROP_BASE + DROP.FULLNAT_NO_PORT], 2);
  run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: RST | ACK }); // ESTABLISHED → CLOSE
  const r = run({ src: CLIENT, dst: VIP, sport: 40004, dport: 80, flags: SYN });
  assert.equal(fields4(r.out), { src: LADDR, dst: RS1, sport: 61000, dport: 8080 });
  assert.is(table.count, 2, "the closed entry made way");
  // A half-open entry holds its port until it expires (SYN_RECV: 60 s), even unswept.
  assert.is(fields4(run({ src: CLIENT, dst: VIP, sport: 40005, dport: 80, flags: SYN }, 69).out).src, VIP);
  const late = fields4(run({ src: CLIENT, dst: VIP, sport: 40006, dport: 80, flags: SYN }, 71).out);
  assert.equal([late.src, late.sport], [LADDR, 61000]);
});

fn("several local addresses are used in turn", () => {
  const { run } = setup({ laddrs: [LADDR, LADDR2] });
  const srcs = new Set<string>();
  for (let i = 0; i < 4; i++) srcs.add(fields4(run({ src: CLIENT, dst: VIP, sport: 40000 + i, dport: 80, flags: SYN }).out).src);
  assert.equal([...srcs].sort(), [LADDR, LADDR2]);
});

fn("no local address: a counted drop", () => {
  const { run, counters } = setup({ laddrs: [] });
  assert.is(run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN }).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.FULLNAT_NO_LADDR], 1);
});

fn("a reply to the local address that matches no connection is handed back to the kernel", () => {
  const { run } = setup();
  assert.is(run({ src: RS1, dst: LADDR, sport: 8080, dport: 61234, flags: SYN | ACK }).v, VERDICT_PASS);
});

fn("IPv6 TCP both ways", () => {
  const { run } = setup({ v6: true });
  let r = run({ src: CLIENT6, dst: VIP6, sport: 40000, dport: 80, flags: SYN });
  const out = fields6(r.out);
  assert.equal([out.src, out.dst, out.dport], [LADDR6, RS6[0], 8080]);
  assert.ok(checksumsValid6(r.out));
  r = run({ src: RS6[0], dst: LADDR6, sport: 8080, dport: out.sport, flags: SYN | ACK });
  assert.equal(fields6(r.out), { src: VIP6, dst: CLIENT6, sport: 80, dport: 40000 });
  assert.ok(checksumsValid6(r.out));
});

fn("NAT46: an IPv4 client reaches an IPv6 server, the reply comes back as IPv4", () => {
  const { run } = setup({ nat46: true });
  let r = run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN });
  assert.is(r.v, VERDICT_TX);
  assert.is(r.out[0] >> 4, 6, "IPv6 toward the server");
  const out = fields6(r.out);
  assert.equal([out.src, out.dst, out.dport], [LADDR6, RS6[0], 8080]);
  assert.ok(checksumsValid6(r.out));
  r = run(buildIp6({ src: RS6[0], dst: LADDR6, sport: 8080, dport: out.sport, flags: SYN | ACK }));
  assert.is(r.v, VERDICT_TX);
  assert.is(r.out[0] >> 4, 4, "IPv4 back to the client");
  assert.equal(fields4(r.out), { src: VIP, dst: CLIENT, sport: 80, dport: 40000 });
  assert.ok(checksumsValid(r.out));
  // UDP too, and the data survives the translation.
  r = run({ src: CLIENT, dst: VIP, proto: "udp", sport: 5000, dport: 53, payload: "query" });
  assert.equal(fields6(r.out).dst, RS6[0]);
  assert.is(new TextDecoder().decode(r.out.subarray(48)), "query");
  assert.ok(checksumsValid6(r.out));
});

fn("the established path allocates nothing", () => {
  const { run, pl, f } = setup();
  const lport = fields4(run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN }).out).sport;
  run({ src: RS1, dst: LADDR, sport: 8080, dport: lport, flags: SYN | ACK });
  const a = buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK, payload: "x".repeat(100) });
  const b = buildIp4({ src: RS1, dst: LADDR, sport: 8080, dport: lport, flags: ACK, payload: "y".repeat(100) });
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      f.u8.set(a, HEADROOM); pl.process(f, HEADROOM, a.length, 10);
      f.u8.set(b, HEADROOM); pl.process(f, HEADROOM, b.length, 10);
    }
  };
  assertNoHeapGrowth(loop);
});

/**
 * An IPv4 TCP segment with explicit seq/ack and an optional MSS option (the builder's
 * segments all carry seq 1000 and no options).
 */
function seg(spec: Ip4Spec, seq: number, ack: number, mss = 0): Uint8Array {
  const base = buildIp4(spec);
  const opt = mss > 0 ? 4 : 0;
  const u8 = new Uint8Array(base.length + opt);
  u8.set(base.subarray(0, 40));
  u8.set(base.subarray(40), 40 + opt);
  const dv = new DataView(u8.buffer);
  dv.setUint16(2, u8.length);
  dv.setUint16(10, 0);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += dv.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  dv.setUint16(10, ~sum & 0xffff);
  dv.setUint32(24, seq >>> 0);
  dv.setUint32(28, ack >>> 0);
  u8[32] = (5 + opt / 4) << 4;
  if (mss > 0) { u8[40] = 2; u8[41] = 4; dv.setUint16(42, mss); }
  fillL4Csum(u8);
  return u8;
}

const payloadOf = (b: Uint8Array) => b.subarray(20 + (b[32] >> 4) * 4);
const seqOf = (b: Uint8Array) => new DataView(b.buffer).getUint32(24);
const ackOf = (b: Uint8Array) => new DataView(b.buffer).getUint32(28);

const pp = suite("pipeline: --proxy-protocol over full NAT");

pp("v2: the header goes in front of the first data, then seq +28 and ack −28; the SYN-ACK's MSS drops by 28", () => {
  const { run } = setup({ proxy: 2 });
  const isn = 0xfffffff0; // wraps around 2^32 within the connection
  const c = { src: CLIENT, dst: VIP, sport: 40000, dport: 80 };
  let r = run(seg({ ...c, flags: SYN }, isn, 0));
  assert.is(seqOf(r.out), isn, "the SYN is not shifted");
  const lport = fields4(r.out).sport;
  const s = { src: RS1, dst: LADDR, sport: 8080, dport: lport };
  r = run(seg({ ...s, flags: SYN | ACK }, 5000, isn + 1, 1460));
  assert.is(new DataView(r.out.buffer).getUint16(42), 1460 - 28, "MSS clamped");
  assert.is(ackOf(r.out), (isn + 1) >>> 0, "the SYN-ACK acknowledges the SYN only");
  assert.ok(checksumsValid(r.out));
  run(seg({ ...c, flags: ACK }, isn + 1, 5001));
  r = run(seg({ ...c, flags: ACK, payload: "GET / HTTP/1.0\r\n\r\n" }, isn + 1, 5001));
  const data = payloadOf(r.out);
  assert.is(data.length, 28 + 18);
  assert.equal([...data.subarray(0, 12)], [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  assert.equal([...data.subarray(12, 16)], [0x21, 0x11, 0x00, 0x0c], "PROXY, TCP over IPv4, 12 bytes");
  assert.equal([...data.subarray(16, 20)], CLIENT.split(".").map(Number), "the client's own address");
  assert.equal([...data.subarray(20, 24)], VIP.split(".").map(Number));
  assert.equal([(data[24] << 8) | data[25], (data[26] << 8) | data[27]], [40000, 80]);
  assert.is(new TextDecoder().decode(data.subarray(28)), "GET / HTTP/1.0\r\n\r\n");
  assert.is(seqOf(r.out), (isn + 1) >>> 0, "the insertion point keeps its seq");
  assert.is(new DataView(r.out.buffer).getUint16(2), r.out.length, "IPv4 total length follows");
  assert.ok(checksumsValid(r.out));
  // The server acknowledges header + request: the client hears of its 18 bytes only.
  r = run(seg({ ...s, flags: ACK, payload: "HTTP/1.0 200 OK\r\n\r\n" }, 5001, isn + 1 + 28 + 18));
  assert.is(ackOf(r.out), (isn + 1 + 18) >>> 0);
  assert.ok(checksumsValid(r.out));
  // The client's next segment, and a retransmission of the first, map consistently.
  r = run(seg({ ...c, flags: ACK | FIN }, isn + 1 + 18, 5020));
  assert.is(seqOf(r.out), (isn + 1 + 18 + 28) >>> 0);
  assert.ok(checksumsValid(r.out));
  r = run(seg({ ...c, flags: ACK, payload: "GET / HTTP/1.0\r\n\r\n" }, isn + 1, 5001));
  assert.is(payloadOf(r.out).length, 28 + 18, "a retransmitted first segment gets the header again");
});

pp("v1 text header over plain NAT too (both directions pass through tslb)", () => {
  const { run } = setup({ proxy: 1, masq: true });
  const c = { src: CLIENT, dst: VIP, sport: 40001, dport: 80 };
  run(seg({ ...c, flags: SYN }, 100, 0));
  const r = run(seg({ ...c, flags: ACK, payload: "x" }, 101, 1));
  assert.equal(fields4(r.out), { src: CLIENT, dst: RS1, sport: 40001, dport: 8080 });
  const text = new TextDecoder().decode(payloadOf(r.out));
  assert.is(text, `PROXY TCP4 ${CLIENT} ${VIP} 40001 80\r\nx`);
  assert.ok(checksumsValid(r.out));
});

pp("a connection picked up mid-flow (no SYN seen) gets no header", () => {
  const { run, pl } = setup({ proxy: 2 });
  pl.cfg.sysctl.sloppyTcp = 1;
  const r = run(seg({ src: CLIENT, dst: VIP, sport: 40002, dport: 80, flags: ACK, payload: "abc" }, 7, 9));
  assert.is(new TextDecoder().decode(payloadOf(r.out)), "abc");
});

pp("UDP v2: only the first datagram of a flow gets the header; checksums and lengths follow", () => {
  const { run } = setup({ proxy: 2 });
  const d = { src: CLIENT, dst: VIP, proto: "udp" as const, sport: 5000, dport: 53 };
  let r = run({ ...d, payload: "first" });
  const dv = new DataView(r.out.buffer);
  const data = r.out.subarray(28);
  assert.equal([...data.subarray(12, 16)], [0x21, 0x12, 0x00, 0x0c], "PROXY, UDP over IPv4");
  assert.equal([...data.subarray(16, 20)], CLIENT.split(".").map(Number));
  assert.is(new TextDecoder().decode(data.subarray(28)), "first");
  assert.is(dv.getUint16(24), 8 + 28 + 5, "UDP length");
  assert.is(dv.getUint16(2), r.out.length);
  assert.ok(checksumsValid(r.out));
  r = run({ ...d, payload: "second" });
  assert.is(new TextDecoder().decode(r.out.subarray(28)), "second");
  assert.ok(checksumsValid(r.out));
  // A datagram sent without a checksum keeps none.
  r = run({ ...d, sport: 5001, payload: "x", noUdpCsum: true });
  assert.is(new DataView(r.out.buffer).getUint16(26), 0);
  assert.is(r.out.length, 20 + 8 + 28 + 1);
});

const FIN = 0x01;

fn.run();
pp.run();
