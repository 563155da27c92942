import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DS_ACTIVE, DS_INACTIVE, DS_STRIDE } from "../../src/conntrack/dest_state.ts";
import { ConnTable, F_INACTIVE } from "../../src/conntrack/table.ts";
import { S_ESTABLISHED, S_NONE, S_SYN_RECV } from "../../src/conntrack/tcp_state.ts";
import { Pkt } from "../../src/wire/pkt.ts";
import { rng } from "../fixtures/builder.ts";

function pkt(src: number, sport: number, dst: number, dport: number, proto = 6): Pkt {
  const p = new Pkt();
  p.ipv = 4; p.proto = proto; p.src0 = src; p.sport = sport; p.dst0 = dst; p.dport = dport;
  return p;
}

const basic = suite("conntrack table: both directions");
basic("insert finds the original and the reply key; remove frees both", () => {
  const t = ConnTable.create(64, 16);
  const vip = 0xc6120064 | 0, rip = 0xc612010b | 0, cip = 0xc6120002 | 0;
  const p = pkt(cip, 40000, vip, 80);
  t.hashPkt(p);
  const id = t.insert(p, 1, 3, rip, 0, 0, 0, 8080, 0, true, S_NONE, 100, 60, -1);
  assert.ok(id >= 0);
  assert.is(t.destState[3 * DS_STRIDE + DS_INACTIVE], 1, "new entries count as inactive");
  const q = pkt(cip, 40000, vip, 80); t.hashPkt(q);
  assert.is(t.lookup(q, 100), id); assert.is(q.dir, 0);
  const r = pkt(rip, 8080, cip, 40000); t.hashPkt(r);
  assert.is(t.lookup(r, 100), id); assert.is(r.dir, 1);
  const wrong = pkt(rip, 8081, cip, 40000); t.hashPkt(wrong);
  assert.is(t.lookup(wrong, 100), -1);
  t.remove(id);
  assert.is(t.count, 0);
  assert.is(t.destState[3 * DS_STRIDE + DS_INACTIVE], 0);
  t.hashPkt(q); assert.is(t.lookup(q, 100), -1);
  t.hashPkt(r); assert.is(t.lookup(r, 100), -1);
});
basic("ActiveConn/InActConn follow ESTABLISHED", () => {
  const t = ConnTable.create(16, 8);
  const p = pkt(1, 2, 3, 4); t.hashPkt(p);
  const id = t.insert(p, 1, 2, 5, 0, 0, 0, 6, 0, false, S_NONE, 0, 10, -1);
  t.setState(id, S_SYN_RECV, 0, 60);
  assert.equal([t.destState[2 * DS_STRIDE + DS_ACTIVE], t.destState[2 * DS_STRIDE + DS_INACTIVE]], [0, 1]);
  t.setState(id, S_ESTABLISHED, 0, 900);
  assert.equal([t.destState[2 * DS_STRIDE + DS_ACTIVE], t.destState[2 * DS_STRIDE + DS_INACTIVE]], [1, 0]);
  assert.is(t.flags(id) & F_INACTIVE, 0);
  t.remove(id);
  assert.equal([t.destState[2 * DS_STRIDE + DS_ACTIVE], t.destState[2 * DS_STRIDE + DS_INACTIVE]], [0, 0]);
});
basic("a full table of entries that may not be dropped (UDP) refuses; expired entries are reaped on lookup and by sweep", () => {
  const t = ConnTable.create(16, 8);
  for (let i = 0; i < 16; i++) { const p = pkt(i, 1, 99, 80, 17); t.hashPkt(p); assert.ok(t.insert(p, 1, 1, 7, 0, 0, 0, 80, 0, true, S_NONE, 0, 5, -1) >= 0); }
  const extra = pkt(100, 1, 99, 80, 17); t.hashPkt(extra);
  assert.is(t.insert(extra, 1, 1, 7, 0, 0, 0, 80, 0, true, S_NONE, 0, 5, -1), -1);
  const p0 = pkt(0, 1, 99, 80, 17); t.hashPkt(p0);
  assert.is(t.lookup(p0, 5), -1, "expired at now >= expires");
  assert.is(t.count, 15);
  assert.is(t.sweep(5, 16), 15);
  assert.is(t.count, 0);
  assert.is(t.destState[1 * DS_STRIDE + DS_INACTIVE], 0);
});
basic.run();

const model = suite("conntrack table vs a Map model (seeded random workload)");
model("200 000 operations agree with the model", () => {
  const cap = 4096;
  const t = ConnTable.create(cap, 8);
  const m = new Map<string, { id: number; expires: number; rip: number; rport: number }>();
  const r = rng(2026);
  let now = 0;
  const key = (s: number, sp: number) => `${s}:${sp}`;
  for (let n = 0; n < 200000; n++) {
    if (n % 1000 === 0) now++;
    const src = 0xc6120000 | Math.floor(r() * 300);
    const sport = 1024 + Math.floor(r() * 40);
    const op = r();
    const p = pkt(src | 0, sport, 0xc6120064 | 0, 80);
    t.hashPkt(p);
    const k = key(src | 0, sport);
    const have = m.get(k);
    const live = have && have.expires > now ? have : undefined;
    if (have && !live) m.delete(k);
    if (op < 0.45) {
      const got = t.lookup(p, now);
      assert.is(got, live ? live.id : -1, `lookup ${k} at ${n}`);
      if (live) {
        const rp = pkt(live.rip, live.rport, src | 0, sport); t.hashPkt(rp);
        assert.is(t.lookup(rp, now), live.id, "reply key");
        assert.is(rp.dir, 1);
      }
    } else if (op < 0.8) {
      if (live) continue;
      assert.is(t.lookup(p, now), -1, "the pipeline looks up before it inserts");
      const rip = 0xc6120100 | Math.floor(r() * 4), rport = 8000 + Math.floor(r() * 3);
      const id = t.insert(p, 1, 1, rip | 0, 0, 0, 0, rport, 0, true, S_NONE, now, 1 + Math.floor(r() * 5), -1);
      if (m.size >= cap) { assert.is(id, -1); continue; }
      assert.ok(id >= 0, `insert at ${n} (size ${m.size})`);
      m.set(k, { id, expires: t.expires(id), rip: rip | 0, rport });
    } else if (op < 0.9) {
      if (live) { t.remove(live.id); m.delete(k); }
    } else {
      t.sweep(now, 64);
      for (const [kk, v] of m) if (!t.inUse(v.id)) m.delete(kk);
    }
    // Entries the table dropped by reaping must be expired ones.
  }
  let alive = 0;
  for (const v of m.values()) if (t.inUse(v.id)) alive++;
  assert.is(alive, m.size);
  assert.is(t.count >= m.size, true);
});
model.run();

const flood = suite("conntrack table under a SYN flood");
flood("a full table drops half-open entries for new flows, never established ones", async () => {
  const { S_SYN_RECV } = await import("../../src/conntrack/tcp_state.ts");
  const t = ConnTable.create(64, 8);
  const est: number[] = [];
  for (let i = 0; i < 64; i++) {
    const p = pkt(0xc6120000 | i, 1000, 0xc6120064 | 0, 80); t.hashPkt(p);
    const id = t.insert(p, 1, 1, 7, 0, 0, 0, 80, 0, true, S_NONE, 0, 60, -1);
    if (i % 8 === 0) { t.setState(id, S_ESTABLISHED, 0, 900); est.push(i); } else t.setState(id, S_SYN_RECV, 0, 60);
  }
  assert.is(t.count, 64);
  for (let i = 0; i < 56; i++) {
    const p = pkt(0xc6130000 | i, 2000, 0xc6120064 | 0, 80); t.hashPkt(p);
    assert.ok(t.insert(p, 1, 1, 7, 0, 0, 0, 80, 0, true, S_NONE, 1, 60, -1) >= 0, `new flow ${i}`);
  }
  for (const i of est) {
    const p = pkt(0xc6120000 | i, 1000, 0xc6120064 | 0, 80); t.hashPkt(p);
    assert.ok(t.lookup(p, 1) >= 0, `established ${i} survived`);
  }
  assert.is(t.evicted, 56);
  // Only established entries and the new half-open ones are left: a further flow evicts a new one.
  const extra = pkt(0xc6140000, 3000, 0xc6120064 | 0, 80); t.hashPkt(extra);
  assert.ok(t.insert(extra, 1, 1, 7, 0, 0, 0, 80, 0, true, S_NONE, 1, 60, -1) >= 0);
  assert.is(t.destState[1 * DS_STRIDE + DS_ACTIVE], 8);
});
flood.run();

const reuse = suite("conntrack table: reply tuples");
reuse("a new NAT entry with the reply tuple of an older one replaces it (replies find the new one)", () => {
  const t = ConnTable.create(64, 8);
  const cip = 0xc6120202 | 0, rip = 0xc612010b | 0;
  const a = pkt(cip, 40000, 0xc6120064 | 0, 81); t.hashPkt(a);
  const old = t.insert(a, 2, 1, rip, 0, 0, 0, 8080, 0, true, S_NONE, 0, 120, -1);
  const b = pkt(cip, 40000, 0xc6120064 | 0, 80); t.hashPkt(b);
  const neu = t.insert(b, 1, 1, rip, 0, 0, 0, 8080, 0, true, S_NONE, 1, 120, -1);
  assert.is(t.inUse(old), neu === old, "the old entry is gone (its id may be reused)");
  const r = pkt(rip, 8080, cip, 40000); t.hashPkt(r);
  assert.is(t.lookup(r, 1), neu);
  assert.is(t.svc(neu), 1, "the reply belongs to the VIP:80 connection");
  assert.is(t.count, 1);
});
reuse.run();
