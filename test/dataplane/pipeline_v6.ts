import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../../src/dataplane/snapshot.ts";
import { VERDICT_DROP, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { COUNTER_WORDS, DROP_BASE, MAX_DEST } from "../../src/stats/counters.ts";
import { formatIPv6 } from "../../src/wire/addr.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIp6, checksumsValid6, rng } from "../fixtures/builder.ts";
import { CLIENT6, RS6, VIP6, natSnapshot6 } from "../fixtures/snapshots.ts";

const SYN = 0x02, ACK = 0x10;

function setup() {
  const table = ConnTable.create(1 << 15, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const pl = new Pipeline(new ActiveConfig(natSnapshot6(), table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (b: Uint8Array) => {
    f.u8.set(b, HEADROOM);
    const v = pl.process(f, HEADROOM, b.length, 10);
    return { v, out: f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len) };
  };
  return { pl, run, counters };
}

function fields6(b: Uint8Array, l4 = 40) {
  const dv = new DataView(b.buffer);
  const w = (o: number) => formatIPv6([0, 1, 2, 3].map((i) => dv.getInt32(o + i * 4)));
  return { src: w(8), dst: w(24), sport: dv.getUint16(l4), dport: dv.getUint16(l4 + 2) };
}

const v6 = suite("pipeline: IPv6 NAT");
v6("TCP in and out, checksums patched through the 128-bit pseudo-header", () => {
  const { run } = setup();
  let r = run(buildIp6({ src: CLIENT6, dst: VIP6, sport: 40000, dport: 80, flags: SYN }));
  assert.is(r.v, VERDICT_TX);
  assert.equal(fields6(r.out), { src: CLIENT6, dst: RS6[0], sport: 40000, dport: 8080 });
  assert.ok(checksumsValid6(r.out));
  r = run(buildIp6({ src: RS6[0], dst: CLIENT6, sport: 8080, dport: 40000, flags: SYN | ACK }));
  assert.equal(fields6(r.out), { src: VIP6, dst: CLIENT6, sport: 80, dport: 40000 });
  assert.ok(checksumsValid6(r.out));
});
v6("UDP through a hop-by-hop options header", () => {
  const { run } = setup();
  const r = run(buildIp6({ src: CLIENT6, dst: VIP6, proto: "udp", sport: 5000, dport: 53, payload: "q", ext: 8 }));
  assert.is(r.v, VERDICT_TX);
  assert.equal(fields6(r.out, 48), { src: CLIENT6, dst: RS6[0], sport: 5000, dport: 5353 });
  assert.ok(checksumsValid6(r.out, 48));
});
v6("fragments, truncation and bad lengths are counted drops", () => {
  const { run, counters } = setup();
  const frag = buildIp6({ src: CLIENT6, dst: VIP6, sport: 1, dport: 80 });
  frag[6] = 44;
  assert.is(run(frag).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.FRAGMENT], 1);
  const b = buildIp6({ src: CLIENT6, dst: VIP6, sport: 1, dport: 80 });
  for (let n = 0; n < b.length; n++) assert.is(run(b.slice(0, n)).v, VERDICT_DROP, `truncated to ${n}`);
});
v6("10 000 random rewrites keep IPv6 checksums valid", () => {
  const { run } = setup();
  const r = rng(6);
  for (let n = 0; n < 10000; n++) {
    const payload = new Uint8Array(Math.floor(r() * 100)).map(() => Math.floor(r() * 256));
    const udp = r() < 0.5;
    const out = run(buildIp6({ src: `2001:2:0:2::${(n % 65535).toString(16)}`, dst: VIP6, proto: udp ? "udp" : "tcp", sport: 1024 + (n % 60000), dport: udp ? 53 : 80, flags: SYN, payload })).out;
    assert.ok(checksumsValid6(out), `packet ${n}`);
  }
});
v6("IPv6 fragments: the later one follows the first to the same server", () => {
  const { run } = setup();
  const whole = buildIp6({ src: CLIENT6, dst: VIP6, proto: "udp", sport: 5000, dport: 53, payload: new Uint8Array(100).fill(3) });
  const l4 = whole.subarray(40); // UDP header + 100 bytes
  const frag = (off: number, more: boolean, body: Uint8Array) => {
    const b = new Uint8Array(48 + body.length);
    b.set(whole.subarray(0, 40));
    const dv = new DataView(b.buffer);
    dv.setUint16(4, 8 + body.length); b[6] = 44;
    b[40] = 17; dv.setUint16(42, (off << 3) | (more ? 1 : 0)); dv.setUint32(44, 0xabcdef);
    b.set(body, 48);
    return b;
  };
  const a = run(frag(0, true, l4.subarray(0, 56)));
  assert.is(a.v, VERDICT_TX);
  assert.is(fields6(a.out, 48).dst, RS6[0]);
  const b = run(frag(7, false, l4.subarray(56)));
  assert.is(b.v, VERDICT_TX);
  assert.is(fields6(b.out).dst, RS6[0]);
});

v6.run();
