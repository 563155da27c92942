// Micro-bench: ns/packet of tunnel encapsulation (forward/tunnel.ts, director side) and of
// decapsulation (decap/decap.ts, real-server side) on pre-built packets, no I/O, with the
// heap object count over the timed loop (must stay flat: STYLE §2.6 rule 14).
//   bun bench/tunnel.ts [packets]
//   --short or BENCH_SHORT=1: a smoke run (20 000 packets per row), figures not meaningful
import { heapStats } from "bun:jsc";
import { Decapper, PAYLOAD_GUE, VipSet } from "../src/decap/decap.ts";
import { TUN_F_CSUM, TUN_GRE, TUN_GUE, TUN_IPIP, type TunnelDest, tunnelDest, tunnelEncap } from "../src/forward/tunnel.ts";
import { Frame, HEADROOM } from "../src/wire/frame.ts";
import { buildIp4, ip4 } from "../test/fixtures/builder.ts";
import { buildIp6, ip6 } from "../test/fixtures/ipv6.ts";

const SHORT = process.env.BENCH_SHORT === "1" || process.argv.includes("--short");
const ARGS = process.argv.slice(2).filter((a) => a !== "--short");
const N = Number(ARGS[0] ?? (SHORT ? 20_000 : 2_000_000));
const WARM = SHORT ? 5_000 : 50_000;
/** Heap objects a row may gain (the JIT's own bookkeeping); a leak is one per packet. */
const HEAP_SLACK = 100;
const VIP = "198.18.0.100";
const d4 = (t: number, fl = 0) => tunnelDest(4, t, fl, 6080, [ip4("198.18.1.1")], [ip4("198.18.1.11")]);
const d6 = (t: number, fl = 0) => tunnelDest(6, t, fl, 6080, ip6("2001:2:1::1"), ip6("2001:2:1::11"));

function inner(payload: number): Uint8Array {
  return buildIp4({ src: "198.18.2.2", dst: VIP, proto: "tcp", sport: 40000, dport: 80, flags: 0x10, payload: new Uint8Array(payload).fill(0x61) });
}

/** Times `n` calls of `step`, returns ns per call and the heap growth over them. */
function measure(n: number, step: (i: number) => number): { ns: number; heap: number } {
  let acc = 0;
  for (let i = 0; i < WARM; i++) acc += step(i);
  Bun.gc(true);
  const h0 = heapStats().objectCount;
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < n; i++) acc += step(i);
  const ns = (Bun.nanoseconds() - t0) / n;
  const heap = heapStats().objectCount - h0;
  if (acc === 0.5) console.log(acc); // keep the work observable
  return { ns, heap };
}

const rows: string[] = [];
let leaked = false;
function row(name: string, r: { ns: number; heap: number }): void {
  rows.push(`| ${name} | ${r.ns.toFixed(1)} | ${r.heap >= 0 ? "+" : ""}${r.heap} |`);
  if (r.heap > HEAP_SLACK) {
    leaked = true;
    console.error(`FAIL: ${name} allocates (${r.heap} heap objects over ${N} packets)`);
  }
}

// Director side: the inner packet is put back before every call (a 60- or 1400-byte copy,
// which the real data path does not do), measured alone first so it can be subtracted.
for (const size of [60, 1400]) {
  const pkt = inner(size);
  const f = Frame.alloc(HEADROOM + pkt.length);
  const copy = measure(N, () => { f.u8.set(pkt, HEADROOM); return 1; });
  row(`copy only (${pkt.length} B), subtract from the rows below`, copy);
  const cases: [string, TunnelDest][] = [
    ["IPIP", d4(TUN_IPIP)], ["GRE", d4(TUN_GRE)], ["GRE + csum", d4(TUN_GRE, TUN_F_CSUM)], ["GUE", d4(TUN_GUE)],
    ["GUE + csum", d4(TUN_GUE, TUN_F_CSUM)], ["IPIP, IPv6 outer", d6(TUN_IPIP)], ["GUE + csum, IPv6 outer", d6(TUN_GUE, TUN_F_CSUM)],
  ];
  for (const [name, d] of cases) {
    row(`encap ${name} (${pkt.length} B)`, measure(N, (i) => {
      f.u8.set(pkt, HEADROOM);
      return tunnelEncap(f, HEADROOM, pkt.length, d, i, i);
    }));
  }
}

// Real-server side: the datagram as a raw IPv4 socket (outer header included) or a UDP
// socket (GUE payload) reads it; decap does not modify these, so no copy is needed.
const dc = new Decapper(new VipSet([ip4(VIP), ip4("198.18.0.101"), ip4("198.18.0.102"), ip4("198.18.0.103")], []));
for (const size of [60, 1400]) {
  const pkt = inner(size);
  for (const [name, d] of [["IPIP", d4(TUN_IPIP)], ["GRE + csum", d4(TUN_GRE, TUN_F_CSUM)]] as const) {
    const f = Frame.alloc(HEADROOM + pkt.length);
    f.u8.set(pkt, HEADROOM);
    const s = tunnelEncap(f, HEADROOM, pkt.length, d, 1, 1);
    const len = HEADROOM + pkt.length - s;
    row(`decap ${name} (${pkt.length} B), VIP 1 of 4`, measure(N, () => dc.fromIp4(f.u8, s, len)));
  }
  const f = Frame.alloc(HEADROOM + pkt.length);
  f.u8.set(pkt, HEADROOM);
  const s = tunnelEncap(f, HEADROOM, pkt.length, d4(TUN_GUE), 1, 1);
  row(`decap GUE (${pkt.length} B), from the UDP payload`, measure(N, () => dc.fromPayload(f.u8, s + 28, HEADROOM + pkt.length - s - 28, PAYLOAD_GUE, 0)));
}
const v6 = buildIp6({ src: "2001:2:0:2::2", dst: "2001:2:0:100::100", sport: 1, dport: 2, payload: "x".repeat(60) });
{
  const dc6 = new Decapper(new VipSet([], [ip6("2001:2:0:100::100")]));
  const f = Frame.alloc(HEADROOM + v6.length);
  f.u8.set(v6, HEADROOM);
  const s = tunnelEncap(f, HEADROOM, v6.length, d4(TUN_IPIP), 1, 1);
  row(`decap IPv6 in IPv4 (${v6.length} B)`, measure(N, () => dc6.fromIp4(f.u8, s, HEADROOM + v6.length - s)));
}

console.log(`${N} packets per row; ns per packet; heap objects over the timed loop${SHORT ? " (short mode: smoke run, figures not meaningful)" : ""}`);
console.log("| path | ns/packet | heap objects |\n|---|---:|---:|");
for (const r of rows) console.log(r);
if (leaked) process.exit(1);
