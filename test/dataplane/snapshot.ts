// A destination compiled unavailable (its health check failed): no new connections,
// weight untouched, and its existing connections treated as IPVS treats a destination
// without IP_VS_DEST_F_AVAILABLE: expire_nodest_conn=1 expires the entry on the next
// packet (a UDP datagram or SYN is scheduled afresh, elsewhere), 0 drops silently and
// keeps the entry, so the connection goes on once the server is back.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ConnTable } from "../../src/conntrack/table.ts";
import { Pipeline } from "../../src/dataplane/pipeline.ts";
import { ActiveConfig, type Snapshot } from "../../src/dataplane/snapshot.ts";
import { VERDICT_DROP, VERDICT_TX } from "../../src/dataplane/verdict.ts";
import { DEST_AVAILABLE } from "../../src/sched/scheduler.ts";
import { COUNTER_WORDS, DROP_BASE, MAX_DEST } from "../../src/stats/counters.ts";
import { DROP } from "../../src/wire/drop.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { buildIp4, type Ip4Spec } from "../fixtures/builder.ts";
import { CLIENT, RS1, RS2, VIP, natSnapshot } from "../fixtures/snapshots.ts";

const SYN = 0x02, ACK = 0x10;

/** natSnapshot with RS1's availability (dest ids 1 and 3: TCP and UDP) set. */
function snap(gen: number, rs1Up: boolean, expireNodestConn = 1): Snapshot {
  const s = natSnapshot(gen);
  s.sysctl.expireNodestConn = expireNodestConn;
  for (const svc of s.services) svc.dests[0].available = rs1Up;
  return s;
}

function setup(expireNodestConn = 1) {
  const table = ConnTable.create(1024, MAX_DEST);
  const counters = new Float64Array(COUNTER_WORDS);
  const pl = new Pipeline(new ActiveConfig(snap(1, true, expireNodestConn), table.destState, null), table, counters);
  const f = Frame.alloc(HEADROOM + 2048);
  const run = (s: Ip4Spec) => {
    const b = buildIp4(s);
    f.u8.set(b, HEADROOM);
    const v = pl.process(f, HEADROOM, b.length, 10);
    const o = pl.pkt.start;
    return { v, dst: [16, 17, 18, 19].map((k) => f.u8[o + k]).join(".") };
  };
  const health = (gen: number, up: boolean) => { pl.cfg = new ActiveConfig(snap(gen, up, expireNodestConn), table.destState, pl.cfg); };
  return { pl, run, health, counters, table };
}

const av = suite("unavailable destinations");

av("compiled flags: DEST_AVAILABLE off, weight kept, destPresent 0; absent means available", () => {
  const table = ConnTable.create(64, MAX_DEST);
  const cfg = new ActiveConfig(snap(1, false), table.destState, null);
  assert.equal([cfg.dests[0].flags[0], cfg.dests[0].weight[0], cfg.destPresent[1]], [0, 1, 0]);
  assert.equal([cfg.dests[0].flags[1] & DEST_AVAILABLE, cfg.destPresent[2]], [DEST_AVAILABLE, 1]);
  const plain = new ActiveConfig(natSnapshot(1), table.destState, null);
  assert.equal([plain.dests[0].flags[0], plain.destPresent[1]], [DEST_AVAILABLE, 1]);
});

av("no new connections go to it; with it back, rr uses it again", () => {
  const { run, health } = setup();
  health(2, false);
  const dsts = [1, 2, 3, 4].map((i) => run({ src: CLIENT, dst: VIP, sport: 41000 + i, dport: 80, flags: SYN }).dst);
  assert.equal(dsts, [RS2, RS2, RS2, RS2]);
  health(3, true);
  const back = [5, 6].map((i) => run({ src: CLIENT, dst: VIP, sport: 41000 + i, dport: 80, flags: SYN }).dst).sort();
  assert.equal(back, [RS1, RS2].sort());
});

av("expire_nodest_conn=1: a UDP flow to it moves to the other server on its next datagram", () => {
  const { run, health, counters } = setup(1);
  assert.is(run({ src: CLIENT, dst: VIP, sport: 5000, dport: 53, proto: "udp" }).dst, RS1);
  health(2, false);
  const r = run({ src: CLIENT, dst: VIP, sport: 5000, dport: 53, proto: "udp" });
  assert.equal([r.v, r.dst], [VERDICT_TX, RS2]);
  assert.is(counters[DROP_BASE + DROP.DEST_GONE], 0);
});

av("expire_nodest_conn=0: its packets are dropped (DEST_GONE) and the entry kept; the flow resumes when it is back", () => {
  const { run, health, counters } = setup(0);
  assert.is(run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: SYN }).dst, RS1);
  run({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, flags: SYN | ACK });
  health(2, false);
  assert.is(run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK }).v, VERDICT_DROP);
  assert.is(counters[DROP_BASE + DROP.DEST_GONE], 1);
  health(3, true);
  const r = run({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: ACK });
  assert.equal([r.v, r.dst], [VERDICT_TX, RS1]);
});

av.run();
