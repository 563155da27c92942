// NAT ("Masq", ip_vs_nat_xmit): client→server packets get the real server as
// destination; server→client replies get the VIP back as source. Checksums are patched
// where the fields are written (RFC 1624), never recomputed. IPv4 only for now.
// Contract: `p` was parsed by parseIp (TCP or UDP) and matched connection `id`.
// Returns 0 (send the packet) or a DropReason, like every xmit function.
import type { ConnTable } from "../conntrack/table.ts";
import { csumReplace16, csumReplace32 } from "../wire/checksum.ts";
import type { Frame } from "../wire/frame.ts";
import { IPPROTO_UDP, ipv4SetDstCsum, ipv4SetSrcCsum } from "../wire/ipv4.ts";
import type { Pkt } from "../wire/pkt.ts";

/** Patches the L4 checksum for one address and one port change. A zero UDP checksum means "none" and stays 0. */
function l4PatchCsum(dv: DataView, p: Pkt, oldAddr: number, newAddr: number, oldPort: number, newPort: number): void {
  const at = p.l4csum;
  const c0 = dv.getUint16(at);
  if (p.proto === IPPROTO_UDP && c0 === 0) return;
  let c = csumReplace16(csumReplace32(c0, oldAddr, newAddr), oldPort, newPort);
  // RFC 768: a computed UDP checksum of 0 is sent as all ones.
  if (c === 0 && p.proto === IPPROTO_UDP) c = 0xffff;
  dv.setUint16(at, c);
}

export function natXmit(f: Frame, p: Pkt, t: ConnTable, id: number): number {
  const dv = f.dv;
  if (p.dir === 0) {
    const daddr = t.addrWord(id, 2, 0);
    const dport = t.dport(id);
    const old = ipv4SetDstCsum(dv, p.l3, daddr);
    l4PatchCsum(dv, p, old, daddr, p.dport, dport);
    dv.setUint16(p.l4 + 2, dport);
  } else {
    const vaddr = t.addrWord(id, 1, 0);
    const vport = t.vport(id);
    const old = ipv4SetSrcCsum(dv, p.l3, vaddr);
    l4PatchCsum(dv, p, old, vaddr, p.sport, vport);
    dv.setUint16(p.l4, vport);
  }
  return 0;
}
