// Test helper: ListReply views over a RuleSet, with counters filled in per destination.
import type { RuleSet } from "../../src/control/model.ts";
import type { DestView, ListReply, ServiceView, Stats } from "../../src/control/protocol.ts";

export const ZERO_STATS: Stats = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };

export function stats(conns: number, inpkts: number, outpkts: number, inbytes: number, outbytes: number): Stats {
  return { conns, inpkts, outpkts, inbytes, outbytes };
}

/** Counters for one dest (by "addr/port") or service (by "svc" + key text). */
export type Extra = Partial<Pick<DestView, "activeConns" | "inactConns" | "persistConns" | "stats" | "rate">>;

export function listReply(rules: RuleSet, extra: Record<string, Extra> = {}): ListReply {
  const services: ServiceView[] = rules.services.map((s) => {
    const k = s.key;
    const sx = extra[k.kind === "fwm" ? `fwm ${k.af} ${k.fwmark}` : `${k.kind} ${k.addr} ${k.port}`] ?? {};
    return {
      ...s,
      stats: sx.stats ?? ZERO_STATS,
      rate: sx.rate ?? ZERO_STATS,
      dests: s.dests.map((d) => ({
        activeConns: 0, inactConns: 0, persistConns: 0, stats: ZERO_STATS, rate: ZERO_STATS,
        ...d, ...(extra[`${d.addr} ${d.port}`] ?? {}),
      })),
    };
  });
  return { size: 4096, services, timeouts: rules.timeouts };
}
