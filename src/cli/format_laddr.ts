// `-L --laddr` (tslb only): full NAT's local-port pool, and for each full-NAT destination
// the local addresses its connections come from with the pool ports each one holds.
// Laid out like -L (services and destinations in its order, the same addr:port column);
// only services with full-NAT destinations appear, except one named with -t/-u/-f.
// Pure: the caller fetches the LaddrReply and prints the string.
//
//   FullNat local addresses (ports 61000-65534, 4535 per address and real server)
//   Prot LocalAddress:Port
//     -> RemoteAddress:Port           LocalAddress    InUse
//   TCP  198.18.0.100:80
//     -> 198.18.1.11:8080             198.18.1.1      3
//     -> 198.18.1.12:8080             198.18.0.200    0
//     -> 198.18.1.12:8080             198.18.0.201    1
//
// A destination with no local address (no route toward it and no --laddr of its family)
// shows "-" and 0; an address that live connections still hold but that the service no
// longer has (after -E) is listed after the others, marked "(not configured)".
import type { ListOptions } from "../control/commands.ts";
import { IpvsError, MSG } from "../control/errors.ts";
import { sameServiceKey } from "../control/model.ts";
import type { LaddrReply, LaddrServiceView } from "../control/protocol.ts";
import type { ReverseNames } from "./names.ts";
import { addrPortName, sortDests, sortServices, protoName } from "./rules_text.ts";

const left = (s: string | number, w: number) => String(s).padEnd(w);
const PROTO_TITLE: Readonly<Record<string, string>> = { tcp: "TCP", udp: "UDP", sctp: "SCTP" };

/** The first line: the pool and how many ports it gives each (local address, real server). */
export function laddrPoolLine(ports: readonly [number, number]): string {
  return `FullNat local addresses (ports ${ports[0]}-${ports[1]}, ${ports[1] - ports[0] + 1} per address and real server)\n`;
}

/** -L --laddr output; with opts.key that service only ("No such service", exit 1, when it is missing). */
export function formatLaddrs(reply: LaddrReply, opts: Pick<ListOptions, "numeric" | "nosort" | "key">, names: ReverseNames): string {
  let services = opts.nosort ? reply.services : sortServices(reply.services);
  if (opts.key) {
    const key = opts.key;
    services = services.filter((s) => sameServiceKey(s.key, key));
    if (services.length === 0) throw new IpvsError("ESRCH", MSG.NO_SUCH_SERVICE, 1);
  } else services = services.filter((s) => s.dests.length > 0);
  const host = (af: 4 | 6, addr: string) => (opts.numeric ? addr : names.hostName(af, addr) ?? addr);
  // The local-address column fits any IPv4 address, and widens for longer ones (IPv6, names).
  let width = "255.255.255.255".length;
  for (const s of services) for (const d of s.dests) for (const l of d.laddrs) width = Math.max(width, host(d.af, l.addr).length);

  let out = laddrPoolLine(reply.ports) +
    `Prot LocalAddress:Port\n  -> ${left("RemoteAddress:Port", 28)} ${left("LocalAddress", width)} InUse\n`;
  for (const s of services) out += serviceBlock(s, opts, names, host, width);
  return out;
}

function serviceBlock(s: LaddrServiceView, opts: Pick<ListOptions, "numeric" | "nosort">, names: ReverseNames,
                      host: (af: 4 | 6, addr: string) => string, width: number): string {
  const k = s.key;
  const proto = protoName(k.kind);
  let out = k.kind === "fwm"
    ? `FWM  ${k.fwmark}${k.af === 6 ? " IPv6" : ""}\n`
    : `${left(PROTO_TITLE[k.kind], 4)} ${addrPortName(k.af, k.addr, k.port, proto, opts.numeric, names)}\n`;
  const dests = opts.nosort ? s.dests : sortDests(s.dests);
  for (const d of dests) {
    const head = `  -> ${left(addrPortName(d.af, d.addr, d.port, proto, opts.numeric, names), 28)}`;
    if (d.laddrs.length === 0) out += `${head} ${left("-", width)} 0\n`;
    for (const l of d.laddrs) {
      out += `${head} ${left(host(d.af, l.addr), width)} ${l.inUse}${l.configured ? "" : " (not configured)"}\n`;
    }
  }
  return out;
}
