// `tslb --decap`: the real-server side of tunnel mode for hosts without the kernel's
// ipip / sit / ip6_tunnel / gre / fou modules. Raw sockets take IPIP (4), IPv6-in-IP (41)
// and GRE (47) packets (IPv4 and IPv6 outer headers), UDP sockets take GUE on the given
// ports; each inner packet addressed to a VIP is written into a local TUN, so the stack
// receives it as if it had arrived on that interface and the server bound to the VIP on
// `lo` answers the client directly.
//
// Shape: one thread. poll() on every socket (and on an address-change netlink socket when
// the VIPs follow `lo`), up to BATCH datagrams per socket, then setImmediate so signal
// handlers run; datagrams are read into one buffer and the inner packet is written from
// where it lies (no copy). The per-packet path allocates nothing (test/decap/decap.ts).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { selfCommand } from "../control/client.ts";
import { EAFNOSUPPORT, EPROTONOSUPPORT, SysError, getpid } from "../io/libc.ts";
import { Poller } from "../io/poller.ts";
import { IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, type Sock, openRaw, openUdp } from "../io/raw.ts";
import { RtNetlink } from "../io/rtnetlink.ts";
import { sysctlRead, sysctlWrite } from "../io/sysctl.ts";
import { type TunDevice, openTun } from "../io/tun.ts";
import { formatIPv4, formatIPv6 } from "../wire/addr.ts";
import { DECAP_DROP, DECAP_DROP_COUNT, DECAP_DROP_NAMES, Decapper, PAYLOAD_GUE, VipSet } from "./decap.ts";
import { AddrWatch, localAddrs } from "./local_addrs.ts";
import { DECAP_USAGE, DecapOptionError, type DecapOptions, decapArgs, parseDecapOptions } from "./options.ts";

/** Datagrams taken from one socket before looking at the others (fairness, signal latency). */
const BATCH = 64;
/** Idle poll timeout; also the longest a signal waits when poll() is not interrupted. */
const POLL_MS = 250;
const START_TIMEOUT_MS = 10_000;
/** Largest datagram: an IPv4/IPv6 packet of 64 KiB. */
const BUF_LEN = 65536 + 64;

/** Receive sockets, in counter order: [name, family, protocol]. */
const KINDS: readonly (readonly [string, 4 | 6, number])[] = [
  ["ipip", 4, IPPROTO_IPIP], ["ipv6ip", 4, IPPROTO_IPV6], ["gre", 4, IPPROTO_GRE],
  ["ipip6", 6, IPPROTO_IPIP], ["ipv6ip6", 6, IPPROTO_IPV6], ["gre6", 6, IPPROTO_GRE],
];
const KIND_GUE = KINDS.length;
const KIND_NAMES: readonly string[] = [...KINDS.map((k) => k[0]), "gue"];

/** Received per socket kind, injected, dropped per DECAP_DROP reason. Single writer: the loop. */
export class DecapStats {
  readonly rx = new Float64Array(KIND_NAMES.length);
  readonly drops = new Float64Array(DECAP_DROP_COUNT);
  injected = 0;

  /** One line: totals, then received by kind and drops by reason (key=value, for scripts). */
  format(): string {
    let rx = 0;
    let dropped = 0;
    for (let i = 0; i < this.rx.length; i++) rx += this.rx[i];
    for (let i = 1; i < this.drops.length; i++) dropped += this.drops[i];
    const kinds = KIND_NAMES.map((n, i) => `${n}=${this.rx[i]}`).join(" ");
    const why = DECAP_DROP_NAMES.slice(1).map((n, i) => `${n}=${this.drops[i + 1]}`).join(" ");
    return `tslb decap: received ${rx}, injected ${this.injected}, dropped ${dropped} | rx ${kinds} | drop ${why}`;
  }
}

/** What one running decap holds; every field is set before the loop starts. */
class DecapHost {
  readonly buf = new Uint8Array(BUF_LEN);
  readonly stats = new DecapStats();
  private poller: Poller;
  private stopped = false;

  constructor(
    readonly opts: DecapOptions,
    readonly tun: TunDevice,
    readonly socks: Sock[],
    readonly kinds: Int32Array,
    readonly dc: Decapper,
    readonly watch: AddrWatch | null,
  ) {
    // Sockets first (index = socket index), then the TUN, then the address watch.
    const fds = socks.map((s) => s.fd);
    fds.push(tun.fd);
    if (watch) fds.push(watch.fd);
    this.poller = new Poller(fds);
  }

  /** One poll and up to BATCH datagrams per ready socket. Allocation-free unless the VIPs change. */
  step(timeoutMs: number): void {
    const ready = this.poller.wait(timeoutMs);
    if (ready <= 0) return;
    const socks = this.socks;
    const buf = this.buf;
    for (let i = 0; i < socks.length; i++) {
      if (!this.poller.readable(i)) continue;
      const s = socks[i];
      const kind = this.kinds[i];
      for (let k = 0; k < BATCH; k++) {
        const n = s.recv(buf, 0, BUF_LEN);
        if (n <= 0) break;
        this.packet(kind, n);
      }
    }
    // The kernel routes nothing into the TUN but its own IPv6 chatter (router
    // solicitations, MLD reports on the link-local address): read and discard it.
    if (this.poller.readable(socks.length)) {
      for (let k = 0; k < BATCH && this.tun.recv(buf, 0, BUF_LEN) > 0; k++);
    }
    if (this.watch && this.poller.readable(socks.length + 1) && this.watch.drain()) this.reloadVips();
  }

  private packet(kind: number, n: number): void {
    const st = this.stats;
    st.rx[kind] += 1;
    const dc = this.dc;
    let at: number;
    if (kind === KIND_GUE) at = dc.fromPayload(this.buf, 0, n, PAYLOAD_GUE, 0);
    else if (kind < 3) at = dc.fromIp4(this.buf, 0, n);
    else at = dc.fromPayload(this.buf, 0, n, KINDS[kind][2], 0);
    if (at < 0) {
      st.drops[-at] += 1;
      return;
    }
    if (this.tun.send(this.buf, at, dc.innerLen) < 0) st.drops[DECAP_DROP.TX_ERROR] += 1;
    else st.injected += 1;
  }

  /** Control plane: re-reads the addresses on lo after a netlink notification. */
  reloadVips(): void {
    try {
      const a = localAddrs("lo");
      this.dc.vips = new VipSet(a.v4, a.v6);
    } catch (e) {
      log(`cannot re-read the addresses on lo: ${(e as Error).message}`);
    }
  }

  run(): void {
    const loop = () => {
      if (this.stopped) return;
      this.step(POLL_MS);
      setImmediate(loop);
    };
    setImmediate(loop);
  }

  close(): void {
    this.stopped = true;
    for (const s of this.socks) s.close();
    this.watch?.close();
    this.tun.close();
  }
}

function log(msg: string): void {
  process.stdout.write(`tslb decap: ${msg}\n`);
}

/** Opens every receive socket it can; a family the host lacks is skipped with a note. */
function openSockets(o: DecapOptions): { socks: Sock[]; kinds: number[]; notes: string[] } {
  const socks: Sock[] = [];
  const kinds: number[] = [];
  const notes: string[] = [];
  try {
    for (let k = 0; k < KINDS.length; k++) {
      const [name, af, proto] = KINDS[k];
      try {
        socks.push(openRaw(af, proto));
        kinds.push(k);
      } catch (e) {
        if (af === 6 && e instanceof SysError && (e.errno === EAFNOSUPPORT || e.errno === EPROTONOSUPPORT)) {
          notes.push(`no IPv6 outer ${name}: ${e.message}`);
          continue;
        }
        throw e;
      }
    }
    for (const port of o.guePorts) {
      socks.push(openUdp(6, port));
      kinds.push(KIND_GUE);
    }
  } catch (e) {
    for (const s of socks) s.close();
    throw e;
  }
  return { socks, kinds, notes };
}

function vipText(v: VipSet): string {
  const t: string[] = [];
  for (let i = 0; i < v.v4.length; i++) t.push(formatIPv4(v.v4[i]));
  for (let i = 0; i < v.v6.length; i += 4) t.push(formatIPv6([v.v6[i], v.v6[i + 1], v.v6[i + 2], v.v6[i + 3]]));
  return t.length > 0 ? t.join(",") : "(none yet)";
}

/** Sets up and starts the loop in this process. Returns the host (tests stop it with close()). */
function startForeground(o: DecapOptions, writePid: boolean): DecapHost {
  const { socks, kinds, notes } = openSockets(o);
  let tun: TunDevice | null = null;
  let watch: AddrWatch | null = null;
  try {
    tun = openTun(o.tun, { multiQueue: false });
    const rt = RtNetlink.open();
    try {
      rt.linkSetUp(rt.linkIndex(tun.name));
    } finally {
      rt.close();
    }
    // No reverse-path filter on the TUN, as IPVS wants on tunl0: the client is routed via
    // the real NIC, so strict mode (1) drops every injected packet, and so does loose mode
    // (2) on a device without an IPv4 address (__fib_validate_source: no_addr -> e_rpf;
    // measured: TcpExtIPReversePathFilter). The kernel uses max(conf/all, conf/<dev>).
    sysctlWrite(`net/ipv4/conf/${tun.name}/rp_filter`, 0);
    const all = sysctlRead("net/ipv4/conf/all/rp_filter");
    if (all !== "0") {
      notes.push(`warning: net.ipv4.conf.all.rp_filter is ${all}: the kernel applies max(all, ${tun.name}), so ` +
        `injected IPv4 packets are dropped (TcpExtIPReversePathFilter); set it to 0, as for tunl0 with IPVS`);
    }
    let vips: VipSet;
    if (o.vipText.length > 0) {
      vips = new VipSet(o.vip4, o.vip6);
    } else {
      watch = AddrWatch.open(); // subscribe before reading, so no change falls in between
      const a = localAddrs("lo");
      vips = new VipSet(a.v4, a.v6);
    }
    const host = new DecapHost(o, tun, socks, Int32Array.from(kinds), new Decapper(vips), watch);
    if (writePid) writePidFile(o.pidFile);
    for (const n of notes) log(n);
    const guePart = o.guePorts.length > 0 ? `, gue ports ${o.guePorts.join(",")}` : "";
    log(`ready: tun ${tun.name}, raw ${kinds.filter((k) => k !== KIND_GUE).map((k) => KIND_NAMES[k]).join(",")}${guePart}, ` +
      `vips ${o.vipText.length > 0 ? vipText(vips) : `on lo (${vipText(vips)})`}`);
    return host;
  } catch (e) {
    for (const s of socks) s.close();
    watch?.close();
    tun?.close();
    throw e;
  }
}

function writePidFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, `${getpid()}\n`);
}

function runningPid(path: string): number {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return 0;
    process.kill(pid, 0);
    return pid;
  } catch {
    return 0;
  }
}

/** Starts a detached foreground decap and waits until it has written its pid file. */
async function startBackground(o: DecapOptions): Promise<number> {
  const pid0 = runningPid(o.pidFile);
  if (pid0 > 0) {
    process.stderr.write(`tslb: a decap already runs (pid ${pid0}, ${o.pidFile})\n`);
    return 1;
  }
  mkdirSync(dirname(o.log), { recursive: true, mode: 0o755 });
  if (existsSync(o.pidFile)) unlinkSync(o.pidFile);
  const logFd = openSync(o.log, "a", 0o644);
  const [cmd, ...pre] = selfCommand();
  const child = spawn(cmd, [...pre, ...decapArgs(o)], { detached: true, stdio: ["ignore", logFd, logFd], env: process.env });
  let exited: number | null = null;
  child.on("exit", (c) => { exited = c ?? 1; });
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== null) {
      process.stderr.write(`tslb: decap exited with status ${exited}; see ${o.log}\n`);
      return 1;
    }
    if (runningPid(o.pidFile) === child.pid) {
      process.stdout.write(`tslb decap: running in the background, pid ${child.pid}, log ${o.log}\n`);
      return 0;
    }
    await Bun.sleep(20);
  }
  process.stderr.write(`tslb: decap did not start within ${START_TIMEOUT_MS / 1000} s; see ${o.log}\n`);
  return 1;
}

/**
 * The role entry: `argv` is what follows `--decap`. Returns an exit code, or -1 when the
 * foreground loop keeps the process alive (it exits from its signal handlers).
 */
export async function runDecap(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    process.stdout.write(DECAP_USAGE);
    return 0;
  }
  let o: DecapOptions;
  try {
    o = parseDecapOptions(argv, env);
  } catch (e) {
    if (e instanceof DecapOptionError) {
      process.stderr.write(`tslb: ${e.message}\n${DECAP_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (!o.foreground) return startBackground(o);
  const pidWanted = argv.some((a) => a === "--pid-file" || a.startsWith("--pid-file=")) || !!env.TSLB_DECAP_PID_FILE;
  let host: DecapHost;
  try {
    host = startForeground(o, pidWanted);
  } catch (e) {
    if (e instanceof SysError) {
      process.stderr.write(`tslb: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const stop = (sig: string) => {
    host.close();
    log(`${sig}: stopping`);
    process.stdout.write(host.stats.format() + "\n");
    if (pidWanted && runningPid(o.pidFile) === getpid()) {
      try { unlinkSync(o.pidFile); } catch { /* already gone */ }
    }
    process.exit(0);
  };
  process.on("SIGUSR1", () => process.stdout.write(host.stats.format() + "\n"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  host.run();
  return -1;
}

