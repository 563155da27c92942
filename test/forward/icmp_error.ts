// Golden ICMP error translation in NAT mode (reference §5.5).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../../src/dataplane/snapshot.ts";
import { VERDICT_DROP, VERDICT_PASS, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { COUNTER_WORDS, K_INPKTS, K_OUTPKTS, MAX_DEST, destBase } from "../../src/stats/counters.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIcmp4, buildIp4, icmpChecksumsValid, ip4 } from "../fixtures/builder.ts";
import { CLIENT, RS1, VIP, natSnapshot } from "../fixtures/snapshots.ts";

function setup() {
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const pl = new Pipeline(new ActiveConfig(natSnapshot(1, "rr"), table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (b: Uint8Array) => {
    f.u8.set(b, HEADROOM);
    const v = pl.process(f, HEADROOM, b.length, 10);
    return { v, out: f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len) };
  };
  return { run, counters };
}
const a4 = (b: Uint8Array, o: number) => [b[o], b[o + 1], b[o + 2], b[o + 3]].join(".");
const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];

const s = suite("ICMP errors of NAT connections");
s("port unreachable from the real server reaches the client as an error about the VIP", () => {
  const { run, counters } = setup();
  const req = buildIp4({ src: CLIENT, dst: VIP, proto: "udp", sport: 5000, dport: 53, payload: "q" });
  const dnat = run(req).out; // CLIENT:5000 -> RS1:5353
  const err = buildIcmp4(RS1, CLIENT, 3, 3, dnat);
  const r = run(err);
  assert.is(r.v, VERDICT_TX);
  assert.is(a4(r.out, 12), VIP, "outer source");
  assert.is(a4(r.out, 16), CLIENT);
  assert.is(a4(r.out, 28 + 16), VIP, "quoted destination");
  assert.is(u16(r.out, 28 + 20 + 2), 53, "quoted destination port");
  assert.ok(icmpChecksumsValid(r.out));
  // The quoted UDP checksum still matches the quoted (rewritten) datagram.
  assert.is(counters[destBase(3) + K_OUTPKTS], 1);
});
s("an error from the client side about a VIP→client packet goes to the real server", () => {
  const { run, counters } = setup();
  run(buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: 0x02 }));
  const reply = run(buildIp4({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, flags: 0x12 })).out; // VIP:80 -> CLIENT
  const err = buildIcmp4("198.18.0.254", VIP, 11, 0, reply);
  const r = run(err);
  assert.is(r.v, VERDICT_TX);
  assert.is(a4(r.out, 16), RS1, "outer destination");
  assert.is(a4(r.out, 28 + 12), RS1, "quoted source");
  assert.is(u16(r.out, 28 + 20), 8080, "quoted source port");
  assert.ok(icmpChecksumsValid(r.out));
  assert.is(counters[destBase(1) + K_INPKTS], 2);
});
s("errors about unknown flows: dropped when for a VIP, passed otherwise; echo passes", () => {
  const { run } = setup();
  const stray = buildIp4({ src: CLIENT, dst: VIP, sport: 1, dport: 80 });
  assert.is(run(buildIcmp4("198.18.0.254", VIP, 3, 1, stray)).v, VERDICT_DROP);
  assert.is(run(buildIcmp4(RS1, CLIENT, 3, 3, buildIp4({ src: CLIENT, dst: RS1, sport: 9, dport: 9 }))).v, VERDICT_PASS);
  const bad = buildIcmp4(RS1, CLIENT, 3, 3, stray); bad[22] ^= 0xff;
  assert.is(run(bad).v, VERDICT_PASS, "bad checksum, not for a VIP: not ours");
  void ip4;
});
s.run();

const v6 = suite("ICMPv6 errors of NAT connections");
v6("port unreachable from an IPv6 real server reaches the client about the VIP, checksum recomputed", async () => {
  const { natSnapshot6, VIP6, RS6, CLIENT6 } = await import("../fixtures/snapshots.ts");
  const { buildIp6, ip6 } = await import("../fixtures/builder.ts");
  const { csumAdd, csumFold } = await import("../../src/wire/checksum.ts");
  const table = ConnTable.create(1024, MAX_DEST);
  const pl = new Pipeline(new ActiveConfig(natSnapshot6(), table.destState, null), table, new Float64Array(COUNTER_WORDS));
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (b: Uint8Array) => {
    f.u8.set(b, HEADROOM);
    const v = pl.process(f, HEADROOM, b.length, 10);
    return { v, out: f.u8.slice(pl.pkt.start, pl.pkt.start + pl.pkt.len) };
  };
  const dnat = run(buildIp6({ src: CLIENT6, dst: VIP6, proto: "udp", sport: 5000, dport: 53, payload: "q" })).out;
  // ICMPv6 destination unreachable (1), port unreachable (4), from RS6[0] to the client.
  const err = new Uint8Array(40 + 8 + dnat.length);
  const dv = new DataView(err.buffer);
  dv.setUint32(0, 0x60000000); dv.setUint16(4, 8 + dnat.length); err[6] = 58; err[7] = 64;
  ip6(RS6[0]).forEach((w, i) => dv.setInt32(8 + i * 4, w));
  ip6(CLIENT6).forEach((w, i) => dv.setInt32(24 + i * 4, w));
  err[40] = 1; err[41] = 4;
  err.set(dnat, 48);
  const sum = (b: Uint8Array) => csumFold(csumAdd(b, 40, b.length - 40, csumAdd(b, 8, 32, 0) + 58 + (b.length - 40)));
  dv.setUint16(42, ~sum(err) & 0xffff);
  const r = run(err);
  assert.is(r.v, VERDICT_TX);
  const odv = new DataView(r.out.buffer);
  assert.equal([0, 1, 2, 3].map((i) => odv.getInt32(8 + i * 4)), ip6(VIP6), "outer source is the VIP");
  assert.equal([0, 1, 2, 3].map((i) => odv.getInt32(48 + 24 + i * 4)), ip6(VIP6), "quoted destination is the VIP");
  assert.is(odv.getUint16(48 + 40 + 2), 53, "quoted destination port");
  assert.is(sum(r.out), 0xffff, "ICMPv6 checksum");
});
v6.run();
