// `-L --json` and `-L -c --json`: the listing as one JSON document, for scripts that today
// scrape ipvsadm's columns. Addresses are always numeric (canonical text) and ports
// numbers, whatever -n says; services and destinations come in -L's order (ipvsadm's sort,
// or kernel order with --nosort); counters are raw numbers (never K/M-scaled). Pure: the
// caller fetches the data and prints the string. The shape is stable: fields are only
// ever added.
import type { ListOptions } from "../control/commands.ts";
import { IpvsError, MSG } from "../control/errors.ts";
import { type Fwd, sameServiceKey } from "../control/model.ts";
import type { ConnView, DestView, HealthView, ListReply, ServiceView, Stats } from "../control/protocol.ts";
import { sortDests, sortServices, schedFlagNames } from "./rules_text.ts";

const PROTO: Readonly<Record<string, string>> = { tcp: "TCP", udp: "UDP", sctp: "SCTP", fwm: "FWM" };
const FWD: Readonly<Record<Fwd, string>> = { masq: "Masq", route: "Route", tunnel: "Tunnel", fullnat: "FullNat" };

const stats = (s: Stats) => ({ conns: s.conns, inpkts: s.inpkts, outpkts: s.outpkts, inbytes: s.inbytes, outbytes: s.outbytes });
const rates = (r: Stats) => ({ cps: r.conns, inpps: r.inpkts, outpps: r.outpkts, inbps: r.inbytes, outbps: r.outbytes });
const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);

export function healthJson(h: HealthView | undefined) {
  if (!h) return null;
  return {
    check: h.check, state: h.state, available: h.available,
    last: h.last ? { ok: h.last.ok, ms: h.last.ms, detail: h.last.detail, at: iso(h.lastCheckMs) } : null,
    since: iso(h.changedMs), transitions: h.transitions,
  };
}

function destJson(d: DestView) {
  return {
    address: d.addr, port: d.port, af: d.af, forward: FWD[d.fwd], weight: d.weight,
    activeConns: d.activeConns, inactConns: d.inactConns, persistConns: d.persistConns,
    uThreshold: d.uThreshold, lThreshold: d.lThreshold,
    tunnel: d.fwd === "tunnel" ? { type: d.tunType, port: d.tunPort, csum: d.tunCsum } : null,
    stats: stats(d.stats), rate: rates(d.rate), health: healthJson(d.health),
  };
}

function serviceJson(s: ServiceView, o: ListOptions) {
  const k = s.key;
  return {
    proto: PROTO[k.kind], af: k.af, address: k.kind === "fwm" ? null : k.addr, port: k.port, fwmark: k.fwmark,
    scheduler: s.sched, flags: schedFlagNames(s.sched, s.schedFlags),
    persistent: s.persistent ? { timeout: s.timeoutSec, netmask: s.netmask } : null,
    pe: s.pe || null, ops: s.ops,
    // tslb's full-NAT settings: present only when set, so other services keep their shape.
    ...(s.laddrs.length ? { laddrs: s.laddrs } : {}),
    ...(s.proxyProtocol ? { proxy_protocol: `v${s.proxyProtocol}` } : {}),
    stats: stats(s.stats), rate: rates(s.rate),
    destinations: (o.nosort ? s.dests : sortDests(s.dests)).map(destJson),
  };
}

/** -L --json (one service with -t/-u/-f: "No such service" as -L when it is missing). */
export function formatListJson(reply: ListReply, o: ListOptions): string {
  let services = o.nosort ? reply.services : sortServices(reply.services);
  if (o.key) {
    const key = o.key;
    services = services.filter((s) => sameServiceKey(s.key, key));
    if (services.length === 0) throw new IpvsError("ESRCH", MSG.NO_SUCH_SERVICE, 1);
  }
  return JSON.stringify({ version: "1.2.1", size: reply.size, timeouts: reply.timeouts, services: services.map((s) => serviceJson(s, o)) }, null, 2) + "\n";
}

/** -L -c --json: the connection entries, in table order as -c. */
export function formatConnsJson(conns: readonly ConnView[]): string {
  return JSON.stringify({
    connections: conns.map((c) => ({
      proto: c.proto, af: c.af, state: c.state, expires: c.expireSec,
      client: { address: c.caddr, port: c.cport },
      virtual: { address: c.vaddr, port: c.vport },
      destination: { address: c.daddr, port: c.dport },
      ...(c.peName !== undefined ? { pe: { name: c.peName, data: c.peData ?? "" } } : {}),
      // tslb's full NAT: the balancer's address and port toward the real server.
      ...(c.laddr !== undefined && c.lport !== undefined ? { local: { address: c.laddr, port: c.lport } } : {}),
    })),
  }, null, 2) + "\n";
}
