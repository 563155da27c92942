import { suite } from "uvu";
import * as assert from "uvu/assert";
import { heapStats } from "bun:jsc";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../../src/dataplane/snapshot.ts";
import { VERDICT_DROP, VERDICT_PASS, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { COUNTER_WORDS, DROP_BASE, K_CONNS, K_INBYTES, K_INPKTS, K_OUTPKTS, MAX_DEST, MISC_BASE, M_PASS, destBase, svcBase } from "../../src/stats/counters.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIp4, checksumsValid, ip4, type Ip4Spec, rng } from "../fixtures/builder.ts";
import { CLIENT, RS1, RS2, VIP, natSnapshot } from "../fixtures/snapshots.ts";

const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;

function setup(sched = "rr") {
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const pl = new Pipeline(new ActiveConfig(natSnapshot(1, sched), table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 2048);
  /** Runs one packet; returns the verdict and the bytes that would be sent. */
  const run = (s: Ip4Spec | Uint8Array, now = 10) => {
    const b = s instanceof Uint8Array ? s : buildIp4(s);
    f.u8.set(b, HEADROOM);
    const v = pl.process(f, HEADROOM, b.length, now);
    return { v, out: f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len) };
  };
  return { table, counters, pl, run };
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
  assert.is(table.destState[1 * 4], 1, "ESTABLISHED counts as active");
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
  assert.is(table.destState[3 * 4 + 1], 1, "UDP is always inactive");
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

const drops = suite("pipeline: drops and passes are counted");
drops("each bad input moves exactly its counter", () => {
  const { run, counters } = setup();
  const cases: [string, Uint8Array | Ip4Spec, number][] = [
    ["empty", new Uint8Array(0), DROP.TRUNCATED],
    ["ipv6", new Uint8Array([0x60, 0, 0, 0]), DROP.UNSUPPORTED_L3],
    ["short v4", new Uint8Array([0x45, 0, 0, 20]), DROP.TRUNCATED],
    ["ack without conn", { src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: ACK }, DROP.NO_CONN],
    ["rst without conn", { src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: SYN | RST }, DROP.NO_CONN],
    ["no service on port", { src: CLIENT, dst: VIP, sport: 1, dport: 81, flags: SYN }, DROP.NO_SERVICE],
  ];
  const badCsum = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 }); badCsum[10] ^= 0xff;
  cases.push(["bad ip checksum", badCsum, DROP.BAD_IP_CSUM]);
  const badLen = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 }); badLen[3] = 200;
  cases.push(["total length past the frame", badLen, DROP.BAD_IP_HEADER]);
  const frag = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 }); frag[6] = 0x20; frag[10] = 0; frag[11] = 0;
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
drops("1 000 000 random and mutated frames: a verdict each, no exception, counters add up", () => {
  const { pl, counters } = setup();
  const f = Frame.alloc(HEADROOM + 2048);
  const r = rng(99);
  const seeds = [
    buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN }),
    buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 40000, dport: 53, payload: "xyz" }),
    buildIp4({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, flags: ACK, payload: "hello" }),
  ];
  let verdicts = 0, tx = 0;
  const N = 1_000_000;
  for (let n = 0; n < N; n++) {
    const base = seeds[n % 3];
    let len = base.length;
    f.u8.set(base, HEADROOM);
    const mode = r();
    if (mode < 0.3) len = Math.floor(r() * (base.length + 1));
    else if (mode < 0.7) { const flips = 1 + Math.floor(r() * 4); for (let i = 0; i < flips; i++) f.u8[HEADROOM + Math.floor(r() * len)] ^= 1 << Math.floor(r() * 8); }
    else if (mode < 0.8) { len = Math.floor(r() * 100); for (let i = 0; i < len; i++) f.u8[HEADROOM + i] = Math.floor(r() * 256); }
    const v = pl.process(f, HEADROOM, len, 10 + (n >> 16));
    if (v === VERDICT_DROP || v === VERDICT_PASS || v === VERDICT_TX) verdicts++;
    if (v === VERDICT_TX) tx++;
  }
  assert.is(verdicts, N);
  let dropped = 0;
  for (let i = 1; i < DROP.UNSUPPORTED_FWD + 1; i++) dropped += counters[DROP_BASE + i];
  assert.is(dropped + counters[MISC_BASE + M_PASS] + tx, N, "every packet counted once");
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
