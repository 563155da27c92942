// The end-to-end bench topology (perf-anchors §1 topo.sh, in TypeScript): four namespaces,
// every address from 198.18.0.0/15, nothing in the root namespace (veths are created
// straight into their namespaces), and destroy() deletes them all.
//
//   cl  veth-cl 198.18.0.2/24 ── veth-lbc 198.18.0.1/24  lb (ip_forward=1, rp_filter=0)
//                                                         br-rs 198.18.1.1/24 ── veth-lb1 ── veth-rs1 198.18.1.11 (rs1, nginx :80)
//                                                                             └─ veth-lb2 ── veth-rs2 198.18.1.12 (rs2, nginx :80)
//   VIP 198.18.0.100:80; cl routes 198.18.0.100/32 and 198.18.1.0/24 via 198.18.0.1; rs default via 198.18.1.1.
//
// Namespaces are named tslbbench-<pid>-<host>, apart from the test suite's tslb-<tag>-<pid>-*.
// The real servers' nginx listens on every address (not only its own, as topo.sh did) so
// that direct routing and tunnelling, which deliver to the VIP on lo, reach it too.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deleteNamespaces, sh } from "../../scripts/topology.ts";
import { type Proc, spawnBounded } from "./proc.ts";

export const VIP = "198.18.0.100";
export const LB_CL = "198.18.0.1";
export const CL = "198.18.0.2";
export const LB_RS = "198.18.1.1";
export const RS = ["198.18.1.11", "198.18.1.12"] as const;
export const BRIDGE = "br-rs";
export const RS_DEV = ["veth-rs1", "veth-rs2"] as const;
/** UDP port of the pps flood; the real servers count and drop it at netdev ingress. */
export const FLOOD_PORT = 9;
export const BIG_BYTES = 20 * 1024 * 1024;

export type Host = "cl" | "lb" | "rs1" | "rs2";

export class BenchTopology {
  readonly ns: Record<Host, string>;
  private made: string[] = [];
  private nginx: Proc[] = [];
  /** Whether the rs namespaces got the nft ingress sink (else pps counts interface rx). */
  sink = false;

  constructor(private readonly dir: string, private readonly logDir: string) {
    const p = `tslbbench-${process.pid}`;
    this.ns = { cl: `${p}-cl`, lb: `${p}-lb`, rs1: `${p}-rs1`, rs2: `${p}-rs2` };
  }

  ip(h: Host, ...args: string[]): string {
    return sh(["ip", "-n", this.ns[h], ...args]).out;
  }
  /** `ip ...` that may fail (deleting what may not be there). */
  ipMaybe(h: Host, ...args: string[]): void {
    sh(["ip", "-n", this.ns[h], ...args], true);
  }
  exec(h: Host, argv: string[], allowFail = false) {
    return sh(["timeout", "30", "ip", "netns", "exec", this.ns[h], ...argv], allowFail);
  }
  sysctl(h: Host, ...kv: string[]): void {
    sh(["ip", "netns", "exec", this.ns[h], "sysctl", "-qw", ...kv]);
  }

  private veth(a: Host, aIf: string, b: Host, bIf: string): void {
    sh(["ip", "link", "add", aIf, "netns", this.ns[a], "type", "veth", "peer", "name", bIf, "netns", this.ns[b]]);
  }

  up(): void {
    for (const h of ["cl", "lb", "rs1", "rs2"] as Host[]) {
      sh(["ip", "netns", "add", this.ns[h]]);
      this.made.push(this.ns[h]);
      this.ip(h, "link", "set", "lo", "up");
    }
    this.veth("cl", "veth-cl", "lb", "veth-lbc");
    this.ip("cl", "addr", "add", `${CL}/24`, "dev", "veth-cl");
    this.ip("cl", "link", "set", "veth-cl", "up");
    this.ip("lb", "addr", "add", `${LB_CL}/24`, "dev", "veth-lbc");
    this.ip("lb", "link", "set", "veth-lbc", "up");
    this.ip("cl", "route", "add", `${VIP}/32`, "via", LB_CL);
    this.ip("cl", "route", "add", "198.18.1.0/24", "via", LB_CL);
    // A fixed MAC: a bridge without one takes the lowest MAC of its ports, so tslb's DR TAP
    // (random MAC) joining or leaving would change it, and the real servers' ARP entry for
    // their gateway would point at a MAC nobody owns until it expires (~30 s of lost replies).
    this.ip("lb", "link", "add", BRIDGE, "address", "02:00:c6:12:01:01", "type", "bridge");
    this.ip("lb", "addr", "add", `${LB_RS}/24`, "dev", BRIDGE);
    this.ip("lb", "link", "set", BRIDGE, "up");
    for (const i of [0, 1]) {
      const rs: Host = i ? "rs2" : "rs1";
      this.veth("lb", `veth-lb${i + 1}`, rs, RS_DEV[i]);
      this.ip("lb", "link", "set", `veth-lb${i + 1}`, "master", BRIDGE);
      this.ip("lb", "link", "set", `veth-lb${i + 1}`, "up");
      this.ip(rs, "addr", "add", `${RS[i]}/24`, "dev", RS_DEV[i]);
      this.ip(rs, "link", "set", RS_DEV[i], "up");
      this.ip(rs, "route", "add", "default", "via", LB_RS);
    }
    this.sysctl("lb", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.accept_local=1");
    for (const k of ["all", "default", "veth-lbc", BRIDGE]) this.sysctl("lb", `net.ipv4.conf.${k}.rp_filter=0`);
    for (const h of ["cl", "lb", "rs1", "rs2"] as Host[]) {
      this.sysctl(h, "net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535",
        "net.ipv4.ip_local_port_range=10000 65000", "net.ipv4.tcp_tw_reuse=1");
    }
  }

  /**
   * Direct routing and tunnelling: the real servers carry the VIP on lo and must not answer
   * ARP for it (arp_ignore=1, arp_announce=2); rp_filter off for the client's packets.
   */
  vipOnRealServers(on: boolean): void {
    for (const h of ["rs1", "rs2"] as Host[]) {
      if (on) {
        this.sysctl(h, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.all.rp_filter=0");
        this.ip(h, "addr", "replace", `${VIP}/32`, "dev", "lo");
      } else {
        this.ipMaybe(h, "addr", "del", `${VIP}/32`, "dev", "lo");
      }
    }
  }

  /** nginx on both real servers: 1 worker, no access log, a 24-byte index and a 20 MB /big.bin. */
  async startRealServers(limitSec: number): Promise<void> {
    const www = join(this.dir, "www");
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, "index.html"), "hello from tslb perf rs\n");
    const big = new Uint8Array(BIG_BYTES);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    writeFileSync(join(www, "big.bin"), big);
    for (const i of [0, 1]) {
      const d = join(this.dir, `rs${i + 1}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, "nginx.conf"), realServerConf(d, www));
      this.nginx.push(spawnBounded(["ip", "netns", "exec", this.ns[i ? "rs2" : "rs1"], "nginx", "-p", d, "-e", join(d, "error.log"),
        "-c", join(d, "nginx.conf")], limitSec, join(this.logDir, `nginx-rs${i + 1}.log`)));
    }
    for (const i of [0, 1]) await waitTcp(this, "cl", RS[i], 80, this.nginx[i]);
  }

  /** The pids (tree roots) of the real servers' nginx. */
  realServerPids(): number[] {
    return this.nginx.map((p) => p.pid);
  }

  /** A netdev ingress counter that drops the flood on each real server's interface. */
  addSinks(): void {
    for (const i of [0, 1]) {
      const h: Host = i ? "rs2" : "rs1";
      const rules = `table netdev tslbbench_sink {
  chain ingress {
    type filter hook ingress device "${RS_DEV[i]}" priority 0; policy accept;
    udp dport ${FLOOD_PORT} counter drop
  }
}
`;
      const p = Bun.spawnSync(["timeout", "10", "ip", "netns", "exec", this.ns[h], "nft", "-f", "-"], { stdin: new TextEncoder().encode(rules), stderr: "pipe" });
      if (p.exitCode !== 0) {
        console.log(`  (nft netdev sink unavailable: ${p.stderr.toString().trim()}; pps counts rx_packets of the rs interfaces)`);
        return;
      }
    }
    this.sink = true;
  }

  /**
   * Datagrams of `ipLen` bytes (IPv4 UDP) that reached the real servers: from the sink's
   * counters, or the interfaces' rx_packets. A forwarder that coalesces (tslb --coalesce)
   * delivers several datagrams in one UDP GSO packet of 28 + k·(ipLen − 28) bytes, which
   * the counter sees once: datagrams = (bytes − 28·packets) / (ipLen − 28) counts both.
   */
  received(ipLen: number): number {
    let n = 0;
    for (const i of [0, 1]) {
      const h: Host = i ? "rs2" : "rs1";
      if (this.sink) {
        const out = this.exec(h, ["nft", "list", "table", "netdev", "tslbbench_sink"]).out;
        const m = /packets (\d+) bytes (\d+)/.exec(out);
        if (m) n += Math.round((Number(m[2]) - 28 * Number(m[1])) / (ipLen - 28));
      } else {
        n += Number(this.exec(h, ["cat", `/sys/class/net/${RS_DEV[i]}/statistics/rx_packets`]).out.trim());
      }
    }
    return n;
  }

  destroy(): void {
    deleteNamespaces(this.made);
    this.made = [];
  }
}

function realServerConf(d: string, www: string): string {
  return `daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 9000; multi_accept on; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  sendfile on; tcp_nopush off; tcp_nodelay on;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  server { listen 80 backlog=65535; root ${www}; location / { } }
}
`;
}

/** Waits until addr:port accepts a TCP connection from host `from` (bash /dev/tcp, 5 s at most). */
export async function waitTcp(t: BenchTopology, from: Host, addr: string, port: number, p?: Proc): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = Bun.spawnSync(["timeout", "2", "ip", "netns", "exec", t.ns[from], "bash", "-c", `exec 3<>/dev/tcp/${addr}/${port}`]);
    if (r.exitCode === 0) return;
    if (p && p.exitCode !== null) throw new Error(`the server for ${addr}:${port} exited (${p.exitCode})`);
    await Bun.sleep(50);
  }
  throw new Error(`${addr}:${port} does not answer from ${from}`);
}
