import { suite } from "uvu";
import * as assert from "uvu/assert";
import { heapStats } from "bun:jsc";
import { DEST_F_OVERLOAD, DS_ACTIVE, DS_FLAGS, DS_INACTIVE, DS_LTHRESH, DS_PERSIST, DS_STRIDE, DS_UTHRESH } from "../../src/conntrack/dest_state.ts";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig, type Snapshot } from "../../src/dataplane/snapshot.ts";
import { VERDICT_DROP, VERDICT_PASS, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { COUNTER_WORDS, DROP_BASE, K_CONNS, K_INBYTES, K_INPKTS, K_OUTPKTS, MAX_DEST, MISC_BASE, M_PASS, destBase, svcBase } from "../../src/stats/counters.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIp4, checksumsValid, ip4, type Ip4Spec } from "../fixtures/builder.ts";
import { CLIENT, RS1, RS2, VIP, natSnapshot } from "../fixtures/snapshots.ts";
import { fuzzPipeline, fuzzSnapshot } from "../fixtures/fuzz.ts";

const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;

function setup(sched = "rr", edit?: (s: Snapshot) => void) {
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const snap = natSnapshot(1, sched);
  edit?.(snap);
  const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 2048);
  /** Runs one packet; returns the verdict and the bytes that would be sent. */
  const run = (s: Ip4Spec | Uint8Array, now = 10) => {
    const b = s instanceof Uint8Array ? s : buildIp4(s);
    f.u8.set(b, HEADROOM);
    const v = pl.process(f, HEADROOM, b.length, now);
    return { v, out: f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len) };
  };
  /** Swaps in an edited copy of the snapshot, as the worker does between batches. */
  const reconfigure = (f: (s: Snapshot) => void) => {
    const next = natSnapshot(2, sched);
    edit?.(next);
    f(next);
    pl.cfg = new ActiveConfig(next, table.destState, pl.cfg);
  };
  return { table, counters, pl, run, reconfigure };
}

function fields(b: Uint8Array) {
  const dv = new DataView(b.buffer);
  const a = (o: number) => [b[o], b[o + 1], b[o + 2], b[o + 3]].join(".");
  return { src: a(12), dst: a(16), sport: dv.getUint16(20), dport: dv.getUint16(22) };
}

const nat = suite("pipeline: NAT golden flows");
nat("a TCP connection: DNAT in, SNAT out, states and counters", () => {
  const { run, counters, table } = setup();
  let r = run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN });
  assert.is(r.v, VERDICT_TX);
  assert.equal(fields(r.out), { src: CLIENT, dst: RS1, sport: 40000, dport: 8080 });
  assert.ok(checksumsValid(r.out));
  r = run({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, flags: SYN | ACK });
  assert.is(r.v, VERDICT_TX);
  assert.equal(fields(r.out), { src: VIP, dst: CLIENT, sport: 80, dport: 40000 });
  assert.ok(checksumsValid(r.out));
  r = run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK, payload: "GET / HTTP/1.0\r\n\r\n" });
  assert.is(r.v, VERDICT_TX);
  assert.ok(checksumsValid(r.out));
  assert.is(table.destState[1 * DS_STRIDE + DS_ACTIVE], 1, "ESTABLISHED counts as active");
  assert.is(counters[svcBase(1) + K_CONNS], 1);
  assert.is(counters[destBase(1) + K_INPKTS], 2);
  assert.is(counters[destBase(1) + K_OUTPKTS], 1);
  assert.is(counters[svcBase(1) + K_INBYTES], 40 + 58);
});
nat("a new connection right after a reply packet is DNATed, not SNATed", () => {
  const { run } = setup();
  run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN });
  run({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, flags: SYN | ACK });
  const r = run({ src: CLIENT, dst: VIP, sport: 40001, dport: 80, flags: SYN });
  assert.equal(fields(r.out), { src: CLIENT, dst: RS2, sport: 40001, dport: 8080 });
});
nat("rr alternates new connections between the two servers", () => {
  const { run } = setup();
  const dsts = [];
  for (let i = 0; i < 6; i++) dsts.push(fields(run({ src: CLIENT, dst: VIP, sport: 41000 + i, dport: 80, flags: SYN }).out).dst);
  assert.equal(dsts, [RS1, RS2, RS1, RS2, RS1, RS2]);
});
nat("UDP request and reply; a zero UDP checksum stays zero", () => {
  const { run, table } = setup();
  let r = run({ src: CLIENT, dst: VIP, proto: "udp", sport: 5000, dport: 53, payload: "q" });
  assert.equal(fields(r.out), { src: CLIENT, dst: RS1, sport: 5000, dport: 5353 });
  assert.ok(checksumsValid(r.out));
  r = run({ src: RS1, dst: CLIENT, proto: "udp", sport: 5353, dport: 5000, payload: "a", noUdpCsum: true });
  assert.equal(fields(r.out), { src: VIP, dst: CLIENT, sport: 53, dport: 5000 });
  assert.is(new DataView(r.out.buffer).getUint16(26), 0);
  assert.is(table.destState[3 * DS_STRIDE + DS_INACTIVE], 1, "UDP is always inactive");
});
nat("a SYN on a TIME_WAIT entry is rescheduled at once", () => {
  const { run, table } = setup();
  const c = { src: CLIENT, dst: VIP, sport: 42000, dport: 80 };
  const s = { src: RS1, dst: CLIENT, sport: 8080, dport: 42000 };
  run({ ...c, flags: SYN }); run({ ...s, flags: SYN | ACK }); run({ ...c, flags: ACK });
  run({ ...c, flags: FIN | ACK }); run({ ...s, flags: FIN | ACK }); run({ ...c, flags: ACK });
  assert.is(table.count, 1);
  const r = run({ ...c, flags: SYN });
  assert.is(fields(r.out).dst, RS2, "scheduled afresh (rr moved on)");
  assert.is(table.count, 1);
});
nat.run();

const persist = suite("pipeline: persistence, thresholds, one-packet, quiescing");
persist("-p: a client sticks to one server across source ports; the template is counted and listed", () => {
  const { run, table } = setup("rr", (s) => { s.services[0].persistent = true; s.services[0].timeoutSec = 360; s.services[0].mask = [ip4("255.255.255.0"), -1, -1, -1]; });
  const dsts = [];
  for (let i = 0; i < 4; i++) dsts.push(fields(run({ src: CLIENT, dst: VIP, sport: 45000 + i, dport: 80, flags: SYN }).out).dst);
  assert.equal(dsts, [RS1, RS1, RS1, RS1]);
  // Same /24: same template. Another /24: scheduled afresh (rr moves on to RS2).
  assert.is(fields(run({ src: "198.18.0.77", dst: VIP, sport: 1, dport: 80, flags: SYN }).out).dst, RS1);
  assert.is(fields(run({ src: "198.18.5.1", dst: VIP, sport: 1, dport: 80, flags: SYN }).out).dst, RS2);
  assert.is(table.destState[1 * DS_STRIDE + DS_PERSIST], 1, "one template for 198.18.0.0/24");
  assert.is(table.destState[1 * DS_STRIDE + DS_INACTIVE], 5);
  assert.is(table.count, 6 + 2, "six connections, two templates");
});
persist("a persistent port-0 service passes the client's port through and sticks across ports", () => {
  const { run, table } = setup("rr", (s) => {
    const svc = s.services[0];
    svc.port = 0; svc.persistent = true; svc.timeoutSec = 360;
    for (const d of svc.dests) d.port = 0;
  });
  const a = fields(run({ src: CLIENT, dst: VIP, sport: 1000, dport: 80, flags: SYN }).out);
  const b = fields(run({ src: CLIENT, dst: VIP, sport: 1001, dport: 443, flags: SYN }).out);
  assert.equal([a.dst, a.dport, b.dst, b.dport], [RS1, 80, RS1, 443]);
  assert.is(table.destState[1 * DS_STRIDE + DS_PERSIST], 1, "one template (port 0) for both ports");
});
persist("a template outlives its timeout while it controls connections, then expires", () => {
  const { run, table } = setup("rr", (s) => { s.services[0].persistent = true; s.services[0].timeoutSec = 10; });
  run({ src: CLIENT, dst: VIP, sport: 1000, dport: 80, flags: SYN }, 100);
  run({ src: RS1, dst: CLIENT, sport: 8080, dport: 1000, flags: SYN | ACK }, 100);
  run({ src: CLIENT, dst: VIP, sport: 1000, dport: 80, flags: ACK }, 100);
  table.sweep(200, table.capacity);
  assert.is(table.destState[1 * DS_STRIDE + DS_PERSIST], 1, "kept: it still controls an ESTABLISHED connection");
  assert.is(fields(run({ src: CLIENT, dst: VIP, sport: 1001, dport: 80, flags: SYN }, 200).out).dst, RS1, "still sticky");
  table.sweep(5000, table.capacity); // the connection times out; the template is re-checked 60 s later
  table.sweep(5061, table.capacity);
  assert.is(table.count, 0);
  assert.is(table.destState[1 * DS_STRIDE + DS_PERSIST], 0);
});
persist("a template to a removed destination is dropped and the client rescheduled", () => {
  const { run, reconfigure } = setup("rr", (s) => { s.services[0].persistent = true; s.services[0].timeoutSec = 360; });
  assert.is(fields(run({ src: CLIENT, dst: VIP, sport: 1000, dport: 80, flags: SYN }).out).dst, RS1);
  reconfigure((s) => { s.services[0].dests.splice(0, 1); });
  assert.is(fields(run({ src: CLIENT, dst: VIP, sport: 1001, dport: 80, flags: SYN }).out).dst, RS2);
});
persist("-x/-y: OVERLOAD at the upper threshold, cleared below the lower one", () => {
  const { run, table } = setup("rr", (s) => { s.services[0].dests[0].uThreshold = 2; });
  table.destState[1 * DS_STRIDE + DS_UTHRESH] = 2;
  table.destState[1 * DS_STRIDE + DS_LTHRESH] = 1;
  const dsts = [];
  for (let i = 0; i < 6; i++) dsts.push(fields(run({ src: CLIENT, dst: VIP, sport: 2000 + i, dport: 80, flags: SYN }).out).dst);
  assert.equal(dsts, [RS1, RS2, RS1, RS2, RS2, RS2], "RS1 takes at most 2");
  assert.ok((table.destState[1 * DS_STRIDE + DS_FLAGS] & DEST_F_OVERLOAD) !== 0);
  // Both RS1 connections time out (SYN_RECV 60 s): below -y 1 → cleared.
  table.sweep(10 + 61, table.capacity);
  assert.is(table.destState[1 * DS_STRIDE + DS_FLAGS] & DEST_F_OVERLOAD, 0);
});
persist("weight 0 quiesces: no new connections, the open one keeps working", () => {
  const { run, reconfigure } = setup("rr");
  run({ src: CLIENT, dst: VIP, sport: 3000, dport: 80, flags: SYN });
  reconfigure((s) => { s.services[0].dests[0].weight = 0; });
  assert.is(fields(run({ src: CLIENT, dst: VIP, sport: 3000, dport: 80, flags: ACK }).out).dst, RS1, "established flow continues");
  for (let i = 0; i < 3; i++) assert.is(fields(run({ src: CLIENT, dst: VIP, sport: 3100 + i, dport: 80, flags: SYN }).out).dst, RS2);
});
persist("-o: every UDP datagram is scheduled on its own; replies of the newest still translate", () => {
  const { run, table } = setup("rr", (s) => { s.services[1].ops = true; });
  const d1 = fields(run({ src: CLIENT, dst: VIP, proto: "udp", sport: 7000, dport: 53, payload: "a" }).out).dst;
  const d2 = fields(run({ src: CLIENT, dst: VIP, proto: "udp", sport: 7000, dport: 53, payload: "b" }).out).dst;
  assert.equal([d1, d2], [RS1, RS2]);
  assert.is(table.count, 1);
  assert.equal(fields(run({ src: RS2, dst: CLIENT, proto: "udp", sport: 5353, dport: 7000, payload: "r" }).out).src, VIP);
});
persist("a client's segment for a removed destination is answered with a reset from the VIP", () => {
  const { run, reconfigure, counters } = setup("rr");
  run({ src: CLIENT, dst: VIP, sport: 46000, dport: 80, flags: SYN });
  reconfigure((s) => { s.services[0].dests.splice(0, 1); });
  const r = run({ src: CLIENT, dst: VIP, sport: 46000, dport: 80, flags: ACK, payload: "GET /" });
  assert.is(r.v, VERDICT_TX);
  assert.equal(fields(r.out), { src: VIP, dst: CLIENT, sport: 80, dport: 46000 });
  assert.is(r.out[33], 0x04, "RST (the segment had ACK: no ACK in the reset)");
  assert.is(r.out.length, 40);
  assert.ok(checksumsValid(r.out));
  assert.is(counters[DROP_BASE + DROP.DEST_GONE], 1);
});
persist("a --check-via-vip probe's packets reach the destination it checks while that one is down", () => {
  const pin = (s: Snapshot) => { s.probePins = [{ sport: 29101, destId: 1 }]; };
  const { run, reconfigure, counters } = setup("rr", pin);
  const probe = { src: CLIENT, dst: VIP, sport: 29101, dport: 80 };
  assert.equal(fields(run({ ...probe, flags: SYN }).out).dst, RS1);
  // The health check fails RS1: it stays in the rules but is compiled unavailable.
  reconfigure((s) => { pin(s); s.services[0].dests[0].available = false; });
  // The probe's RST (clearing a half-open connection on the server) and its next SYN go to RS1 ...
  let r = run({ ...probe, flags: RST });
  assert.equal([r.v, fields(r.out).dst], [VERDICT_TX, RS1]);
  r = run({ ...probe, flags: SYN });
  assert.equal([r.v, fields(r.out).dst], [VERDICT_TX, RS1]);
  assert.is(counters[DROP_BASE + DROP.DEST_GONE], 0);
  // ... while a client's new connection goes to the server that is up.
  assert.equal(fields(run({ src: CLIENT, dst: VIP, sport: 46100, dport: 80, flags: SYN }).out).dst, RS2);
});
persist("expire_nodest_conn=0 keeps IPVS's silent drop for a removed destination", () => {
  const { run, reconfigure, counters } = setup("rr", (s) => { s.sysctl.expireNodestConn = 0; });
  run({ src: CLIENT, dst: VIP, proto: "udp", sport: 7100, dport: 53, payload: "a" });
  reconfigure((s) => { s.services[1].dests.splice(0, 1); });
  assert.is(run({ src: CLIENT, dst: VIP, proto: "udp", sport: 7100, dport: 53, payload: "b" }).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.DEST_GONE], 1);
});
persist("conn_reuse_mode=0: a SYN on a TIME_WAIT entry follows the old entry", () => {
  const { run } = setup("rr", (s) => { s.sysctl.connReuseMode = 0; });
  const c = { src: CLIENT, dst: VIP, sport: 42000, dport: 80 };
  const sv = { src: RS1, dst: CLIENT, sport: 8080, dport: 42000 };
  run({ ...c, flags: SYN }); run({ ...sv, flags: SYN | ACK }); run({ ...c, flags: ACK });
  run({ ...c, flags: FIN | ACK }); run({ ...sv, flags: FIN | ACK }); run({ ...c, flags: ACK });
  assert.is(fields(run({ ...c, flags: SYN }).out).dst, RS1);
});
persist.run();

const frags = suite("pipeline: fragments follow their first fragment");
/** Splits an IPv4 packet into a first fragment of `firstLen` payload bytes (MF) and the rest. */
function fragment4(b: Uint8Array, firstLen: number): [Uint8Array, Uint8Array] {
  const fix = (x: Uint8Array) => {
    const dv = new DataView(x.buffer);
    dv.setUint16(2, x.length); dv.setUint16(10, 0);
    let s = 0; for (let i = 0; i < 20; i += 2) s += dv.getUint16(i);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    dv.setUint16(10, ~s & 0xffff);
    return x;
  };
  const a = b.slice(0, 20 + firstLen); a[6] = 0x20; a[7] = 0; // MF, offset 0
  const c = new Uint8Array(20 + b.length - 20 - firstLen);
  c.set(b.subarray(0, 20)); c.set(b.subarray(20 + firstLen), 20);
  new DataView(c.buffer).setUint16(6, firstLen / 8); // offset in 8-byte units, no MF
  return [fix(a), fix(c)];
}
frags("a UDP datagram in two fragments: both reach the same real server, the second rewritten by id", () => {
  const { run } = setup();
  const whole = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 5000, dport: 53, payload: new Uint8Array(100).fill(7), id: 0x4242 });
  const [first, later] = fragment4(whole, 48);
  const a = run(first);
  assert.is(a.v, VERDICT_TX);
  assert.equal(fields(a.out).dst, RS1);
  const b = run(later);
  assert.is(b.v, VERDICT_TX);
  assert.is([b.out[16], b.out[17], b.out[18], b.out[19]].join("."), RS1, "later fragment goes to the same server");
  assert.is(b.out[10] * 256 + b.out[11] !== 0, true);
  // Reassembled at the server, the datagram's UDP checksum (patched in the first fragment) still holds.
  const re = new Uint8Array(20 + 8 + 100);
  re.set(a.out.subarray(0, 20 + 48)); re.set(b.out.subarray(20), 20 + 48);
  new DataView(re.buffer).setUint16(2, re.length); re[6] = 0x40; re[7] = 0;
  assert.ok(checksumsValid(((x) => { const dv = new DataView(x.buffer); dv.setUint16(10, 0); let s = 0; for (let i = 0; i < 20; i += 2) s += dv.getUint16(i); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); dv.setUint16(10, ~s & 0xffff); return x; })(re)));
});
frags("a later fragment of another datagram, or of a reused connection slot, is dropped, never guessed", () => {
  const { run, counters } = setup();
  const whole = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 5001, dport: 53, payload: new Uint8Array(64), id: 7 });
  const [first, later] = fragment4(whole, 32);
  run(first);
  const other = later.slice(); other[5] = 8; // fragment id 8: unknown datagram
  const dv = new DataView(other.buffer); dv.setUint16(10, 0); let s = 0; for (let i = 0; i < 20; i += 2) s += dv.getUint16(i); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); dv.setUint16(10, ~s & 0xffff);
  assert.is(run(other).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.FRAGMENT], 1);
});
frags.run();

const drops = suite("pipeline: drops and passes are counted");
drops("each bad input moves exactly its counter", () => {
  const { run, counters } = setup();
  const cases: [string, Uint8Array | Ip4Spec, number][] = [
    ["empty", new Uint8Array(0), DROP.TRUNCATED],
    ["short ipv6", new Uint8Array([0x60, 0, 0, 0]), DROP.TRUNCATED],
    ["ip version 5", new Uint8Array([0x50, 0, 0, 0]), DROP.UNSUPPORTED_L3],
    ["short v4", new Uint8Array([0x45, 0, 0, 20]), DROP.TRUNCATED],
    ["ack without conn", { src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: ACK }, DROP.NO_CONN],
    ["rst without conn", { src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: SYN | RST }, DROP.NO_CONN],
    ["no service on port", { src: CLIENT, dst: VIP, sport: 1, dport: 81, flags: SYN }, DROP.NO_SERVICE],
  ];
  const badCsum = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 }); badCsum[10] ^= 0xff;
  cases.push(["bad ip checksum", badCsum, DROP.BAD_IP_CSUM]);
  const badLen = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 }); badLen[3] = 200;
  cases.push(["total length past the frame", badLen, DROP.BAD_IP_HEADER]);
  // A later fragment (offset 8 bytes) of a datagram whose first fragment was never seen.
  const frag = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 }); frag[6] = 0x00; frag[7] = 0x01; frag[10] = 0; frag[11] = 0;
  const fdv = new DataView(frag.buffer); let sum = 0; for (let i = 0; i < 20; i += 2) sum += fdv.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16); fdv.setUint16(10, ~sum & 0xffff);
  cases.push(["fragment", frag, DROP.FRAGMENT]);
  const shortTcp = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 }); shortTcp[32] = 0x10;
  cases.push(["tcp data offset 4", shortTcp, DROP.BAD_L4_HEADER]);
  for (const [name, input, reason] of cases) {
    const before = counters[DROP_BASE + reason];
    assert.is(run(input).v, VERDICT_DROP, name);
    assert.is(counters[DROP_BASE + reason], before + 1, name);
  }
});
drops("a real server's packet with no connection passes unchanged", () => {
  const { run, counters } = setup();
  const b = buildIp4({ src: RS2, dst: CLIENT, sport: 8080, dport: 1234, flags: ACK });
  const r = run(b);
  assert.is(r.v, VERDICT_PASS);
  assert.equal(r.out, b);
  assert.is(counters[MISC_BASE + M_PASS], 1);
});
drops("1 000 000 random and mutated frames (v4, v6, options, ICMP errors, fragments): a verdict each, no exception, counters add up", () => {
  const table = ConnTable.create(1 << 16, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const pl = new Pipeline(new ActiveConfig(fuzzSnapshot(), table.destState, null), table, counters);
  const res = fuzzPipeline(pl, counters, 1_000_000, 99);
  assert.is(res.verdicts, res.frames);
  assert.is(res.accounted, res.frames, "every frame counted once");
});
drops.run();

const alloc = suite("pipeline: the established-flow path allocates nothing");
alloc("heap object count is flat over 200 000 packets", () => {
  const { pl, run } = setup();
  run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN });
  const f = Frame.alloc(HEADROOM + 2048);
  const inb = buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK, payload: "x".repeat(100) });
  const outb = buildIp4({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, flags: ACK, payload: "y".repeat(100) });
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      const b = (i & 1) === 0 ? inb : outb;
      f.u8.set(b, HEADROOM);
      pl.process(f, HEADROOM, b.length, 11);
    }
  };
  loop(20000);
  Bun.gc(true);
  const before = heapStats().objectCount;
  loop(200000);
  const after = heapStats().objectCount;
  assert.ok(after - before < 50, `heap grew by ${after - before} objects`);
  void ip4;
});
alloc.run();
