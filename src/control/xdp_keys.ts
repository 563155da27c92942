// Which frames the XDP hand-off (--xdp, io/xdp.ts) takes: the steal map's keys, from the
// rules. A service qualifies when it is IPv4 TCP or UDP on one port and every one of its
// destinations is masqueraded (-m) or routed directly (-g): its packets are keyed by VIP
// and port, its masqueraded real servers' replies by RIP and port (a DR server's replies
// go to the client without tslb, so they have no key). Everything else (tunnels, full
// NAT, fwmark and port-0 services, IPv6, a service with a tunnelled destination) keeps the
// TUN path, which also stays the fallback for whatever the hand-off cannot send itself.
import { deleteElem, updateElem } from "../io/bpf.ts";
import { stealKey } from "../io/xdp.ts";
import { parseIPv4 } from "../wire/addr.ts";
import type { RuleSet } from "./model.ts";

const PROTO = { tcp: 6, udp: 17 } as const;

/** The keys `rules` call for, by text (for diffing) with their bytes. */
export function stealKeys(rules: RuleSet): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  const add = (addr: string, port: number, proto: number, fromServer: boolean) => {
    const k = stealKey(parseIPv4(addr) ?? 0, port, proto, fromServer);
    keys.set(k.join("."), k);
  };
  for (const s of rules.services) {
    const { kind, af, addr, port } = s.key;
    if ((kind !== "tcp" && kind !== "udp") || af !== 4 || port === 0 || s.dests.length === 0 || s.proxyProtocol !== 0) continue;
    if (!s.dests.every((d) => (d.fwd === "masq" || d.fwd === "route") && d.af === 4)) continue;
    const proto = PROTO[kind];
    add(addr, port, proto, false);
    for (const d of s.dests) if (d.fwd === "masq") add(d.addr, d.port, proto, true);
  }
  return keys;
}

/** Keeps the steal map equal to the rules' keys. */
export class StealKeys {
  private have = new Map<string, Uint8Array>();
  private static readonly ONE = Uint8Array.of(1);
  constructor(private readonly mapFd: number) {}

  /** Adds and removes keys; throws SysError (the map full, say) with the map part-way there. */
  sync(rules: RuleSet): void {
    const want = stealKeys(rules);
    for (const [t, k] of this.have) if (!want.has(t)) { deleteElem(this.mapFd, k); this.have.delete(t); }
    for (const [t, k] of want) if (!this.have.has(t)) { updateElem(this.mapFd, k, StealKeys.ONE); this.have.set(t, k); }
  }

  get size(): number {
    return this.have.size;
  }
}
