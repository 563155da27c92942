// Full NAT (--fullnat) through the real pipeline: both rewrites in each direction, the
// local-port pool (collisions, exhaustion, ports freed with their entries), IPv6.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { heapStats } from "bun:jsc";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig, type Snapshot } from "../../src/dataplane/snapshot.ts";
import { VERDICT_DROP, VERDICT_PASS, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { FWD_FULLNAT } from "../../src/forward/fwd.ts";
import { COUNTER_WORDS, DROP_BASE, MAX_DEST } from "../../src/stats/counters.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { formatIPv6 } from "../../src/wire/addr.ts";
import { buildIp4, buildIp6, checksumsValid, checksumsValid6, ip4, ip6, type Ip4Spec } from "../fixtures/builder.ts";
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

function setup(opts: { v6?: boolean; laddrs?: string[]; pool?: [number, number] } = {}) {
  const v6 = opts.v6 ?? false;
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const snap = fullNatSnapshot(v6, opts.laddrs ?? [v6 ? LADDR6 : LADDR], opts.pool ?? [61000, 61999]);
  const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (s: Ip4Spec, now = 10) => {
    const b = v6 ? buildIp6(s) : buildIp4(s);
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
  loop(20000);
  Bun.gc(true);
  const before = heapStats().heapSize;
  loop(200000);
  Bun.gc(true);
  assert.ok(heapStats().heapSize - before < 256 * 1024, `heap grew ${heapStats().heapSize - before} bytes`);
});

fn.run();
