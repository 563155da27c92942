// Pure formatters for everything ipvsadm prints on stdout: -L/-l in all its modes, -c,
// --timeout, -h and -v. Byte-exact with ipvsadm 1.31 (reference §2), trailing spaces
// included; each printf format of ipvsadm is noted beside the code that reproduces it.
// No I/O: the caller fetches the data (ListReply, ConnView[]) and prints the string.
import type { ListOptions } from "../control/commands.ts";
import { IpvsError, MSG } from "../control/errors.ts";
import { type Af, type Fwd, sameServiceKey, type SvcKind, type Timeouts } from "../control/model.ts";
import type { ConnView, DestView, ListReply, ServiceView, Stats } from "../control/protocol.ts";
import { addrPortName, sortDests, sortServices, protoName, schedFlagNames } from "./rules_text.ts";
import type { ReverseNames } from "./names.ts";

const IPVS_VERSION = "1.2.1";
const TSLB_VERSION = "0.1.0"; // keep in step with package.json

// %-Ns and %Ns. Not padEnd/padStart: at 100 000 destinations (five pads each) those
// native calls were half of formatting a listing; appending a ready-made run of spaces
// is a fraction of that.
const SPACES = Array.from({ length: 65 }, (_, n) => " ".repeat(n));
const spaces = (n: number) => (n < SPACES.length ? SPACES[n] : " ".repeat(n));
const left = (v: string | number, w: number) => { const s = String(v); return s.length >= w ? s : s + spaces(w - s.length); };
const right = (v: string | number, w: number) => { const s = String(v); return s.length >= w ? s : spaces(w - s.length) + s; };

/** print_largenum: a 9-column number, scaled to K/M/G/T (truncating) unless --exact. */
export function formatNumber(n: number, exact: boolean): string {
  if (exact) {
    const s = String(n);
    return right(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (n < 1e8) return right(n, 9);
  if (n < 1e9) return right(Math.floor(n / 1e3), 8) + "K";
  if (n < 1e11) return right(Math.floor(n / 1e6), 8) + "M";
  if (n < 1e14) return right(Math.floor(n / 1e9), 8) + "G";
  return right(Math.floor(n / 1e12), 8) + "T";
}

type Mode = "stats" | "rate" | "thresholds" | "persistentConn" | "tunInfo" | "default";

/** ipvsadm tests its format flags in this order, so the first one given wins. */
function modeOf(o: ListOptions): Mode {
  return o.stats ? "stats" : o.rate ? "rate" : o.thresholds ? "thresholds"
    : o.persistentConn ? "persistentConn" : o.tunInfo ? "tunInfo" : "default";
}

const TITLE: Readonly<Record<Mode, string>> = {
  // "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
  stats: `${left("Prot LocalAddress:Port", 33)} ${["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"].map((h) => right(h, 8)).join(" ")}\n  -> RemoteAddress:Port\n`,
  rate: `${left("Prot LocalAddress:Port", 33)} ${["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"].map((h) => right(h, 8)).join(" ")}\n  -> RemoteAddress:Port\n`,
  // "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n"
  thresholds: `${left("Prot LocalAddress:Port", 33)} ${["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"].map((h) => left(h, 10)).join(" ")}\n  -> RemoteAddress:Port\n`,
  // "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n"
  persistentConn: `${left("Prot LocalAddress:Port", 33)} ${left("Weight", 9)} ${left("PersistConn", 11)} ${left("ActiveConn", 10)} ${left("InActConn", 10)}\n  -> RemoteAddress:Port\n`,
  tunInfo: "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
  default: "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
};

const PROTO_TITLE: Readonly<Record<SvcKind, string>> = { tcp: "TCP", udp: "UDP", sctp: "SCTP", fwm: "?" };
const FWD_NAME: Readonly<Record<Fwd, string>> = { masq: "Masq", route: "Route", tunnel: "Tunnel", fullnat: "FullNat" };
const CSUM_FLAG = { nocsum: "-c", csum: "+c", remcsum: "r+c" } as const;
const DEFAULT_MASK: Readonly<Record<Af, string>> = { 4: "255.255.255.255", 6: "128" };

function tunInfo(d: DestView): string {
  if (d.fwd !== "tunnel") return "n/a";
  switch (d.tunType) {
    case "ipip": return "ipip";
    case "gue": return `gue:${d.tunPort}:${CSUM_FLAG[d.tunCsum]}`;
    case "gre": return `gre:${CSUM_FLAG[d.tunCsum]}`;
  }
}

const five = (s: Stats, exact: boolean) =>
  [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map((n) => formatNumber(n, exact)).join("");

function serviceBlock(svc: ServiceView, o: ListOptions, mode: Mode, names: ReverseNames): string {
  const k = svc.key;
  const proto = protoName(k.kind);
  let name: string;
  if (k.kind === "fwm") name = `FWM  ${k.fwmark}${k.af === 6 ? " IPv6" : ""}`;
  else {
    name = `${left(PROTO_TITLE[k.kind], 4)} ${addrPortName(k.af, k.addr, k.port, proto, o.numeric, names)}`;
    if (k.af !== 6) name = name.slice(0, 33); // ipvsadm cuts IPv4 names to its column
  }

  let out: string;
  if (mode === "stats") out = left(name, 33) + five(svc.stats, o.exact);
  else if (mode === "rate") out = left(name, 33) + five(svc.rate, o.exact);
  else {
    out = `${name} ${svc.sched}`;
    if (svc.schedFlags & 7) out += ` (${schedFlagNames(svc.sched, svc.schedFlags).join(",")})`;
    if (svc.persistent) {
      out += ` persistent ${svc.timeoutSec}`;
      if (svc.netmask !== DEFAULT_MASK[k.af]) out += ` mask ${svc.netmask}`;
      if (svc.pe) out += ` pe ${svc.pe}`;
    }
    if (svc.ops) out += " ops";
  }
  out += "\n";

  const dests = o.nosort ? svc.dests : sortDests(svc.dests);
  for (const d of dests) {
    let dname = addrPortName(d.af, d.addr, d.port, proto, o.numeric, names);
    if (d.af !== 6) dname = dname.slice(0, 28);
    const head = `  -> ${left(dname, 28)}`;
    switch (mode) {
      case "stats":
        out += head + five(d.stats, o.exact) + "\n";
        break;
      case "rate": // "  -> %-28s %8llu %8llu %8llu" then two large numbers
        out += `${head} ${right(d.rate.conns, 8)} ${right(d.rate.inpkts, 8)} ${right(d.rate.outpkts, 8)}` +
          formatNumber(d.rate.inbytes, o.exact) + formatNumber(d.rate.outbytes, o.exact) + "\n";
        break;
      case "thresholds": // "  -> %-28s %-10u %-10u %-10u %-10u\n"
        out += `${head} ${left(d.uThreshold, 10)} ${left(d.lThreshold, 10)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}\n`;
        break;
      case "persistentConn": // "  -> %-28s %-9u %-11u %-10u %-10u\n"
        out += `${head} ${left(d.weight, 9)} ${left(d.persistConns, 11)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}\n`;
        break;
      case "tunInfo": // "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n"
        out += `${head} ${left(FWD_NAME[d.fwd], 7)} ${left(tunInfo(d), 13)} ${left(d.weight, 6)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}\n`;
        break;
      default: // "  -> %-28s %-7s %-6d %-10u %-10u\n"
        out += `${head} ${left(FWD_NAME[d.fwd], 7)} ${left(d.weight, 6)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}\n`;
    }
  }
  return out;
}

/**
 * -L/-l output. With opts.key: that service only, without the version header (throws
 * IpvsError ESRCH "No such service", exit 1, when it is missing); --timeout prints the
 * timeouts, --daemon the sync daemons (tslb runs none: empty). -c is formatConns: it
 * needs the connection table, which a ListReply does not carry.
 */
export function formatList(reply: ListReply, opts: ListOptions, names: ReverseNames): string {
  if (opts.connections) throw new Error("formatList: -c output comes from formatConns()");
  const mode = modeOf(opts);
  if (opts.key) {
    const key = opts.key;
    const svc = reply.services.find((s) => sameServiceKey(s.key, key));
    if (!svc) throw new IpvsError("ESRCH", MSG.NO_SUCH_SERVICE, 1);
    return TITLE[mode] + serviceBlock(svc, opts, mode, names);
  }
  if (opts.timeout) return formatTimeouts(reply.timeouts);
  if (opts.daemon) return "";
  const services = opts.nosort ? reply.services : sortServices(reply.services);
  let out = `IP Virtual Server version ${IPVS_VERSION} (size=${reply.size})\n` + TITLE[mode];
  for (const svc of services) out += serviceBlock(svc, opts, mode, names);
  return out;
}

const CONN_PROTO: Readonly<Record<string, string>> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

/**
 * -c output (reference §2.8), entries in the order given (ipvsadm does not sort them).
 * tslb's --fullnat-info (never with --persistent-conn) pads the destination like the
 * other columns and adds a last one, "local": the balancer's address and port toward
 * the real server of a full-NAT connection, "-" for any other entry.
 */
export function formatConns(conns: readonly ConnView[], opts: Pick<ListOptions, "numeric" | "persistentConn" | "fullnatInfo">, names: ReverseNames): string {
  let out = "IPVS connection entries\n";
  out += opts.persistentConn
    ? `pro expire ${left("state", 11)} ${left("source", 18)} ${left("virtual", 18)} ${left("destination", 18)} ${left("pe name", 16)} pe_data\n`
    : opts.fullnatInfo
      ? `pro expire ${left("state", 11)} ${left("source", 18)} ${left("virtual", 18)} ${left("destination", 18)} local\n`
      : `pro expire ${left("state", 11)} ${left("source", 18)} ${left("virtual", 18)} destination\n`;
  for (const c of conns) {
    const proto = CONN_PROTO[c.proto] ?? null;
    const name = (addr: string, port: number) =>
      addrPortName(addr.includes(":") ? 6 : 4, addr, port, proto, opts.numeric, names);
    const expire = `${String(Math.floor(c.expireSec / 60)).padStart(2, "0")}:${String(c.expireSec % 60).padStart(2, "0")}`;
    const row = `${left(c.proto, 3)} ${left(expire, 6)} ${left(c.state, 11)} ${left(name(c.caddr, c.cport), 18)} ${left(name(c.vaddr, c.vport), 18)} `;
    // ipvsadm's long row pads the destination to 16 and the PE name to 18, unlike its title.
    if (opts.persistentConn && c.peName !== undefined && c.peData !== undefined) {
      out += `${row}${left(name(c.daddr, c.dport), 16)} ${left(c.peName, 18)} ${c.peData}\n`;
    } else if (opts.fullnatInfo && !opts.persistentConn) {
      const local = c.laddr !== undefined && c.lport !== undefined ? name(c.laddr, c.lport) : "-";
      out += `${row}${left(name(c.daddr, c.dport), 18)} ${local}\n`;
    } else out += `${row}${name(c.daddr, c.dport)}\n`;
  }
  return out;
}

/** --timeout output. */
export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** -v output. */
export function versionText(): string {
  return `tslb v${TSLB_VERSION} (ipvsadm v1.31 compatible, IPVS v${IPVS_VERSION})\n`;
}

const IPVSADM_SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"];

/** -h output: ipvsadm's sections, in tslb's words. */
export function helpText(prog: string, schedulers: readonly string[] = IPVSADM_SCHEDULERS): string {
  const p = prog;
  return versionText() + `Usage:
  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  ${p} -D virtual-service
  ${p} -C
  ${p} -R [--dry-run]
  ${p} -S [-n]
  ${p} -a|e virtual-service -r server-address [options]
  ${p} -d virtual-service -r server-address
  ${p} -L|l [virtual-service] [options]
  ${p} -Z [virtual-service]
  ${p} --set tcp tcpfin udp
  ${p} --start-daemon {master|backup} [daemon-options]
  ${p} --stop-daemon {master|backup}
  ${p} -h

Commands (long or short form):
  --add-service     -A        add a virtual service
  --edit-service    -E        replace a virtual service's settings
  --delete-service  -D        delete a virtual service and its real servers
  --clear           -C        delete every virtual service
  --restore         -R        read rules from stdin, all or nothing (lines starting with # are comments)
  --save            -S        print the rules in -R format
  --add-server      -a        add a real server
  --edit-server     -e        replace a real server's settings
  --delete-server   -d        delete a real server
  --list            -L|-l     list the table
  --zero            -Z        zero the counters of one service or of all
  --set tcp tcpfin udp        set the connection timeouts (0 = unchanged)
  --start-daemon              start the connection sync daemon (not supported by tslb)
  --stop-daemon               stop the connection sync daemon (not supported by tslb)
  --help            -h        show this help

virtual-service:
  --tcp-service|-t  service-address   host[:port], [ipv6]:port or a bare IPv6 address
  --udp-service|-u  service-address   the same, for UDP
  --sctp-service    service-address   the same, for SCTP (not supported by tslb yet)
  --fwmark-service|-f fwmark          a firewall mark, 1..4294967295

Options:
  --ipv6         -6                   the fwmark service is IPv6 (after -f)
  --scheduler    -s scheduler         one of ${schedulers.join("|")},
                                      wlc when not given.
  --pe            engine              persistence engine (sip; not supported by tslb yet)
  --persistent   -p [timeout]         persistent service, 360 s when no timeout is given
  --netmask      -M netmask           persistence granularity (IPv4 mask, IPv6 prefix length)
  --real-server  -r server-address    host and optional port of a real server
  --gatewaying   -g                   direct routing (the default)
  --ipip         -i                   tunnelling (IPIP, GUE or GRE)
  --masquerading -m                   NAT
  --fullnat                           full NAT (tslb): the server sees a balancer address as the client
  --tun-type      type                one of ipip|gue|gre, ipip when not given.
  --tun-port      port                tunnel destination port (gue)
  --tun-nocsum                        tunnel without checksum
  --tun-csum                          tunnel with checksum
  --tun-remcsum                       tunnel with remote checksum
  --weight       -w weight            capacity of the real server, 0..65535 (0 = drain)
  --u-threshold  -x uthreshold        upper connection threshold
  --l-threshold  -y lthreshold        lower connection threshold
  --connection   -c                   list the connection table
  --timeout                           list the timeouts (tcp tcpfin udp)
  --daemon                            list the sync daemons
  --stats                             list with traffic counters
  --rate                              list with traffic rates
  --exact                             print numbers in full
  --thresholds                        list with thresholds
  --persistent-conn                   list with persistent connection counts
  --tun-info                          list with tunnel settings
  --nosort                            list in table order, unsorted
  --sort                              sorted listing (the default; accepted for compatibility)
  --ops          -o                   one-packet scheduling (UDP)
  --numeric      -n                   numeric addresses and ports
  --sched-flags  -b flags             scheduler flags, comma separated
  --laddr         addr[,addr...]      full NAT (tslb): local addresses toward the real servers
                                      (default: the address the kernel picks for each server)
  --proxy-protocol v1|v2              send a PROXY protocol header to the real servers (tslb; not supported yet)
  --dry-run                           with -R: print what would change, change nothing
  --json                              with -L (and -L -c): the listing as JSON
  --health                            with -L: each real server's health-check state
  --fullnat-info                      with -L -c: add each full-NAT connection's local address:port
  --laddr                             with -L: full NAT's local addresses and their port use

Health checks (tslb, with -a/-e; -S writes them back):
  --check tcp|http|udp|none           check the real server (none: stop checking)
  --check-port port                   port to probe (default: the server's port)
  --check-path path                   http: request path (default /)
  --check-status code                 http: status that passes (default any 2xx/3xx)
  --check-interval s                  seconds between probes (default 2)
  --check-timeout s                   seconds a probe may take (default 1)
  --check-rise n                      successes that bring a failed server back (default 2)
  --check-fall n                      failures that take a server out (default 3)
  --check-via-vip                     direct routing: probe the VIP through the server's MAC

Daemon Options:
  --syncid sid                        sync id, 0..255
  --sync-maxlen length                maximum sync message length
  --mcast-interface interface         multicast interface for sync
  --mcast-group address               IPv4/IPv6 multicast group
  --mcast-port port                   UDP port
  --mcast-ttl ttl                     multicast TTL
`;
}
