// Partial checksums and TCP super-packet segmentation (wire/gso.ts) against full
// recomputation, and the pipeline's handling of offload state: NAT keeps it (and the
// result completes to the checksum a plain packet gets), paths that cannot carry it
// complete the checksum or ask for segmentation before anything is counted.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { heapStats } from "bun:jsc";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../../src/dataplane/snapshot.ts";
import { VERDICT_SEGMENT, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { FWD_FULLNAT } from "../../src/forward/fwd.ts";
import { COUNTER_WORDS, K_INPKTS, MAX_DEST, svcBase } from "../../src/stats/counters.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { csumComplete, csumSetPartial, gsoSegments, tcpGsoSegment } from "../../src/wire/gso.ts";
import { buildIp4, buildIp6, checksumsValid, checksumsValid6, ip4, ip6 } from "../fixtures/builder.ts";
import { CLIENT, CLIENT6, RS6, VIP, VIP6, natSnapshot, natSnapshot6 } from "../fixtures/snapshots.ts";

const ACK = 0x10, PSH = 0x08, FIN = 0x01, CWR = 0x80;

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + (i >> 8)) & 0xff;
  return b;
}

/** Turns a packet's complete transport checksum into the partial form the kernel hands over. */
function makePartial(u8: Uint8Array, l4: number, csumAt: number, proto: number): void {
  csumSetPartial(u8, 0, l4, u8.length, csumAt, proto);
}

const g = suite("gso: partial checksums and segmentation");

g("a partial checksum completes to the full one (TCP and UDP, v4 and v6)", () => {
  for (const [b, l4, at, proto, valid] of [
    [buildIp4({ src: CLIENT, dst: VIP, sport: 4000, dport: 80, flags: ACK, payload: pattern(999) }), 20, 36, 6, checksumsValid],
    [buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 4000, dport: 53, payload: pattern(301) }), 20, 26, 17, checksumsValid],
    [buildIp6({ src: CLIENT6, dst: VIP6, sport: 4000, dport: 80, flags: ACK, payload: pattern(777) }), 40, 56, 6, (u: Uint8Array) => checksumsValid6(u)],
  ] as const) {
    const want = b.slice();
    makePartial(b, l4, at, proto);
    assert.not.equal(b, want, "the field now holds the pseudo-header sum");
    csumComplete(b, l4, b.length, at, proto);
    assert.equal(b, want);
    assert.ok(valid(b));
  }
});

g("a v4 super-packet is cut into mss segments: valid checksums, ids, sequence, flags, the same bytes", () => {
  const payload = pattern(10_000);
  const sp = buildIp4({ src: CLIENT, dst: VIP, sport: 4000, dport: 80, flags: ACK | PSH | FIN | CWR, payload });
  const mss = 1448;
  const n = gsoSegments(payload.length, mss);
  assert.is(n, 7);
  const u8 = new Uint8Array(sp.length + 4096);
  u8.set(sp, 0);
  const at = sp.length + 64;
  const got: number[] = [];
  for (let k = 0; k < n; k++) {
    const len = tcpGsoSegment(u8, 0, 20, sp.length, mss, k, at);
    const seg = u8.slice(at, at + len);
    const dv = new DataView(seg.buffer);
    assert.ok(checksumsValid(seg), `segment ${k} checksums`);
    assert.is(dv.getUint16(2), len);
    assert.is(dv.getUint16(4), (0x1234 + k) & 0xffff, "IPv4 id advances");
    assert.is(dv.getUint32(24), 1000 + k * mss, "sequence");
    const flags = seg[33];
    assert.is((flags & (FIN | PSH)) !== 0, k === n - 1, `FIN/PSH only on the last (segment ${k})`);
    assert.is((flags & CWR) !== 0, k === 0, "CWR only on the first");
    assert.ok(len - 40 <= mss);
    got.push(...seg.subarray(40));
  }
  assert.equal(Uint8Array.from(got), payload);
});

g("a v6 super-packet segments too", () => {
  const payload = pattern(4000);
  const sp = buildIp6({ src: CLIENT6, dst: VIP6, sport: 4000, dport: 80, flags: ACK, payload });
  const u8 = new Uint8Array(sp.length * 3);
  u8.set(sp, 0);
  const n = gsoSegments(payload.length, 1000);
  assert.is(n, 4);
  for (let k = 0; k < n; k++) {
    const len = tcpGsoSegment(u8, 0, 40, sp.length, 1000, k, sp.length + 64);
    const seg = u8.slice(sp.length + 64, sp.length + 64 + len);
    assert.ok(checksumsValid6(seg), `segment ${k}`);
    assert.is(new DataView(seg.buffer).getUint16(4), len - 40);
  }
});

/** A NAT (or full-NAT) pipeline with one established flow (client port 4000). */
function natPipeline(v6: boolean, fullnat = false) {
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const snap = v6 ? natSnapshot6(1) : natSnapshot(1, "rr");
  if (fullnat) {
    for (const s of snap.services) for (const d of s.dests) Object.assign(d, { fwd: FWD_FULLNAT, laddrs: v6 ? ip6("2001:2:0:1::1") : [ip4("198.18.1.1"), 0, 0, 0] });
    snap.fullnatPorts = [61000, 65534];
  }
  const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 70_000);
  const build = (flags: number, payload: Uint8Array) => v6
    ? buildIp6({ src: CLIENT6, dst: VIP6, sport: 4000, dport: 80, flags, payload })
    : buildIp4({ src: CLIENT, dst: VIP, sport: 4000, dport: 80, flags, payload });
  const run = (b: Uint8Array, partial: boolean, gso = 0) => {
    f.u8.set(b, HEADROOM);
    const p = pl.pkt;
    const l4 = HEADROOM + (v6 ? 40 : 20);
    if (partial) makePartial(f.u8.subarray(HEADROOM, HEADROOM + b.length), l4 - HEADROOM, l4 - HEADROOM + 16, 6);
    p.csumPartial = partial ? 1 : 0;
    p.csumStart = l4;
    p.csumAt = l4 + 16;
    p.gsoType = gso;
    p.gsoSize = gso ? 1448 : 0;
    const v = pl.process(f, HEADROOM, b.length, 10);
    return { v, out: f.u8.slice(p.start, p.start + p.len), l4: p.l4 - p.start, partial: p.csumPartial };
  };
  run(build(0x02, new Uint8Array(0)), false);
  return { pl, counters, run, build, table };
}

for (const v6 of [false, true]) {
  for (const fullnat of [false, true]) {
    g(`${fullnat ? "full NAT" : "NAT"} ${v6 ? "v6" : "v4"}: a partial packet leaves partial, and completes to what a plain packet gets`, () => {
      const { run, build } = natPipeline(v6, fullnat);
      const data = build(ACK, pattern(1200));
      const plain = run(data, false);
      const part = run(data, true);
      assert.is(plain.v, VERDICT_TX);
      assert.is(part.v, VERDICT_TX);
      assert.is(part.partial, 1);
      csumComplete(part.out, part.l4, part.out.length, part.l4 + 16, 6);
      assert.equal(part.out, plain.out);
      assert.ok(v6 ? checksumsValid6(part.out) : checksumsValid(part.out));
    });
  }
}

g("NAT takes a super-packet through as one (counted once), allocation-free", () => {
  const { run, build, counters } = natPipeline(false);
  const data = build(ACK, pattern(60_000));
  const before = counters[svcBase(1) + K_INPKTS];
  const r = run(data, true, 1);
  assert.is(r.v, VERDICT_TX);
  assert.is(r.partial, 1);
  assert.is(counters[svcBase(1) + K_INPKTS], before + 1);
  Bun.gc(true);
  const h0 = heapStats().objectCount;
  for (let i = 0; i < 20_000; i++) run(data.subarray(0, 2000), true, 0);
  Bun.gc(true);
  assert.ok(heapStats().objectCount - h0 < 50, "no allocation per packet");
});

g("NAT46 cannot carry a super-packet: VERDICT_SEGMENT before anything is counted; a partial one is completed", () => {
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const snap = natSnapshot(1, "rr");
  for (const s of snap.services) {
    for (const d of s.dests) Object.assign(d, { fwd: FWD_FULLNAT, af: 6, addr: ip6(RS6[0]), laddrs: ip6("2001:2:0:1::1") });
  }
  snap.fullnatPorts = [61000, 65534];
  const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 70_000);
  const run = (b: Uint8Array, partial: boolean, gso: number) => {
    f.u8.set(b, HEADROOM);
    if (partial) makePartial(f.u8.subarray(HEADROOM, HEADROOM + b.length), 20, 36, 6);
    const p = pl.pkt;
    p.csumPartial = partial ? 1 : 0;
    p.csumStart = HEADROOM + 20;
    p.csumAt = HEADROOM + 36;
    p.gsoType = gso;
    p.gsoSize = 1448;
    return pl.process(f, HEADROOM, b.length, 10);
  };
  assert.is(run(buildIp4({ src: CLIENT, dst: VIP, sport: 4000, dport: 80, flags: 0x02 }), false, 0), VERDICT_TX);
  const inpkts = counters[svcBase(1) + K_INPKTS];
  const big = buildIp4({ src: CLIENT, dst: VIP, sport: 4000, dport: 80, flags: ACK, payload: pattern(20_000) });
  assert.is(run(big, true, 1), VERDICT_SEGMENT);
  assert.is(counters[svcBase(1) + K_INPKTS], inpkts, "nothing counted for the super-packet itself");
  assert.is(run(buildIp4({ src: CLIENT, dst: VIP, sport: 4000, dport: 80, flags: ACK, payload: pattern(500) }), true, 0), VERDICT_TX);
  const p = pl.pkt;
  assert.is(p.csumPartial, 0, "completed: the packet leaves with a full checksum");
  assert.ok(checksumsValid6(f.u8.slice(p.start, p.start + p.len)));
});

g.run();
