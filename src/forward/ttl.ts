// Forwarding decrements the TTL / hop limit (RFC 1812 §5.3.1, RFC 8200 §3), as IPVS does
// when it sends a packet on to a real server (direct routing, tunnels). NAT packets are
// forwarded by the kernel, which does it itself.
import { csumReplace16 } from "../wire/checksum.ts";
import { DROP } from "../wire/drop.ts";
import { IPV4_CSUM, IPV4_TTL } from "../wire/ipv4.ts";
import { IPV6_HOP_LIMIT } from "../wire/ipv6.ts";
import type { Pkt } from "../wire/pkt.ts";

/** Decrements the TTL (patching the IPv4 checksum) or hop limit at p.l3: 0, or DROP.TTL_EXCEEDED. */
export function decrementTtl(dv: DataView, p: Pkt): number {
  const o = p.l3;
  if (p.ipv === 4) {
    const ttl = dv.getUint8(o + IPV4_TTL);
    if (ttl <= 1) return DROP.TTL_EXCEEDED;
    // The checksum covers TTL and protocol as one 16-bit word.
    const oldWord = (ttl << 8) | dv.getUint8(o + IPV4_TTL + 1);
    dv.setUint8(o + IPV4_TTL, ttl - 1);
    dv.setUint16(o + IPV4_CSUM, csumReplace16(dv.getUint16(o + IPV4_CSUM), oldWord, oldWord - 0x100));
    return 0;
  }
  const hl = dv.getUint8(o + IPV6_HOP_LIMIT);
  if (hl <= 1) return DROP.TTL_EXCEEDED;
  dv.setUint8(o + IPV6_HOP_LIMIT, hl - 1);
  return 0;
}
