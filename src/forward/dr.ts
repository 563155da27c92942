// Direct routing ("Route", ip_vs_dr_xmit): the IP packet is not changed except for the
// TTL / hop limit; it leaves through the TAP in an Ethernet frame addressed to the real
// server's MAC, so the real server (VIP on its lo) answers the client directly.
// Contract: `p` was parsed by parseIp and matched connection `id`; there are at least
// 14 bytes of headroom before p.start. Returns 0 (send p.start..p.len on the TAP),
// DR_QUEUED (waiting for the MAC: send nothing) or a DropReason.
import type { ConnTable } from "../conntrack/table.ts";
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HDR_LEN } from "../wire/ethernet.ts";
import type { Frame } from "../wire/frame.ts";
import type { Pkt } from "../wire/pkt.ts";
import type { L2Host } from "./neigh.ts";
import { decrementTtl } from "./ttl.ts";

export const DR_QUEUED = -1;

export function drXmit(f: Frame, p: Pkt, t: ConnTable, id: number, l2: L2Host, nowMs: number): number {
  const r = decrementTtl(f.dv, p);
  if (r !== 0) return r;
  const start = l2.resolve(f, p.start, p.len, p.ipv, t.addrWord(id, 2, 0), t.addrWord(id, 2, 1), t.addrWord(id, 2, 2),
    t.addrWord(id, 2, 3), p.ipv === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6, nowMs);
  if (start < 0) return DR_QUEUED;
  p.start = start;
  p.len += ETH_HDR_LEN;
  return 0;
}
