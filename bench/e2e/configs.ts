// The balancer configurations of the end-to-end bench and how each one is put in place
// on the BenchTopology and taken away again. Every configuration serves the same VIP
// (198.18.0.100:80, UDP :9 for the pps flood) over the same two nginx real servers,
// except `direct`, where the client talks to rs1 through plain kernel forwarding.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isRunning } from "../../src/control/client.ts";
import { EMPTY_DIR, type Run } from "../../test/helpers/tslb.ts";
import { type Proc, spawnBounded, stop } from "./proc.ts";
import { BRIDGE, type BenchTopology, FLOOD_PORT, type Host, RS, RS_DEV, VIP, waitTcp } from "./topo.ts";

export type Kind = "direct" | "haproxy" | "nginx" | "tslb" | "ctun" | "cxdp";

export interface Config {
  name: string;
  kind: Kind;
  /** One line for the header of the output. */
  what: string;
  /** haproxy: nbthread. */
  threads?: number;
  /** tslb: forwarding method of the real servers, and extra daemon flags. */
  fwd?: "-m" | "-g" | "-i";
  flags?: string[];
  /** C forwarder: IFF_VNET_HDR + TUNSETOFFLOAD. */
  vnet?: boolean;
  /** Part of the forwarded-pps test. */
  pps?: boolean;
  /** Part of a QUICK=1 smoke run when ONLY is not given. */
  quick?: boolean;
}

/** Every configuration, in the order of the output table. */
export const CONFIGS: Config[] = [
  { name: "direct", kind: "direct", what: "client -> rs1 by kernel forwarding in lb (no balancer)", pps: true, quick: true },
  { name: "haproxy1", kind: "haproxy", threads: 1, what: "HAProxy mode tcp, nbthread 1, VIP on lb's lo", quick: true },
  { name: "haproxy2", kind: "haproxy", threads: 2, what: "HAProxy mode tcp, nbthread 2" },
  { name: "nginx-stream", kind: "nginx", what: "nginx stream proxy, 1 worker" },
  { name: "tslb-nat", kind: "tslb", fwd: "-m", flags: [], what: "tslb NAT (-m), daemon defaults", pps: true, quick: true },
  { name: "tslb-nat-nooffload", kind: "tslb", fwd: "-m", flags: ["--offload", "off"], what: "tslb NAT, --offload off (no IFF_VNET_HDR)", pps: true },
  { name: "tslb-nat-w1", kind: "tslb", fwd: "-m", flags: ["--workers", "1"], what: "tslb NAT, --workers 1", pps: true },
  { name: "tslb-nat-w2", kind: "tslb", fwd: "-m", flags: ["--workers", "2"], what: "tslb NAT, --workers 2 (multi-queue)", pps: true },
  { name: "tslb-nat-nocoalesce", kind: "tslb", fwd: "-m", flags: ["--coalesce", "off"], what: "tslb NAT, --coalesce off (every datagram and segment its own write)", pps: true },
  { name: "tslb-nat-xdp", kind: "tslb", fwd: "-m", flags: ["--xdp", "veth-lbc,veth-lb1,veth-lb2"], what: "tslb NAT, --xdp on the client side and the bridge ports toward the real servers (AF_XDP hand-off, generic XDP)", pps: true },
  { name: "tslb-nat-xdp-br", kind: "tslb", fwd: "-m", flags: ["--xdp", "veth-lbc,br-rs"], what: "tslb NAT, --xdp on the client side and on the bridge toward the real servers (its ports get only the bulk offload's tc program, so a transfer's frames leave from the port before the bridge and its XDP copy)", pps: false },
  { name: "tslb-nat-xdp-nobulk", kind: "tslb", fwd: "-m", flags: ["--xdp", "veth-lbc,veth-lb1,veth-lb2", "--bulk-offload", "off"], what: "tslb NAT, --xdp with --bulk-offload off (bulk frames through the TUN instead of the kernel's tc rewrite)", pps: false },
  { name: "tslb-nat-xdp-nojoin", kind: "tslb", fwd: "-m", flags: ["--xdp", "veth-lbc,veth-lb1,veth-lb2", "--xdp-join", "off"], what: "tslb NAT, --xdp with --xdp-join off (the hand-off does not join small segments)", pps: false },
  { name: "tslb-nat-xdp-nocoalesce", kind: "tslb", fwd: "-m", flags: ["--xdp", "veth-lbc,veth-lb1,veth-lb2", "--coalesce", "off"], what: "tslb NAT, --xdp with --coalesce off (no segment joining on either path)", pps: false },
  { name: "tslb-nat-xdp-native", kind: "tslb", fwd: "-m", flags: ["--xdp", "veth-lbc,veth-lb1,veth-lb2", "--xdp-mode", "native"], what: "tslb NAT, --xdp with --xdp-mode native (the veths then stop their peers' TSO)", pps: true },
  { name: "tslb-nat-norps", kind: "tslb", fwd: "-m", flags: ["--rps", "off"], what: "tslb NAT, --rps off (the kernel's work on tslb's writes stays on the worker's CPU)", pps: true },
  { name: "tslb-dr", kind: "tslb", fwd: "-g", flags: [], what: "tslb direct routing (-g): TAP on br-rs, VIP on the real servers' lo, lb routes VIP/32 to br-rs" },
  { name: "tslb-dr-xdp", kind: "tslb", fwd: "-g", flags: ["--xdp", "veth-lbc,veth-lb1,veth-lb2"], what: "tslb direct routing, --xdp on both sides: the client's frames reach tslb by AF_XDP and leave by the server's port; lb is the servers' router, so their replies cross it, and tslb routes them on (--xdp-forward)" },
  { name: "tslb-dr-xdp-nojoin", kind: "tslb", fwd: "-g", flags: ["--xdp", "veth-lbc,veth-lb1,veth-lb2", "--xdp-join", "off"], what: "tslb direct routing, --xdp on both sides with --xdp-join off (the hand-off does not join small segments)", pps: false },
  { name: "tslb-dr-xdp-client", kind: "tslb", fwd: "-g", flags: ["--xdp", "veth-lbc"], what: "tslb direct routing, --xdp on the client side only: the client's frames reach tslb by AF_XDP and leave through the TAP; the replies take lb's bridge and routing" },
  { name: "tslb-ipip", kind: "tslb", fwd: "-i", flags: [], what: "tslb IPIP (-i): real servers run tslb --decap with the VIP on lo" },
  { name: "c-tun", kind: "ctun", vnet: false, what: "bench/c/tunnat.c: C TUN NAT, one queue, blocking read/write", pps: true, quick: true },
  { name: "c-xdp", kind: "cxdp", what: "bench/c/xdpnat.c: C NAT on AF_XDP sockets (copy mode), XDP on the balancer's three interfaces", pps: true },
  { name: "c-tun-vnet", kind: "ctun", vnet: true, what: "bench/c/tunnat.c with IFF_VNET_HDR + TUNSETOFFLOAD(CSUM|TSO4|TSO6)", pps: true },
];

/** What a running configuration offers the measurements. */
export interface Running {
  /** Where the client sends (the VIP, or rs1 for direct). */
  target: string;
  /** Process trees whose CPU is the balancer's (empty: none, the kernel forwards). */
  lb: Proc[];
  /** Helpers on the real servers (tslb --decap), counted apart. */
  helpers: Proc[];
  stop(): Promise<void>;
}

export interface Ctx {
  topo: BenchTopology;
  dir: string;
  logDir: string;
  /** The compiled C forwarder (null: no cc, the c-* rows are skipped). */
  tunnat: string | null;
  /** The compiled AF_XDP forwarder (null: no cc). */
  xdpnat: string | null;
  /** Pin the forwarder to this CPU (pps test), or not at all. */
  pinCpu: string | null;
  /** Upper bound in seconds for any process of one measurement. */
  limitSec: number;
  /** tslb binary: a copy of build/tslb taken at the start, so a rebuild mid-sitting changes nothing. */
  bin: string;
}

/** Raised when a configuration cannot run here; the row is skipped with the message. */
export class Skip extends Error {}

const PATH_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };

/**
 * `tslb args` in lb, as test/helpers/tslb.ts's tslb() runs it (empty cwd, minimal
 * environment, 30 s bound) but with the sitting's copy of the binary.
 */
function cli(ctx: Ctx, socket: string, args: string[], stdin?: string): Run {
  const r = Bun.spawnSync(["timeout", "30", "ip", "netns", "exec", ctx.topo.ns.lb, ctx.bin, ...args], {
    cwd: EMPTY_DIR, env: { ...PATH_ENV, TSLB_SOCKET: socket }, stdin: stdin !== undefined ? new TextEncoder().encode(stdin) : "ignore",
  });
  return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exitCode ?? -1 };
}

export async function start(c: Config, ctx: Ctx): Promise<Running> {
  switch (c.kind) {
    case "direct": return { target: RS[0], lb: [], helpers: [], stop: async () => {} };
    case "haproxy": return startProxy(ctx, `haproxy${c.threads}`, ["haproxy", "-db", "-f", writeConf(ctx, "haproxy.cfg", haproxyConf(c.threads ?? 1))]);
    case "nginx": return startProxy(ctx, "nginx-stream", ["nginx", "-p", ctx.dir, "-e", join(ctx.logDir, "nginx-stream.err"),
      "-c", writeConf(ctx, "nginx-stream.conf", nginxStreamConf(ctx.dir))]);
    case "tslb": return startTslb(c, ctx);
    case "ctun": return startCTun(c, ctx);
    case "cxdp": return startCXdp(c, ctx);
  }
}

function writeConf(ctx: Ctx, name: string, text: string): string {
  const p = join(ctx.dir, name);
  writeFileSync(p, text);
  return p;
}

function pin(ctx: Ctx): string[] {
  return ctx.pinCpu === null ? [] : ["taskset", "-c", ctx.pinCpu];
}

/** HAProxy / nginx stream: a user-space proxy bound to the VIP on lb's lo. */
async function startProxy(ctx: Ctx, name: string, cmd: string[]): Promise<Running> {
  const { topo } = ctx;
  topo.ip("lb", "addr", "add", `${VIP}/32`, "dev", "lo");
  const p = spawnBounded(["ip", "netns", "exec", topo.ns.lb, ...pin(ctx), ...cmd], ctx.limitSec, join(ctx.logDir, `${name}.log`));
  const down = async () => {
    await stop(p);
    topo.ipMaybe("lb", "addr", "del", `${VIP}/32`, "dev", "lo");
    // The proxy leaves lb with thousands of TIME_WAIT sockets VIP:80 <-> client ports. A
    // later configuration's SYN that reuses one of those ports would be early-demuxed to
    // the socket and then dropped by ip_forward (skb->sk set): kill them all.
    topo.exec("lb", ["sh", "-c", "ss -K -tan >/dev/null"], true);
  };
  try {
    await waitTcp(topo, "cl", VIP, 80, p);
  } catch (e) {
    await down();
    throw e;
  }
  return { target: VIP, lb: [p], helpers: [], stop: down };
}

function haproxyConf(threads: number): string {
  return `global
  nbthread ${threads}
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind ${VIP}:80
  default_backend be
backend be
  balance roundrobin
  server rs1 ${RS[0]}:80
  server rs2 ${RS[1]}:80
`;
}

function nginxStreamConf(dir: string): string {
  return `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/nginx-stream.pid;
events { worker_connections 9000; multi_accept on; }
stream {
  upstream be { server ${RS[0]}:80; server ${RS[1]}:80; }
  server { listen ${VIP}:80 backlog=65535; proxy_pass be; }
}
`;
}

/** tslb rules for one forwarding method: TCP VIP:80 over both servers, rr (NAT: UDP :9 too). */
function tslbRules(fwd: string): string {
  const port = fwd === "-m" ? ":80" : ""; // DR and tunnels cannot map ports
  let r = `-A -t ${VIP}:80 -s rr\n` + RS.map((rs) => `-a -t ${VIP}:80 -r ${rs}${port} ${fwd}\n`).join("");
  if (fwd === "-m") r += `-A -u ${VIP}:${FLOOD_PORT} -s rr\n` + RS.map((rs) => `-a -u ${VIP}:${FLOOD_PORT} -r ${rs}:${FLOOD_PORT} -m\n`).join("");
  return r;
}

const flagCache = new Map<string, string>();

/**
 * Whether build/tslb knows these daemon flags: its option parser takes them off the
 * command line before ipvsadm's, so `-L -n FLAGS` (no daemon: an empty listing) exits 0
 * when they are known and fails with "unknown option" when not. "" = accepted.
 */
export function flagsProblem(ctx: Ctx, flags: string[]): string {
  if (flags.length === 0) return "";
  const key = flags.join(" ");
  if (!flagCache.has(key)) {
    const r = cli(ctx, join(ctx.dir, "probe", "none.sock"), ["-L", "-n", ...flags]);
    flagCache.set(key, r.code === 0 ? "" : `build/tslb does not accept ${key} yet (${(r.err || r.out).trim().split("\n")[0]})`);
  }
  return flagCache.get(key)!;
}

async function startTslb(c: Config, ctx: Ctx): Promise<Running> {
  const problem = flagsProblem(ctx, c.flags ?? []);
  if (problem) throw new Skip(problem);
  const { topo } = ctx;
  const fwd = c.fwd ?? "-m";
  const socket = join(ctx.dir, "tslb", "tslb.sock");
  const log = join(ctx.logDir, `${c.name}.daemon.log`);
  const helpers: Proc[] = [];
  if (fwd !== "-m") topo.vipOnRealServers(true);
  const down = async (daemon?: Proc) => {
    if (daemon) {
      cli(ctx, socket, ["--shutdown"]);
      await stop(daemon);
    }
    for (const h of helpers) await stop(h);
    if (fwd === "-g") {
      topo.ipMaybe("lb", "route", "del", `${VIP}/32`, "dev", BRIDGE);
      topo.ipMaybe("lb", "neigh", "flush", "to", VIP);
    }
    if (fwd !== "-m") topo.vipOnRealServers(false);
  };
  let daemon: Proc | undefined;
  try {
    if (fwd === "-i") for (const h of ["rs1", "rs2"] as Host[]) helpers.push(await startDecap(ctx, h));
    const args = ["--daemon", "--foreground", "--socket", socket, ...(fwd === "-g" ? ["--bridge", BRIDGE] : []), ...(c.flags ?? [])];
    daemon = spawnBounded(["ip", "netns", "exec", topo.ns.lb, ...pin(ctx), ctx.bin, ...args], ctx.limitSec, log, { cwd: EMPTY_DIR, env: PATH_ENV });
    await waitDaemon(daemon, socket, log);
    const r = cli(ctx, socket, ["-R"], tslbRules(fwd));
    if (r.code !== 0) throw new Error(`tslb -R: ${r.err.trim()}`);
    if (fwd === "-g") {
      // lb is the router in front of the DR segment: the VIP is on br-rs, where tslb's TAP answers ARP for it.
      topo.ipMaybe("lb", "neigh", "flush", "to", VIP);
      topo.ip("lb", "route", "replace", `${VIP}/32`, "dev", BRIDGE);
    }
    await waitTcp(topo, "cl", VIP, 80, daemon);
  } catch (e) {
    await down(daemon);
    throw e;
  }
  const d = daemon;
  return { target: VIP, lb: [d], helpers, stop: () => down(d) };
}

/** Waits until the daemon answers its socket; a daemon that exits first is reported with its log. */
async function waitDaemon(p: Proc, socket: string, log: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (p.exitCode !== null) throw new Error(`tslb daemon exited (${p.exitCode}): ${tail(log)}`);
    if (await isRunning(socket)) return;
    await Bun.sleep(50);
  }
  throw new Error(`tslb daemon did not answer on ${socket} within 15 s: ${tail(log)}`);
}

function tail(log: string): string {
  return existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").slice(-3).join(" | ") : "(no log)";
}

/** `tslb --decap --foreground --vip VIP` on a real server, ready when it says so. */
async function startDecap(ctx: Ctx, h: Host): Promise<Proc> {
  const log = join(ctx.logDir, `decap-${h}.log`);
  const before = existsSync(log) ? readFileSync(log, "utf8").length : 0;
  const p = spawnBounded(["ip", "netns", "exec", ctx.topo.ns[h], ctx.bin, "--decap", "--foreground", "--vip", VIP], ctx.limitSec, log,
    { cwd: EMPTY_DIR, env: PATH_ENV });
  for (let i = 0; i < 100; i++) {
    if (existsSync(log) && /ready/.test(readFileSync(log, "utf8").slice(before))) return p;
    if (p.exitCode !== null) throw new Error(`tslb --decap in ${h} exited (${p.exitCode}): ${tail(log)}`);
    await Bun.sleep(50);
  }
  await stop(p);
  throw new Error(`tslb --decap in ${h} not ready within 5 s: ${tail(log)}`);
}

/**
 * The C forwarder on a persistent TUN tslb0 in lb, routed as perf-anchors' "tun" mode:
 * VIP/32 into the TUN, and everything arriving from br-rs (the replies) through table 100
 * into the TUN as well; what the forwarder writes back is routed normally.
 */
/** The MAC address of `dev` in host `h`. */
function macOf(topo: BenchTopology, h: Host, dev: string): string {
  const m = /link\/ether ([0-9a-f:]{17})/.exec(topo.ip(h, "link", "show", dev));
  if (!m) throw new Error(`no MAC for ${dev} in ${h}`);
  return m[1];
}

/** One of the C forwarders (argv) in lb, once it has logged `word` and the VIP answers. */
async function startForwarder(c: Config, ctx: Ctx, argv: string[], word: string): Promise<Proc> {
  const log = join(ctx.logDir, `${c.name}.log`);
  const before = existsSync(log) ? readFileSync(log, "utf8").length : 0;
  const p = spawnBounded(["ip", "netns", "exec", ctx.topo.ns.lb, ...pin(ctx), ...argv], ctx.limitSec, log);
  try {
    for (let i = 0; !(existsSync(log) && readFileSync(log, "utf8").slice(before).includes(word)); i++) {
      if (p.exitCode !== null || i === 100) throw new Error(`${argv[0]} did not start: ${tail(log)}`);
      await Bun.sleep(20);
    }
    await waitTcp(ctx.topo, "cl", VIP, 80, p);
  } catch (e) {
    await stop(p);
    throw e;
  }
  return p;
}

/**
 * bench/c/xdpnat.c in lb: XDP programs on veth-lbc and the two bridge ports steal the
 * VIP's packets and the real servers' replies into AF_XDP sockets; nothing is routed
 * through lb's stack. The real servers' ARP for their gateway and the client's for lb
 * still go to the kernel.
 */
async function startCXdp(c: Config, ctx: Ctx): Promise<Running> {
  if (!ctx.xdpnat) throw new Skip("no C compiler (cc): the C forwarder was not built");
  const { topo } = ctx;
  let p: Proc | undefined;
  const down = async () => {
    if (p) await stop(p);
  };
  try {
    const macs = [macOf(topo, "cl", "veth-cl"), macOf(topo, "rs1", RS_DEV[0]), macOf(topo, "rs2", RS_DEV[1]), macOf(topo, "lb", BRIDGE)];
    const argv = [ctx.xdpnat, "veth-lbc", "veth-lb1", "veth-lb2", VIP, RS[0], RS[1], "80", ...macs];
    // Started right after its own previous run (the second pass walks the configurations
    // backwards), its bind can find the last run's sockets still being released (EBUSY).
    for (let attempt = 1; ; attempt++) {
      try {
        p = await startForwarder(c, ctx, argv, "forwarding");
        break;
      } catch (e) {
        if (attempt === 5 || !String(e).includes("resource busy")) throw e;
        await Bun.sleep(500);
      }
    }
  } catch (e) {
    await down();
    throw e;
  }
  return { target: VIP, lb: [p], helpers: [], stop: down };
}

async function startCTun(c: Config, ctx: Ctx): Promise<Running> {
  if (!ctx.tunnat) throw new Skip("no C compiler (cc): the C forwarder was not built");
  const { topo } = ctx;
  const teardown = () => {
    topo.ipMaybe("lb", "rule", "del", "iif", BRIDGE, "lookup", "100");
    topo.ipMaybe("lb", "route", "flush", "table", "100");
    topo.ipMaybe("lb", "link", "del", "tslb0");
  };
  let p: Proc | undefined;
  const down = async () => {
    if (p) await stop(p);
    teardown();
  };
  try {
    topo.ip("lb", "tuntap", "add", "dev", "tslb0", "mode", "tun", ...(c.vnet ? ["vnet_hdr"] : []));
    topo.ip("lb", "link", "set", "tslb0", "up", "txqueuelen", "10000");
    topo.sysctl("lb", "net.ipv4.conf.tslb0.rp_filter=0");
    topo.ip("lb", "route", "add", `${VIP}/32`, "dev", "tslb0");
    topo.ip("lb", "route", "add", "default", "dev", "tslb0", "table", "100");
    topo.ip("lb", "rule", "add", "iif", BRIDGE, "lookup", "100");
    p = await startForwarder(c, ctx, [ctx.tunnat, "tslb0", VIP, RS[0], RS[1], c.vnet ? "1" : "0"], "ready");
  } catch (e) {
    await down();
    throw e;
  }
  return { target: VIP, lb: [p], helpers: [], stop: down };
}
