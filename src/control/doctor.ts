// tslb doctor: checks this host for what each configured forwarding mode needs, and
// prints the exact setup every real server needs — the step users of IPVS, DPVS and
// Katran most often get wrong. Read-only: it changes nothing (the daemon's own setup is
// what changes things). Run it where the daemon runs (same network namespace).
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { SysError, O_RDWR, close, open } from "../io/libc.ts";
import { RtNetlink } from "../io/rtnetlink.ts";
import { call } from "./client.ts";
import type { Dest, RuleSet, Service } from "./model.ts";
import type { GlobalOptions } from "./options.ts";
import type { StatusReply } from "./protocol.ts";
import { writeOut } from "../cli/stdout.ts";

type Level = "ok" | "warn" | "fail" | "info";

export interface Finding {
  level: Level;
  text: string;
}

function sysctl(path: string): string | null {
  try {
    return readFileSync(`/proc/sys/${path}`, "utf8").trim();
  } catch {
    return null;
  }
}

function mtu(dev: string): number | null {
  try {
    return Number(readFileSync(`/sys/class/net/${dev}/mtu`, "utf8"));
  } catch {
    return null;
  }
}

function master(dev: string): string | null {
  try {
    return basename(readlinkSync(`/sys/class/net/${dev}/master`));
  } catch {
    return null;
  }
}

/** How many receive queues `dev` has (sysfs), or null. */
function rxQueues(dev: string): number | null {
  try {
    return readdirSync(`/sys/class/net/${dev}/queues`).filter((q) => q.startsWith("rx-")).length;
  } catch {
    return null;
  }
}

/** Host checks: TUN access, forwarding, reverse-path filtering, devices of a running daemon. */
export function hostFindings(status: StatusReply | null, rules: RuleSet): Finding[] {
  const out: Finding[] = [];
  const fd = (() => { try { return open("/dev/net/tun", O_RDWR); } catch (e) { return e as SysError; } })();
  if (typeof fd === "number") {
    close(fd);
    out.push({ level: "ok", text: "/dev/net/tun can be opened" });
  } else out.push({ level: "fail", text: `/dev/net/tun cannot be opened (${fd.message}): run as root, or give the container /dev/net/tun and CAP_NET_ADMIN` });
  const fwd4 = sysctl("net/ipv4/ip_forward");
  out.push(fwd4 === "1" ? { level: "ok", text: "net.ipv4.ip_forward=1" } : { level: "warn", text: `net.ipv4.ip_forward=${fwd4}: the daemon sets it to 1 when it starts` });
  if (rules.services.some((s) => s.key.af === 6)) {
    const fwd6 = sysctl("net/ipv6/conf/all/forwarding");
    out.push(fwd6 === "1" ? { level: "ok", text: "net.ipv6.conf.all.forwarding=1" } : { level: "warn", text: `net.ipv6.conf.all.forwarding=${fwd6}: set when the first IPv6 service is added` });
  }
  const rpf = sysctl("net/ipv4/conf/all/rp_filter");
  out.push(rpf === "0" ? { level: "ok", text: "net.ipv4.conf.all.rp_filter=0" }
    : { level: "info", text: `net.ipv4.conf.all.rp_filter=${rpf}: NAT works (tslb's TUN uses loose mode); fwmark services need routes to their marked addresses` });
  if (!status) {
    out.push({ level: "info", text: "no daemon answers on the socket: device checks skipped (it starts with the first rule)" });
    return out;
  }
  out.push({ level: "ok", text: `daemon pid ${status.pid} on ${status.socket}, ${status.connections}/${status.connMax} connection entries` });
  out.push({ level: "info", text: `${status.workers} data-plane worker${status.workers === 1 ? "" : "s"}, TUN offloads ${status.offload ? "on" : "off"}, ` +
    `receive steering ${status.rps ? `to CPUs ${status.rps}` : "off"}` });
  if (status.xdp && status.xdp.length > 0) {
    out.push({ level: "ok", text: `xdp hand-off on ${status.xdp.join(", ")}: ${status.xdpKeys ?? 0} steal keys (services, their NAT and full NAT real servers' ports, DR services' replies)` });
    out.push({ level: "info", text: status.xdpForward === false ? "DR replies crossing this host are left to its bridge and routing (--xdp-forward off)"
      : "DR replies crossing this host (its real servers' router) on these interfaces are routed by tslb (--xdp-forward on)" });
    const bulk = status.bulkOffload ?? "off";
    out.push(bulk.startsWith("on") ? { level: "ok", text: `bulk offload ${bulk}: the kernel rewrites established NAT connections' transfers (--bulk-offload on)` }
      : { level: "info", text: `bulk offload ${bulk}: NAT transfers go through the TUN` });
    for (const entry of status.xdp) {
      const dev = entry.split(" ")[0];
      const q = rxQueues(dev);
      if (q !== null && q > 1) out.push({ level: "info", text: `${dev} has ${q} receive queues: only queue 0's frames take the hand-off, the others go through the TUN` });
    }
  }
  for (const dev of [status.tun, status.tap]) {
    const m = mtu(dev);
    out.push(m === null ? { level: "fail", text: `device ${dev} is missing` } : { level: "ok", text: `device ${dev} is up, mtu ${m}` });
  }
  const hasDr = rules.services.some((s) => s.dests.some((d) => d.fwd === "route"));
  if (hasDr) {
    const br = master(status.tap);
    if (!status.bridge) out.push({ level: "fail", text: `direct-routing destinations exist but the daemon has no --bridge: ${status.tap} is not attached to any segment` });
    else if (br !== status.bridge) out.push({ level: "fail", text: `${status.tap} is not a port of bridge ${status.bridge} (master: ${br ?? "none"})` });
    else out.push({ level: "ok", text: `${status.tap} is a port of bridge ${status.bridge}` });
  }
  if (status.vipDev && !existsSync(`/sys/class/net/${status.vipDev}`)) out.push({ level: "fail", text: `--vip-dev ${status.vipDev} does not exist` });
  return out;
}

function vipOf(s: Service): string {
  return s.key.kind === "fwm" ? `<the addresses marked ${s.key.fwmark}>` : s.key.addr;
}

/** The commands a real server needs for destination `d` of service `s`. */
export function realServerSetup(s: Service, d: Dest, balancerAddr: string | null): string[] {
  const v6 = d.af === 6;
  const vip = vipOf(s);
  const plen = s.key.af === 6 ? 128 : 32;
  const ipcmd = v6 ? "ip -6" : "ip";
  if (d.fwd === "masq") {
    return [
      `# NAT (-m): replies must come back through the balancer${balancerAddr ? "" : " (no route from here to this server!)"}`,
      `${ipcmd} route replace default via ${balancerAddr ?? "<balancer address on this server's subnet>"}`,
      "# or, to leave the default route alone, only the clients' networks: ip route add <client net> via <balancer>",
    ];
  }
  if (d.fwd === "fullnat") {
    const from = s.laddrs.length ? s.laddrs.join(", ") : balancerAddr ?? "<the balancer's address toward this server>";
    return [
      `# Full NAT (--fullnat): connections come from the balancer (${from}), so replies return to it by the usual routes`,
      "# nothing to set up on the server; it sees the balancer, not the client, as the peer",
    ];
  }
  const lo = [`ip addr add ${vip}/${plen} dev lo`];
  const arp = s.key.af === 4
    ? ["sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2", "sysctl -w net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2"]
    : ["# IPv6: a VIP on lo is not answered in neighbour discovery on other interfaces; nothing more is needed"];
  if (d.fwd === "route") {
    return ["# Direct routing (-g): same Ethernet segment as the balancer's TAP; the VIP on lo, never answered in ARP", ...lo, ...arp];
  }
  const decap = d.tunType === "gue" ? `tslb --decap --vip ${vip} --gue-port ${d.tunPort}` : `tslb --decap --vip ${vip}`;
  return [
    `# Tunnel (-i, ${d.tunType}): the VIP on lo, tslb's decapsulator instead of the ${d.tunType === "gre" ? "gre" : d.tunType === "gue" ? "fou" : "ipip"} module`,
    ...lo, ...arp,
    `sysctl -w net.ipv4.conf.all.rp_filter=0`,
    decap,
  ];
}

export function formatFindings(f: Finding[]): string {
  const tag: Record<Level, string> = { ok: "[ ok ]", warn: "[warn]", fail: "[FAIL]", info: "[info]" };
  return f.map((x) => `${tag[x.level]} ${x.text}`).join("\n") + "\n";
}

/** Runs the checks against the running daemon (or rules from `rulesOverride`); returns the exit status. */
export async function runDoctor(o: GlobalOptions, rulesOverride?: RuleSet): Promise<number> {
  const st = await call(o, { op: "status" }, false).catch(() => null);
  const status = st && st.ok ? (st.data as StatusReply) : null;
  let rules: RuleSet = rulesOverride ?? { services: [], timeouts: { tcp: 900, tcpfin: 120, udp: 300 } };
  if (!rulesOverride && status) {
    const r = await call(o, { op: "rules" }, false);
    if (r && r.ok) rules = r.data as RuleSet;
  }
  const findings = hostFindings(status, rules);
  writeOut("Host\n" + formatFindings(findings));
  let nl: RtNetlink | null = null;
  try { nl = RtNetlink.open(); } catch { nl = null; }
  for (const s of rules.services) {
    const name = s.key.kind === "fwm" ? `FWM ${s.key.fwmark}` : `${s.key.kind.toUpperCase()} ${s.key.af === 6 ? `[${s.key.addr}]` : s.key.addr}:${s.key.port}`;
    writeOut(`\nService ${name} (${s.sched})\n`);
    if (s.dests.length === 0) writeOut("[warn] no real servers: new connections are dropped\n");
    for (const d of s.dests) {
      const src = nl ? (() => { try { return nl!.routeGetSrc(d.af, d.addr); } catch { return null; } })() : null;
      writeOut(`  real server ${d.af === 6 ? `[${d.addr}]` : d.addr}:${d.port} (${d.fwd}${src ? `, reached from ${src}` : ", NO ROUTE from here"}):\n`);
      for (const line of realServerSetup(s, d, src)) writeOut(`    ${line}\n`);
    }
  }
  nl?.close();
  return findings.some((f) => f.level === "fail") ? 1 : 0;
}
