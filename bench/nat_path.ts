// Micro-bench: ns/packet through parse → lookup → state → NAT rewrite on pre-built
// packets, no I/O. Established flows (the steady state of a keep-alive benchmark) and
// new flows (SYN → schedule → insert). Also proves the established path allocates
// nothing: the heap object count must stay flat while packets flow.
//   bun bench/nat_path.ts [packets]            (MODE=fullnat: the same through --fullnat)
import { heapStats } from "bun:jsc";
import { ConnTable } from "../src/conntrack/table.ts";
import { Pipeline } from "../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../src/dataplane/snapshot.ts";
import { VERDICT_TX } from "../src/dataplane/verdict.ts";
import { COUNTER_WORDS, MAX_DEST } from "../src/stats/counters.ts";
import { Frame, HEADROOM } from "../src/wire/frame.ts";
import { FWD_FULLNAT } from "../src/forward/fwd.ts";
import { buildIp4, ip4 } from "../test/fixtures/builder.ts";
import { CLIENT, RS1, RS2, VIP, natSnapshot } from "../test/fixtures/snapshots.ts";

const N = Number(process.argv[2] ?? 4_000_000);
const FLOWS = Number(process.env.FLOWS ?? 1024);
const FULLNAT = process.env.MODE === "fullnat";
const LADDR = "198.18.1.1";

function pipeline(capacity: number): Pipeline {
  const table = ConnTable.create(capacity, MAX_DEST);
  const snap = natSnapshot(1, "rr");
  if (FULLNAT) {
    for (const svc of snap.services) for (const d of svc.dests) Object.assign(d, { fwd: FWD_FULLNAT, laddrs: [ip4(LADDR), 0, 0, 0] });
    snap.fullnatPorts = [1024, 65534];
  }
  return new Pipeline(new ActiveConfig(snap, table.destState, null), table, new Float64Array(COUNTER_WORDS));
}

/** Pre-built packets of FLOWS connections, both directions, laid out one per slot. */
function packets(flags: number, dirBoth: boolean, lports: number[] = []): { f: Frame; slot: number; lens: number[] } {
  const slot = 256;
  const count = dirBoth ? FLOWS * 2 : FLOWS;
  const f = Frame.alloc(count * slot + HEADROOM);
  const lens: number[] = [];
  for (let i = 0; i < FLOWS; i++) {
    const sport = 10000 + i;
    const a = buildIp4({ src: CLIENT, dst: VIP, sport, dport: 80, flags, payload: "x".repeat(60) });
    f.u8.set(a, HEADROOM + lens.length * slot); lens.push(a.length);
    if (dirBoth) {
      const rs = i % 2 === 0 ? RS1 : RS2; // rr over [RS1, RS2]
      // Full NAT: the reply goes to the local address and the port the SYN was given.
      const b = FULLNAT
        ? buildIp4({ src: rs, dst: LADDR, sport: 8080, dport: lports[i], flags, payload: "y".repeat(60) })
        : buildIp4({ src: rs, dst: CLIENT, sport: 8080, dport: sport, flags, payload: "y".repeat(60) });
      f.u8.set(b, HEADROOM + lens.length * slot); lens.push(b.length);
    }
  }
  return { f, slot, lens };
}

function established(): { ns: number; heapGrowth: number } {
  const pl = pipeline(1 << 16);
  const syn = packets(0x02, false);
  const lports: number[] = [];
  for (let i = 0; i < FLOWS; i++) {
    pl.process(syn.f, HEADROOM + i * syn.slot, syn.lens[i], 1);
    lports.push(syn.f.dv.getUint16(pl.pkt.l4));
  }
  const { f, slot, lens } = packets(0x10, true, lports);
  // Each packet is rewritten in place, so keep a pristine copy to restore between passes
  // (the restore is a memcpy per pass, counted separately below).
  const pristine = f.u8.slice();
  const n = lens.length;
  const run = (count: number) => {
    let tx = 0;
    for (let k = 0; k < count; k++) {
      const i = k % n;
      if (i === 0) f.u8.set(pristine);
      if (pl.process(f, HEADROOM + i * slot, lens[i], 2) === VERDICT_TX) tx++;
    }
    return tx;
  };
  run(n * 20);
  Bun.gc(true);
  const h0 = heapStats().objectCount;
  const t0 = Bun.nanoseconds();
  const tx = run(N);
  const t1 = Bun.nanoseconds();
  const h1 = heapStats().objectCount;
  if (tx !== N) throw new Error(`only ${tx} of ${N} packets forwarded`);
  // Cost of the per-pass restore alone, subtracted from the figure.
  const r0 = Bun.nanoseconds();
  for (let k = 0; k < N / n; k++) f.u8.set(pristine);
  const r1 = Bun.nanoseconds();
  return { ns: (t1 - t0 - (r1 - r0)) / N, heapGrowth: h1 - h0 };
}

function newFlows(): number {
  // Full NAT: one local address has 64 511 ports per real server (129 022 here), so fewer.
  const count = Math.min(N / 4, FULLNAT ? 100_000 : 500_000);
  const pl = pipeline(1 << 20);
  const { f, slot, lens } = packets(0x02, false);
  const dv = f.dv;
  const pristine = Array.from({ length: FLOWS }, (_, i) => f.u8.slice(HEADROOM + i * slot, HEADROOM + i * slot + lens[i]));
  const t0 = Bun.nanoseconds();
  for (let k = 0; k < count; k++) {
    const i = k % FLOWS;
    const at = HEADROOM + i * slot;
    // Restore the SYN (the last pass rewrote it in place), then give it a new client
    // address so every packet is a new flow; patch the IPv4 header checksum to match.
    f.u8.set(pristine[i], at);
    const old = dv.getUint16(at + 12);
    const now = 0xc613 + (Math.floor(k / FLOWS) >> 16);
    const lo = Math.floor(k / FLOWS) & 0xffff;
    dv.setUint16(at + 14, lo);
    let s = (~dv.getUint16(at + 10) & 0xffff) + (~old & 0xffff) + now + (~0x0002 & 0xffff) + lo;
    dv.setUint16(at + 12, now);
    s = (s & 0xffff) + (s >>> 16); s = (s & 0xffff) + (s >>> 16);
    dv.setUint16(at + 10, ~s & 0xffff);
    pl.process(f, at, lens[i], 1);
  }
  const t1 = Bun.nanoseconds();
  if (pl.table.count !== count) throw new Error(`new flows: ${pl.table.count} entries for ${count} SYNs`);
  return (t1 - t0) / count;
}

const est = established();
const nf = newFlows();
const mode = FULLNAT ? "fullnat" : "nat";
console.log(`${mode} established (parse+lookup+state+rewrite, ${FLOWS} flows both directions): ${est.ns.toFixed(1)} ns/packet (${(1000 / est.ns).toFixed(2)} Mpps), heap objects +${est.heapGrowth} over ${N} packets`);
console.log(`${mode} new flow (SYN: parse+miss+schedule rr+${FULLNAT ? "local port+" : ""}insert+rewrite): ${nf.toFixed(1)} ns/packet (includes a header-checksum fix-up per packet)`);
if (est.heapGrowth > 100) {
  console.error("FAIL: the established path allocates");
  process.exit(1);
}
