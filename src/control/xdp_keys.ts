// Which frames the XDP hand-off (--xdp, io/xdp.ts) takes: the steal maps' keys, from the
// rules. A service qualifies when it is TCP or UDP on one port and every one of its
// destinations, of the service's own family, is masqueraded (-m), fully NATed (--fullnat)
// or routed directly (-g): its packets are keyed by VIP and port, its NAT real servers'
// replies by RIP and port. A DR server's replies need no tslb, but cross this host when it
// is the servers' router: they are keyed by VIP and port as their source (direction 2),
// taken with --xdp-forward and routed on by tslb. Everything else (tunnels, NAT46/64,
// fwmark and port-0 services, the PROXY protocol, a service with a tunnelled destination)
// keeps the TUN path, which also stays the fallback for whatever the hand-off cannot send
// itself.
import { deleteElem, updateElem } from "../io/bpf.ts";
import { DIR_DR_REPLY, DIR_SERVER, DIR_SERVICE, STEAL_KEY_BYTES, stealKey, stealKey6 } from "../io/xdp.ts";
import { addrWords } from "../wire/addr.ts";
import type { RuleSet } from "./model.ts";

const PROTO = { tcp: 6, udp: 17 } as const;

/** The keys `rules` call for, by text (for diffing) with their bytes. */
export function stealKeys(rules: RuleSet): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  for (const s of rules.services) {
    const { kind, af, addr, port } = s.key;
    if ((kind !== "tcp" && kind !== "udp") || port === 0 || s.dests.length === 0 || s.proxyProtocol !== 0) continue;
    if (!s.dests.every((d) => d.fwd !== "tunnel" && d.af === af)) continue;
    const proto = PROTO[kind];
    const add = (a: string, p: number, dir: number) => {
      const w = addrWords(a);
      const k = af === 4 ? stealKey(w[0], p, proto, dir) : stealKey6(w, p, proto, dir);
      keys.set(k.join("."), k);
    };
    add(addr, port, DIR_SERVICE);
    for (const d of s.dests) if (d.fwd !== "route") add(d.addr, d.port, DIR_SERVER);
    if (s.dests.some((d) => d.fwd === "route")) add(addr, port, DIR_DR_REPLY);
  }
  return keys;
}

/** Keeps the steal maps (IPv4, IPv6) equal to the rules' keys. */
export class StealKeys {
  private have = new Map<string, Uint8Array>();
  private static readonly ONE = Uint8Array.of(1);
  constructor(private readonly maps: [number, number]) {}

  /** The map a key belongs in, by its size. */
  private map(k: Uint8Array): number {
    return this.maps[k.length === STEAL_KEY_BYTES ? 0 : 1];
  }

  /** Adds and removes keys; throws SysError (a map full, say) with the maps part-way there. */
  sync(rules: RuleSet): void {
    const want = stealKeys(rules);
    for (const [t, k] of this.have) if (!want.has(t)) { deleteElem(this.map(k), k); this.have.delete(t); }
    for (const [t, k] of want) if (!this.have.has(t)) { updateElem(this.map(k), k, StealKeys.ONE); this.have.set(t, k); }
  }

  get size(): number {
    return this.have.size;
  }
}
