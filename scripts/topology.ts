// The NAT test/demo topology, built from network namespaces (DESIGN §5). Used by the
// end-to-end tests, `npm run demo` and the benches, so every one of them builds the
// same hosts the same way. Only 198.18.0.0/15 addresses, nothing in the root namespace,
// and destroy() removes every namespace (the veths and bridge go with them).
//
//   cl   198.18.2.2/24 ── 198.18.2.1  lb  (route VIP/32 via the balancer)
//   cl2  198.18.0.2/24 ── 198.18.0.1  lb  (same segment as the VIP: proxy ARP, --vip-dev)
//                                      lb  br0 198.18.1.1/24 ── rs1 198.18.1.11, rs2 198.18.1.12
//   VIP 198.18.0.100; real servers' default route via 198.18.1.1 (NAT needs replies back).
// IPv6 alongside, same shape: cl 2001:2:0:2::2, cl2 2001:2:0:ff::2 (VIP6 2001:2:0:ff::100 on
// its segment), real servers 2001:2:0:1::11 and ::12 behind br0 2001:2:0:1::1.
import { spawnSync } from "node:child_process";

export const VIP = "198.18.0.100";
export const LB_RS = "198.18.1.1";
export const RS = ["198.18.1.11", "198.18.1.12"];
export const CL = "198.18.2.2";
export const CL2 = "198.18.0.2";
export const VIP6 = "2001:2:0:ff::100";
export const RS6 = ["2001:2:0:1::11", "2001:2:0:1::12"];
export const CL6 = "2001:2:0:2::2";
export const CL26 = "2001:2:0:ff::2";

export function sh(cmd: string[], allowFail = false): { out: string; err: string; code: number } {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 30_000 });
  const res = { out: r.stdout ?? "", err: r.stderr ?? "", code: r.status ?? -1 };
  if (res.code !== 0 && !allowFail) throw new Error(`${cmd.join(" ")} -> ${res.code}: ${res.err.trim()}`);
  return res;
}

/** Kills whatever still runs in the namespaces, then deletes them (missing ones are fine). */
export function deleteNamespaces(names: readonly string[]): void {
  for (const n of names) sh(["ip", "netns", "pids", n], true).out.split("\n").filter(Boolean).forEach((pid) => sh(["kill", "-9", pid], true));
  for (const n of names) sh(["ip", "netns", "del", n], true);
}

/** The router of the full-NAT topology: the real servers' gateway instead of the balancer. */
export const ROUTER = "198.18.1.254";
export const ROUTER6 = "2001:2:0:1::fe";

export class Topology {
  readonly ns: { lb: string; cl: string; cl2: string; rs1: string; rs2: string; rt: string };
  /** The balancer's interface on cl2's segment: the --vip-dev for proxy ARP. */
  readonly vipDev = "lbv";
  private made: string[] = [];

  /**
   * `router`: the full-NAT variant. A router namespace "rt" (ROUTER, ROUTER6) joins the
   * servers' segment and is their default gateway; it has no route to the clients, so
   * only full NAT (replies addressed to the balancer itself) can work.
   */
  constructor(tag: string, private readonly router = false) {
    const p = `tslb-${tag}-${process.pid}`;
    this.ns = { lb: `${p}-lb`, cl: `${p}-cl`, cl2: `${p}-cl2`, rs1: `${p}-rs1`, rs2: `${p}-rs2`, rt: `${p}-rt` };
  }

  /** `ip -n <ns> ...` */
  ip(ns: string, ...args: string[]): string {
    return sh(["ip", "-n", ns, ...args]).out;
  }
  /** Runs argv inside a namespace (bounded by `timeout`). */
  exec(ns: string, argv: string[], allowFail = false, timeoutSec = 30) {
    return sh(["timeout", String(timeoutSec), "ip", "netns", "exec", ns, ...argv], allowFail);
  }
  sysctl(ns: string, kv: string): void {
    sh(["ip", "netns", "exec", ns, "sysctl", "-qw", kv]);
  }

  private veth(a: string, aIf: string, b: string, bIf: string): void {
    sh(["ip", "link", "add", aIf, "netns", a, "type", "veth", "peer", "name", bIf, "netns", b]);
    this.ip(a, "link", "set", aIf, "up");
    this.ip(b, "link", "set", bIf, "up");
  }

  up(): this {
    const { lb, cl, cl2, rs1, rs2, rt } = this.ns;
    // A safety net: even if a test's own cleanup never runs, the namespaces go at exit.
    process.once("exit", () => this.destroy());
    try {
      for (const n of [lb, cl, cl2, rs1, rs2, ...(this.router ? [rt] : [])]) {
        sh(["ip", "netns", "add", n]);
        this.made.push(n);
        this.ip(n, "link", "set", "lo", "up");
        // No duplicate address detection: link-local addresses usable at once, no 1 s stall
        // on the first IPv6 packets of a test.
        this.sysctl(n, "net.ipv6.conf.default.accept_dad=0");
        this.sysctl(n, "net.ipv6.conf.all.accept_dad=0");
      }
      this.veth(cl, "eth0", lb, "lbc");
      this.ip(cl, "addr", "add", `${CL}/24`, "dev", "eth0");
      this.ip(lb, "addr", "add", "198.18.2.1/24", "dev", "lbc");
      this.ip(cl, "route", "add", `${VIP}/32`, "via", "198.18.2.1");
      // nodad: the addresses are usable at once instead of after duplicate detection.
      this.ip(cl, "addr", "add", `${CL6}/64`, "dev", "eth0", "nodad");
      this.ip(lb, "addr", "add", "2001:2:0:2::1/64", "dev", "lbc", "nodad");
      this.ip(cl, "-6", "route", "add", `${VIP6}/128`, "via", "2001:2:0:2::1");
      this.veth(cl2, "eth0", lb, this.vipDev);
      this.ip(cl2, "addr", "add", `${CL2}/24`, "dev", "eth0");
      this.ip(lb, "addr", "add", "198.18.0.1/24", "dev", this.vipDev);
      this.ip(cl2, "addr", "add", `${CL26}/64`, "dev", "eth0", "nodad");
      this.ip(lb, "addr", "add", "2001:2:0:ff::1/64", "dev", this.vipDev, "nodad");
      this.ip(lb, "link", "add", "br0", "type", "bridge");
      this.ip(lb, "addr", "add", `${LB_RS}/24`, "dev", "br0");
      this.ip(lb, "addr", "add", "2001:2:0:1::1/64", "dev", "br0", "nodad");
      this.ip(lb, "link", "set", "br0", "up");
      if (this.router) {
        this.veth(rt, "eth0", lb, "lbrt");
        this.ip(lb, "link", "set", "lbrt", "master", "br0");
        this.ip(rt, "addr", "add", `${ROUTER}/24`, "dev", "eth0");
        this.ip(rt, "addr", "add", `${ROUTER6}/64`, "dev", "eth0", "nodad");
      }
      [rs1, rs2].forEach((n, i) => {
        this.veth(n, "eth0", lb, `lbr${i + 1}`);
        this.ip(lb, "link", "set", `lbr${i + 1}`, "master", "br0");
        this.ip(n, "addr", "add", `${RS[i]}/24`, "dev", "eth0");
        this.ip(n, "route", "add", "default", "via", this.router ? ROUTER : LB_RS);
        this.ip(n, "addr", "add", `${RS6[i]}/64`, "dev", "eth0", "nodad");
        this.ip(n, "-6", "route", "add", "default", "via", this.router ? ROUTER6 : "2001:2:0:1::1");
      });
      return this;
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  destroy(): void {
    deleteNamespaces(this.made);
    this.made = [];
  }
}

/**
 * The direct-routing topology: client, real servers and tslb's TAP on one Ethernet
 * segment (a bridge in the balancer's namespace), as IPVS DR needs.
 *   cl 198.18.4.2, rs1 198.18.4.11, rs2 198.18.4.12, all on bridge "br-dr" in lb;
 *   the real servers carry the VIP 198.18.4.100/32 on lo with arp_ignore=1, arp_announce=2.
 *   IPv6 alongside: cl 2001:2:0:4::2, rs 2001:2:0:4::11 and ::12, VIP6 2001:2:0:4::100/128 on lo
 *   (Linux answers neighbour solicitations only for addresses of the receiving interface).
 */
export const DR_VIP = "198.18.4.100";
export const DR_RS = ["198.18.4.11", "198.18.4.12"];
export const DR_CL = "198.18.4.2";
export const DR_VIP6 = "2001:2:0:4::100";
export const DR_RS6 = ["2001:2:0:4::11", "2001:2:0:4::12"];
export const DR_CL6 = "2001:2:0:4::2";

/**
 * A direct-routing real server in namespace `ns`: the VIPs on lo, and its eth0 neither
 * answering nor announcing ARP for them (arp_ignore=1, arp_announce=2); rp_filter off for
 * the client's packets.
 */
export function vipOnLo(ns: string, vip: string, vip6: string): void {
  sh(["ip", "-n", ns, "addr", "add", `${vip}/32`, "dev", "lo"]);
  sh(["ip", "-n", ns, "addr", "add", `${vip6}/128`, "dev", "lo"]);
  for (const k of ["all.arp_ignore=1", "all.arp_announce=2", "eth0.arp_ignore=1", "eth0.arp_announce=2", "all.rp_filter=0", "eth0.rp_filter=0"]) {
    sh(["ip", "netns", "exec", ns, "sysctl", "-qw", `net.ipv4.conf.${k}`]);
  }
}

export class DrTopology {
  readonly ns: { lb: string; cl: string; rs1: string; rs2: string };
  readonly bridge = "br-dr";
  private made: string[] = [];
  private readonly t: Topology;

  constructor(tag: string) {
    const p = `tslb-${tag}-${process.pid}`;
    this.ns = { lb: `${p}-lb`, cl: `${p}-cl`, rs1: `${p}-rs1`, rs2: `${p}-rs2` };
    this.t = new Topology(tag);
  }
  ip(ns: string, ...args: string[]): string { return this.t.ip(ns, ...args); }
  exec(ns: string, argv: string[], allowFail = false, timeoutSec = 30) { return this.t.exec(ns, argv, allowFail, timeoutSec); }

  up(): this {
    const { lb, cl, rs1, rs2 } = this.ns;
    process.once("exit", () => this.destroy());
    try {
      for (const n of [lb, cl, rs1, rs2]) {
        sh(["ip", "netns", "add", n]);
        this.made.push(n);
        this.ip(n, "link", "set", "lo", "up");
        this.t.sysctl(n, "net.ipv6.conf.default.accept_dad=0");
        this.t.sysctl(n, "net.ipv6.conf.all.accept_dad=0");
      }
      this.ip(lb, "link", "add", this.bridge, "type", "bridge");
      this.ip(lb, "link", "set", this.bridge, "up");
      const hosts: [string, string, string, string][] = [[cl, DR_CL, DR_CL6, "lbc"], [rs1, DR_RS[0], DR_RS6[0], "lbr1"], [rs2, DR_RS[1], DR_RS6[1], "lbr2"]];
      for (const [n, addr, addr6, port] of hosts) {
        sh(["ip", "link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", port, "netns", lb]);
        this.ip(lb, "link", "set", port, "master", this.bridge);
        this.ip(lb, "link", "set", port, "up");
        this.ip(n, "addr", "add", `${addr}/24`, "dev", "eth0");
        this.ip(n, "addr", "add", `${addr6}/64`, "dev", "eth0", "nodad");
        this.ip(n, "link", "set", "eth0", "up");
      }
      for (const n of [rs1, rs2]) vipOnLo(n, DR_VIP, DR_VIP6);
      return this;
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  destroy(): void {
    deleteNamespaces(this.made);
    this.made = [];
  }
}
