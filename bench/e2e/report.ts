// Medians over the passes and the markdown tables of the end-to-end bench. Throughput is
// req/s (MB/s for the bulk transfer); every tslb row carries its ratio to HAProxy
// nbthread 1, to the C forwarder and to direct, and its balancer CPU per request against
// HAProxy's and the C forwarder's.
import type { Config } from "./configs.ts";
import type { PpsResult } from "./pps.ts";
import type { WrkResult } from "./wrk.ts";

export interface Test {
  id: string;
  kind: "keepalive" | "paced" | "close" | "bulk";
  conns: number;
  path: string;
  /** "paced": each connection waits this long between requests (wrk's delay()). */
  paceMs?: number;
}

export const TESTS: Test[] = [
  { id: "ka50", kind: "keepalive", conns: 50, path: "/" },
  { id: "ka200", kind: "keepalive", conns: 200, path: "/" },
  { id: "ka1000", kind: "keepalive", conns: 1000, path: "/" },
  // The closed-loop runs above load each balancer to its own limit, where the tail is the
  // machine's scheduling (bench/RESULTS.md). Paced at about 11 000 req/s, under every
  // configuration's limit, the same requests show each path's own latency at equal load.
  { id: "paced50", kind: "paced", conns: 50, path: "/", paceMs: 4 },
  { id: "close50", kind: "close", conns: 50, path: "/" },
  { id: "bulk", kind: "bulk", conns: 4, path: "/big.bin" },
];

export interface RunRecord {
  config: string;
  test: string;
  pass: number;
  wrk?: WrkResult;
  /** Balancer CPU: µs per request and % of one core over the run (null: no balancer). */
  lbUsPerReq: number | null;
  lbCpuPct: number | null;
  /** tslb --decap on the real servers (IPIP), µs per request. */
  helperUsPerReq: number | null;
  /**
   * The whole machine's busy CPU (every process, interrupts and softirqs, all CPUs) per
   * request, and the kernel's share of it: client, servers and balancer share the box, so
   * this is what a configuration costs in all.
   */
  boxUsPerReq: number | null;
  boxSysPct: number | null;
  error?: string;
}

export interface PpsRecord {
  config: string;
  pass: number;
  result?: PpsResult;
  error?: string;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const fix = (x: number | null, d: number) =>
  (x !== null && Number.isFinite(x) ? x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }) : "-");
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : "-");

interface Agg {
  n: number;
  rps: number[];
  mbps: number[];
  p50: number;
  p99: number;
  p999: number;
  us: number;
  cpu: number;
  helperUs: number;
  boxUs: number;
  boxSys: number;
  errors: number;
  failed: number;
}

function aggregate(runs: RunRecord[]): Agg {
  const ok = runs.filter((r) => r.wrk);
  const vals = (f: (r: RunRecord) => number | null) => ok.map(f).filter((x): x is number => x !== null && Number.isFinite(x));
  return {
    n: ok.length,
    rps: vals((r) => r.wrk!.rps),
    mbps: vals((r) => r.wrk!.mbps),
    p50: median(vals((r) => r.wrk!.p50ms)),
    p99: median(vals((r) => r.wrk!.p99ms)),
    p999: median(vals((r) => r.wrk!.p999ms)),
    us: median(vals((r) => r.lbUsPerReq)),
    cpu: median(vals((r) => r.lbCpuPct)),
    helperUs: median(vals((r) => r.helperUsPerReq)),
    boxUs: median(vals((r) => r.boxUsPerReq)),
    boxSys: median(vals((r) => r.boxSysPct)),
    errors: ok.reduce((a, r) => a + r.wrk!.errors, 0),
    failed: runs.length - ok.length,
  };
}

/** The C forwarder a tslb row is compared with: the one with the same offload setting. */
export type CRef = (c: Config) => string;

export function httpTable(tests: Test[], configs: Config[], runs: RunRecord[], cRef: CRef): string {
  const head = "| config | conns | kind | n | req/s (median) | req/s min–max | MB/s | p50 ms | p99 ms | p99.9 ms | LB CPU % | LB µs/req | machine µs/req | machine sys % | tput ×haproxy1 | tput ×C | tput ×direct | µs/req ÷haproxy1 | µs/req ÷C | machine µs/req ÷haproxy1 | errors |";
  const lines = [head, `|${head.split("|").slice(1, -1).map(() => "---").join("|")}|`];
  for (const t of tests) {
    const agg = new Map<string, Agg>();
    for (const c of configs) agg.set(c.name, aggregate(runs.filter((r) => r.config === c.name && r.test === t.id)));
    const tput = (name: string) => {
      const a = agg.get(name);
      return a ? median(t.kind === "bulk" ? a.mbps : a.rps) : NaN;
    };
    for (const c of configs) {
      const a = agg.get(c.name)!;
      if (a.n === 0 && a.failed === 0) continue;
      const tslb = c.kind === "tslb";
      const ref = cRef(c);
      const us = a.us;
      const notes = [a.errors ? String(a.errors) : "", a.failed ? `${a.failed} run(s) failed` : "",
        Number.isFinite(a.helperUs) ? `+ decap ${a.helperUs.toFixed(1)} µs/req on the rs` : ""].filter(Boolean).join("; ");
      lines.push(`| ${c.name} | ${t.conns} | ${t.kind} | ${a.n} | ${int(median(a.rps))} | ${int(Math.min(...a.rps))}–${int(Math.max(...a.rps))} | ` +
        `${fix(median(a.mbps), 1)} | ${fix(a.p50, 2)} | ${fix(a.p99, 2)} | ${fix(a.p999, 2)} | ${fix(a.cpu, 0)} | ${fix(us, 1)} | ` +
        `${fix(a.boxUs, 1)} | ${fix(a.boxSys, 0)} | ` +
        `${tslb ? ratio(tput(c.name), tput("haproxy1")) : ""} | ${tslb ? ratio(tput(c.name), tput(ref)) : ""} | ` +
        `${tslb ? ratio(tput(c.name), tput("direct")) : ""} | ${tslb ? ratio(us, agg.get("haproxy1")?.us ?? NaN) : ""} | ` +
        `${tslb ? ratio(us, agg.get(ref)?.us ?? NaN) : ""} | ${tslb ? ratio(a.boxUs, agg.get("haproxy1")?.boxUs ?? NaN) : ""} | ${notes} |`);
    }
  }
  return lines.join("\n");
}

export function ppsTable(configs: Config[], runs: PpsRecord[], cRef: CRef): string {
  const head = "| config | n | forwarded pps (median) | min–max | offered pps | TUN drops/s | fwd CPU % | CPU µs/forwarded pkt | pps ×C | errors |";
  const lines = [head, `|${head.split("|").slice(1, -1).map(() => "---").join("|")}|`];
  const med = (name: string, f: (r: PpsResult) => number | null) =>
    median(runs.filter((r) => r.config === name && r.result).map((r) => f(r.result!)).filter((x): x is number => x !== null));
  for (const c of configs) {
    const mine = runs.filter((r) => r.config === c.name);
    if (mine.length === 0) continue;
    const pps = mine.filter((r) => r.result).map((r) => r.result!.pps);
    const failed = mine.length - pps.length;
    const drops = med(c.name, (r) => r.tunDropsPerSec);
    lines.push(`| ${c.name} | ${pps.length} | ${int(median(pps))} | ${int(Math.min(...pps))}–${int(Math.max(...pps))} | ` +
      `${int(med(c.name, (r) => r.offeredPps))} | ${Number.isFinite(drops) ? int(drops) : "-"} | ${fix(med(c.name, (r) => r.cpuPct), 0)} | ` +
      `${fix(med(c.name, (r) => r.usPerPkt), 2)} | ${c.kind === "tslb" ? ratio(median(pps), med(cRef(c), (r) => r.pps)) : ""} | ` +
      `${failed ? `${failed} run(s) failed: ${mine.find((r) => r.error)?.error ?? ""}` : ""} |`);
  }
  return lines.join("\n");
}
