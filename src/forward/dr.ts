// Direct routing ("Route", ip_vs_dr_xmit): the IP packet is not changed except for the
// TTL; it leaves through the TAP in an Ethernet frame addressed to the real server's
// MAC, so the real server (VIP on its lo) answers the client directly. IPv4 only here;
// IPv6 direct routing needs neighbour discovery (not yet).
// Contract: `p` was parsed by parseIp and matched connection `id`; there are at least
// 14 bytes of headroom before p.start. Returns 0 (send p.start..p.len on the TAP), a
// negative number (queued while the MAC is resolved: send nothing) or a DropReason.
import type { ConnTable } from "../conntrack/table.ts";
import { csumReplace16 } from "../wire/checksum.ts";
import { DROP } from "../wire/drop.ts";
import { ETHERTYPE_IPV4, ETH_HDR_LEN } from "../wire/ethernet.ts";
import type { Frame } from "../wire/frame.ts";
import { IPV4_CSUM, IPV4_TTL } from "../wire/ipv4.ts";
import type { Pkt } from "../wire/pkt.ts";
import type { L2Host } from "./neigh.ts";

export const DR_QUEUED = -1;

export function drXmit(f: Frame, p: Pkt, t: ConnTable, id: number, l2: L2Host, nowMs: number): number {
  if (p.ipv !== 4) return DROP.UNSUPPORTED_FWD;
  const dv = f.dv;
  const o = p.l3;
  // Forwarding decrements the TTL (RFC 1812 §5.3.1); the checksum word holds TTL and protocol.
  const ttl = dv.getUint8(o + IPV4_TTL);
  if (ttl <= 1) return DROP.TTL_EXCEEDED;
  const oldWord = (ttl << 8) | dv.getUint8(o + IPV4_TTL + 1);
  dv.setUint8(o + IPV4_TTL, ttl - 1);
  dv.setUint16(o + IPV4_CSUM, csumReplace16(dv.getUint16(o + IPV4_CSUM), oldWord, oldWord - 0x100));
  const start = l2.resolve(f, p.start, p.len, t.addrWord(id, 2, 0), ETHERTYPE_IPV4, nowMs);
  if (start < 0) return DR_QUEUED;
  p.start = start;
  p.len += ETH_HDR_LEN;
  return 0;
}
