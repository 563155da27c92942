// Micro-bench: the connection table alone (conntrack/table.ts) at 1 M entries — insert
// rate (filling an empty table to capacity, NAT entries with both keys indexed), lookup
// rate by original and by reply key, lookup misses, the expiry sweep freeing every entry,
// and the bytes of shared memory per entry. Keys are looked up in a random order over
// the whole table (every lookup a cache miss: the worst case) and, for contrast, over a
// hot working set of 1024 flows; each figure includes hashPkt. The heap object count
// over each timed loop must stay flat, or the bench exits 1.
//   bun bench/conn_table.ts [entries]      (default 1 048 576)
//   --short or BENCH_SHORT=1: a smoke run (16 384 entries), figures not meaningful
import { heapStats } from "bun:jsc";
import { ConnTable, connTableBytes } from "../src/conntrack/table.ts";
import { S_NONE } from "../src/conntrack/tcp_state.ts";
import { Pkt } from "../src/wire/pkt.ts";
import { ip4, rng } from "../test/fixtures/builder.ts";

const SHORT = process.env.BENCH_SHORT === "1" || process.argv.includes("--short");
const ARGS = process.argv.slice(2).filter((a) => a !== "--short");
const CAP = Number(ARGS[0] ?? (SHORT ? 1 << 14 : 1 << 20));
/** Lookups per lookup row: several passes over the table, so each row runs long enough to time. */
const LOOKUPS = SHORT ? 20_000 : 4_000_000;
/** The worker sweeps in slices of capacity × elapsed ms / 2000: 4096 at 1 M entries every ~8 ms. */
const SWEEP_BUDGET = 4096;
const HEAP_SLACK = 100;
/** The working set of the "hot" row: a keep-alive benchmark's connections in a big table. */
const HOT = 1024;
const DESTS = 4;
const TIMEOUT = 60;

const VIP = ip4("198.18.0.100");
const RS = ip4("198.18.1.11");
// Client i: address 198.18.0.0 + i/8 (the whole of 198.18.0.0/15 at 1 M), port 1024 + i%8.
const CLIENT_BASE = ip4("198.18.0.0");
if (CAP < HOT) throw new Error(`at least ${HOT} entries`);
if (CAP > 8 << 17) throw new Error(`at most ${8 << 17} entries (the client addresses stay in 198.18.0.0/15)`);

const p = new Pkt();
p.ipv = 4;
p.proto = 6;

/** Fills p with client i's original key (port offset `miss` gives keys never inserted). */
function clientKey(i: number, miss: number): void {
  p.src0 = (CLIENT_BASE + (i >> 3)) | 0;
  p.sport = 1024 + miss + (i & 7);
  p.dst0 = VIP;
  p.dport = 80;
}
/** Fills p with the reply key of client i's entry: real server → client. */
function replyKey(i: number): void {
  p.src0 = (RS + (i & (DESTS - 1))) | 0;
  p.sport = 8080;
  p.dst0 = (CLIENT_BASE + (i >> 3)) | 0;
  p.dport = 1024 + (i & 7);
}

interface Row { name: string; ops: number; ns: number; heap: number }

/**
 * Every row on a table of `cap` entries, `lookups` per lookup row. Run once on a small
 * table first (rows discarded) so the timed run is the optimised code throughout.
 */
function runAll(cap: number, lookups: number): Row[] {
  const rows: Row[] = [];
  const t = ConnTable.create(cap, DESTS + 1);
  // A random visiting order for the lookups (Fisher–Yates, seeded).
  const order = new Int32Array(cap);
  for (let i = 0; i < cap; i++) order[i] = i;
  const r = rng(7);
  for (let i = cap - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); const x = order[i]; order[i] = order[j]; order[j] = x; }

  /** Times `ops` calls of `step(k)` (which returns 1 on the expected outcome) and records the row. */
  const timed = (name: string, ops: number, step: (k: number) => number): void => {
    Bun.gc(true);
    const h0 = heapStats().objectCount;
    const t0 = Bun.nanoseconds();
    let ok = 0;
    for (let k = 0; k < ops; k++) ok += step(k);
    const t1 = Bun.nanoseconds();
    const h1 = heapStats().objectCount;
    if (ok !== ops) throw new Error(`${name}: ${ok} of ${ops} as expected`);
    rows.push({ name, ops, ns: (t1 - t0) / ops, heap: h1 - h0 });
  };
  const insert = (i: number): number => {
    clientKey(i, 0);
    t.hashPkt(p);
    const d = i & (DESTS - 1);
    return t.insert(p, 1, 1 + d, (RS + d) | 0, 0, 0, 0, 8080, 0, true, S_NONE, 0, TIMEOUT, -1) >= 0 ? 1 : 0;
  };
  const hit = (k: number): number => { clientKey(order[k % cap], 0); t.hashPkt(p); return t.lookup(p, 1) >= 0 && p.dir === 0 ? 1 : 0; };
  const hitReply = (k: number): number => { replyKey(order[k % cap]); t.hashPkt(p); return t.lookup(p, 1) >= 0 && p.dir === 1 ? 1 : 0; };
  const miss = (k: number): number => { clientKey(order[k % cap], 8); t.hashPkt(p); return t.lookup(p, 1) < 0 ? 1 : 0; };
  const hot = (k: number): number => { clientKey(order[k & (HOT - 1)], 0); t.hashPkt(p); return t.lookup(p, 1) >= 0 ? 1 : 0; };

  timed(`insert (empty → ${cap} entries, both keys)`, cap, insert);
  if (t.count !== cap) throw new Error(`table holds ${t.count} of ${cap}`);
  timed("lookup hit, original key (client → VIP), random order", lookups, hit);
  timed("lookup hit, reply key (real server → client), random order", lookups, hitReply);
  timed("lookup miss, random order", lookups, miss);
  timed(`lookup hit, original key, ${HOT} hot flows of the ${cap}`, lookups, hot);
  // Every entry's timer has run out: the sweep frees them all, slice by slice.
  const slices = Math.ceil(cap / SWEEP_BUDGET);
  let freed = 0;
  timed(`expire: sweep of ${slices} slices of ${SWEEP_BUDGET}, per entry freed`, slices, () => { freed += t.sweep(TIMEOUT + 1, SWEEP_BUDGET); return 1; });
  if (freed !== cap || t.count !== 0) throw new Error(`sweep freed ${freed} of ${cap} (${t.count} left)`);
  const sweep = rows[rows.length - 1];
  sweep.ns = (sweep.ns * slices) / cap;
  sweep.ops = cap;
  return rows;
}

for (let round = 0; round < 5; round++) runAll(HOT * 4, 20_000);
const rows = runAll(CAP, LOOKUPS);

console.log(`connection table, ${CAP} entries${SHORT ? " (short mode: smoke run, figures not meaningful)" : ""}: ns per operation (hashPkt included); heap objects over the timed loop`);
console.log("| operation | ops | ns/op | M ops/s | heap objects |\n|---|---:|---:|---:|---:|");
let leaked = false;
for (const row of rows) {
  console.log(`| ${row.name} | ${row.ops} | ${row.ns.toFixed(1)} | ${(1000 / row.ns).toFixed(2)} | ${row.heap >= 0 ? "+" : ""}${row.heap} |`);
  if (row.heap > HEAP_SLACK) { leaked = true; console.error(`FAIL: ${row.name} allocates (${row.heap} heap objects)`); }
}
const M = 1 << 20;
const perEntry = (n: number) => `connTableBytes(${n}) / ${n} = ${(connTableBytes(n) / n).toFixed(5)} (${(connTableBytes(n) / 2 ** 20).toFixed(1)} MiB)`;
console.log(`\nbytes per entry: ${perEntry(CAP)}${CAP !== M ? `; at 1 M: ${perEntry(M)}` : ""}`);
if (leaked) process.exit(1);
