// Raw forwarded packets per second: bench/c/udpflood in the client namespace (pinned to
// one CPU) floods 64-byte UDP packets over 16 flows at the target, the forwarder under test
// runs pinned to the other CPU, and the real servers count what arrives (nft netdev
// ingress counter + drop, so they never answer). Offered = what the generator sent.
import { appendFileSync } from "node:fs";
import type { Ctx, Running } from "./configs.ts";
import { cpuSeconds, run } from "./proc.ts";
import { FLOOD_PORT } from "./topo.ts";

export interface PpsResult {
  seconds: number;
  offeredPps: number;
  pps: number;
  /** tx_dropped of the TUN per second (the kernel could not queue to the forwarder); null: no TUN. */
  tunDropsPerSec: number | null;
  /** Forwarder CPU, % of one core, and CPU µs per forwarded packet; null: no forwarder process. */
  cpuPct: number | null;
  usPerPkt: number | null;
  genErrors: number;
}

export const FLOWS = 16;
export const PKT_LEN = 64;

/** tx_dropped of tslb0 in lb (the name both tslb and the C forwarder use), null when absent. */
function tunDrops(ctx: Ctx): number | null {
  const r = ctx.topo.exec("lb", ["cat", "/sys/class/net/tslb0/statistics/tx_dropped"], true);
  return r.code === 0 ? Number(r.out.trim()) : null;
}

export async function measurePps(ctx: Ctx, r: Running, udpflood: string, seconds: number, genCpu: string | null, log: string): Promise<PpsResult> {
  const roots = r.lb.map((p) => p.pid);
  const rx0 = ctx.topo.received(PKT_LEN);
  const d0 = tunDrops(ctx);
  const c0 = cpuSeconds(roots);
  const gen = await run(["ip", "netns", "exec", ctx.topo.ns.cl, ...(genCpu === null ? [] : ["taskset", "-c", genCpu]),
    udpflood, r.target, String(FLOOD_PORT), String(seconds), String(FLOWS), String(PKT_LEN)], seconds + 10);
  await Bun.sleep(300); // the forwarder drains its queue
  const c1 = cpuSeconds(roots);
  const d1 = tunDrops(ctx);
  const rx1 = ctx.topo.received(PKT_LEN);
  appendFileSync(log, `$ udpflood ${r.target} ${FLOOD_PORT} ${seconds} ${FLOWS} ${PKT_LEN}\n${gen.out}${gen.err}rx ${rx0} -> ${rx1}, tun drops ${d0} -> ${d1}, cpu ${c0} -> ${c1}\n`);
  const m = /sent (\d+) errors (\d+) elapsed ([\d.]+)/.exec(gen.out);
  if (gen.code !== 0 || !m) throw new Error(`udpflood exited ${gen.code}: ${(gen.err || gen.out).trim().slice(0, 200)}`);
  const secs = Number(m[3]);
  const fwd = rx1 - rx0;
  const cpu = c1 - c0;
  return {
    seconds: secs,
    offeredPps: Number(m[1]) / secs,
    pps: fwd / secs,
    tunDropsPerSec: d0 === null || d1 === null ? null : (d1 - d0) / secs,
    cpuPct: roots.length ? (cpu / secs) * 100 : null,
    usPerPkt: roots.length && fwd > 0 ? (cpu * 1e6) / fwd : null,
    genErrors: Number(m[2]),
  };
}
