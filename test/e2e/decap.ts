// End to end, the real-server side of tunnel mode: `build/tslb --decap --foreground` in a
// real-server namespace whose kernel has no ipip/sit/gre/fou modules, the VIPs on `lo`
// (arp_ignore=1, arp_announce=2, rp_filter=0), real servers bound to the VIPs. A director
// namespace sends client requests encapsulated by tslb's own forward/tunnel.ts (IPIP, GRE,
// GUE; IPv4 and IPv6, inner and outer) through an IPPROTO_RAW socket of io/raw.ts; the
// real server's answer must reach the client namespace DIRECTLY, from the VIP. Then a TCP
// exchange through a TUN-based mini director, drops by reason, live VIP following, the
// background mode and a clean stop.
//
//   cl 198.18.2.2 2001:2:2::2 ── dc [dir] br0 198.18.1.1 2001:2:1::1 ── rs 198.18.1.11 2001:2:1::11
//   VIPs on rs lo: 198.18.0.100/32, 2001:2:0:100::100/128. rs routes replies via dir (a router).
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { sh } from "../../scripts/topology.ts";
import { BIN, BUN, ROOT, ensureBinary } from "../helpers/tslb.ts";
import type { Send } from "../helpers/tunnel_send.ts";

const VIP = "198.18.0.100";
const VIP6 = "2001:2:0:100::100";
const DIR = "198.18.1.1";
const DIR6 = "2001:2:1::1";
const RS = "198.18.1.11";
const RS6 = "2001:2:1::11";
const CL = "198.18.2.2";
const CL6 = "2001:2:2::2";
const GUE_PORT = 6080;

ensureBinary();
const P = `tslb-decap-${process.pid}`;
const NS = { dir: `${P}-dir`, rs: `${P}-rs`, cl: `${P}-cl` };
const TMP = mkdtempSync(join(tmpdir(), "tslb-decap-"));
const PID_FILE = join(TMP, "decap.pid");
const made: string[] = [];
const procs: ReturnType<typeof Bun.spawn>[] = [];

const ip = (ns: string, ...a: string[]) => sh(["ip", "-n", ns, ...a]).out;
const sysctl = (ns: string, ...kv: string[]) => sh(["ip", "netns", "exec", ns, "sysctl", "-qw", ...kv]);
const inNs = (ns: string, argv: string[], ttl = 60) => ["timeout", String(ttl), "ip", "netns", "exec", ns, ...argv];

function destroy(): void {
  for (const p of procs) p.kill("SIGKILL");
  for (const n of made) sh(["ip", "netns", "pids", n], true).out.split("\n").filter(Boolean).forEach((pid) => sh(["kill", "-9", pid], true));
  for (const n of made.splice(0)) sh(["ip", "netns", "del", n], true);
}
process.once("exit", destroy);

function up(): void {
  for (const n of [NS.dir, NS.rs, NS.cl]) {
    sh(["ip", "netns", "add", n]);
    made.push(n);
    ip(n, "link", "set", "lo", "up");
  }
  sh(["ip", "link", "add", "eth0", "netns", NS.rs, "type", "veth", "peer", "name", "dr", "netns", NS.dir]);
  sh(["ip", "link", "add", "eth0", "netns", NS.cl, "type", "veth", "peer", "name", "dc", "netns", NS.dir]);
  ip(NS.dir, "link", "add", "br0", "type", "bridge");
  ip(NS.dir, "link", "set", "dr", "master", "br0");
  for (const l of ["br0", "dr", "dc"]) ip(NS.dir, "link", "set", l, "up");
  sysctl(NS.dir, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
  ip(NS.dir, "addr", "add", `${DIR}/24`, "dev", "br0");
  ip(NS.dir, "addr", "add", `${DIR6}/64`, "dev", "br0", "nodad");
  ip(NS.dir, "addr", "add", "198.18.2.1/24", "dev", "dc");
  ip(NS.dir, "addr", "add", "2001:2:2::1/64", "dev", "dc", "nodad");
  // The real server: VIPs on lo, no ARP for them on eth0, no reverse-path filter (IPVS's TUN recipe).
  sysctl(NS.rs, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
    "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0");
  ip(NS.rs, "link", "set", "eth0", "up");
  ip(NS.rs, "addr", "add", `${RS}/24`, "dev", "eth0");
  ip(NS.rs, "addr", "add", `${RS6}/64`, "dev", "eth0", "nodad");
  ip(NS.rs, "route", "add", "default", "via", DIR);
  ip(NS.rs, "-6", "route", "add", "default", "via", DIR6);
  ip(NS.rs, "addr", "add", `${VIP}/32`, "dev", "lo");
  ip(NS.rs, "addr", "add", `${VIP6}/128`, "dev", "lo");
  ip(NS.cl, "link", "set", "eth0", "up");
  ip(NS.cl, "addr", "add", `${CL}/24`, "dev", "eth0");
  ip(NS.cl, "addr", "add", `${CL6}/64`, "dev", "eth0", "nodad");
  ip(NS.cl, "route", "add", "default", "via", "198.18.2.1");
  ip(NS.cl, "-6", "route", "add", "default", "via", "2001:2:2::1");
}

type ReadResult = { done: boolean; value?: Uint8Array };

/** Line reader over a spawned process's stdout. */
class Lines {
  private buf = "";
  private readonly reader: { read(): Promise<ReadResult> };
  private readonly dec = new TextDecoder();
  private pending: Promise<ReadResult> | null = null;
  readonly all: string[] = [];
  constructor(readonly proc: ReturnType<typeof Bun.spawn>) {
    this.reader = (proc.stdout as ReadableStream<Uint8Array>).getReader() as unknown as { read(): Promise<ReadResult> };
  }
  /** The next line matching `re` (earlier lines are kept in `all`), or throws after ms. */
  async next(re: RegExp, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.all.push(line);
        if (re.test(line)) return line;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line matching ${re} within ${ms} ms; got:\n${this.all.join("\n")}`);
      // A read that loses the race stays pending and is awaited next time: never a second read().
      this.pending ??= this.reader.read();
      const r = await Promise.race([this.pending, Bun.sleep(left).then(() => null)]);
      if (r === null) continue;
      this.pending = null;
      if (r.done) throw new Error(`stream ended before ${re}; got:\n${this.all.join("\n")}${this.buf}`);
      this.buf += this.dec.decode(r.value, { stream: true });
    }
  }
}

function spawnIn(ns: string, argv: string[], ttl = 120, env: Record<string, string> = {}): ReturnType<typeof Bun.spawn> {
  const p = Bun.spawn(inNs(ns, argv, ttl), {
    stdin: "pipe", stdout: "pipe", stderr: "pipe", cwd: TMP,
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
  });
  procs.push(p);
  return p;
}

function send(sends: Send[]): number[] {
  const r = sh(inNs(NS.dir, [BUN, join(ROOT, "test/helpers/tunnel_send.ts"), JSON.stringify(sends)], 30), true);
  if (r.code !== 0) throw new Error(`tunnel_send: ${r.err}${r.out}`);
  return JSON.parse(r.out.trim().split("\n").pop()!).sent;
}

/** Starts a UDP listener in the client namespace, runs `act`, returns what arrived. */
async function listen(addr: string, port: number, count: number, act: () => void, ms = 8000): Promise<{ from: string; port: number; data: string }[]> {
  const p = spawnIn(NS.cl, [BUN, join(ROOT, "test/helpers/udp_listen.ts"), addr, String(port), String(count), String(ms)], 30);
  const lines = new Lines(p);
  await lines.next(/^ready/);
  act();
  await p.exited;
  try { await lines.next(/^\0never/, 200); } catch { /* drained */ }
  return lines.all.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

function pidOf(file: string): number {
  return Number(readFileSync(file, "utf8").trim());
}

/** The decap's counters: asks with SIGUSR1 and parses the line it prints. */
async function counters(lines: Lines, pid: number): Promise<Record<string, number>> {
  process.kill(pid, "SIGUSR1");
  const line = await lines.next(/^tslb decap: received/, 3000);
  const out: Record<string, number> = {};
  const m = /received (\d+), injected (\d+), dropped (\d+)/.exec(line)!;
  out.received = Number(m[1]);
  out.injected = Number(m[2]);
  out.dropped = Number(m[3]);
  const [, rx, drop] = line.split(" | ");
  for (const kv of `${rx.slice(3)} ${drop.slice(5)}`.split(" ")) {
    const [k, v] = kv.split("=");
    out[k] = Number(v);
  }
  return out;
}

const req = (type: Send["type"], over: Partial<Send> = {}): Send => ({
  type, port: GUE_PORT, outerSrc: DIR, outerDst: RS, src: CL, dst: VIP, proto: "udp", sport: 40000, dport: 53,
  payload: `via ${type}`, ...over,
});
const req6 = (type: Send["type"], over: Partial<Send> = {}): Send => ({
  ...req(type), outerSrc: DIR6, outerDst: RS6, ...over,
});

let decap: ReturnType<typeof Bun.spawn>;
let out: Lines;
let pid = 0;

const e2e = suite("e2e tslb --decap (real server of tunnel mode)");

e2e.before(async () => {
  up();
  const srv = spawnIn(NS.rs, [BUN, join(ROOT, "scripts/servers.ts"), "rs1", `${VIP},${VIP6}`, "80", "53"], 240,
    { TSLB_SERVER_TTL: "200" });
  await new Lines(srv).next(/^ready/);
});

e2e.after(() => destroy());

e2e("starts in the foreground, VIPs taken from lo, TUN up with rp_filter 0", async () => {
  const t0 = performance.now();
  decap = spawnIn(NS.rs, [BIN, "--decap", "--foreground", "--gue-port", String(GUE_PORT), "--pid-file", PID_FILE], 240);
  out = new Lines(decap);
  const ready = await out.next(/ready:/);
  console.log(`    (${(performance.now() - t0).toFixed(0)} ms to ready) ${ready}`);
  assert.match(ready, /tun tslbdecap0/);
  assert.match(ready, /raw ipip,ipv6ip,gre,ipip6,ipv6ip6,gre6/);
  assert.match(ready, new RegExp(`gue ports ${GUE_PORT}`));
  assert.match(ready, /vips on lo \(198\.18\.0\.100,2001:2:0:100::100\)/);
  pid = pidOf(PID_FILE);
  assert.ok(pid > 0);
  assert.match(ip(NS.rs, "link", "show", "tslbdecap0"), /<[^>]*\bUP\b/);
  assert.is(sh(["ip", "netns", "exec", NS.rs, "sysctl", "-n", "net.ipv4.conf.tslbdecap0.rp_filter"]).out.trim(), "0");
});

e2e("UDP request in IPIP, GRE, GRE+csum, GUE, GUE+csum: the VIP answers the client directly", async () => {
  const got = await listen(CL, 40000, 5, () => {
    send([req("ipip"), req("gre"), req("gre", { flags: 1, payload: "via gre csum" }), req("gue"),
      req("gue", { flags: 1, payload: "via gue csum" })]);
  });
  assert.equal(got.map((g) => g.data).sort(), [
    `rs1 ${CL} via gre`, `rs1 ${CL} via gre csum`, `rs1 ${CL} via gue`, `rs1 ${CL} via gue csum`, `rs1 ${CL} via ipip`,
  ]);
  for (const g of got) assert.equal([g.from, g.port], [VIP, 53], "reply comes from the VIP:53");
});

e2e("IPv6 inner and outer: 6in4 (41), 4in6 (raw IPv6), 6in6 over IPIP, GRE and GUE (zero UDP checksum)", async () => {
  const got6 = await listen(CL6, 40000, 4, () => {
    send([
      req("ipip", { src: CL6, dst: VIP6, payload: "6in4" }),
      req6("ipip", { src: CL6, dst: VIP6, payload: "6in6" }),
      req6("gre", { src: CL6, dst: VIP6, payload: "6in6 gre" }),
      req6("gue", { src: CL6, dst: VIP6, payload: "6in6 gue" }),
    ]);
  });
  assert.equal(got6.map((g) => g.data).sort(), [`rs1 ${CL6} 6in4`, `rs1 ${CL6} 6in6`, `rs1 ${CL6} 6in6 gre`, `rs1 ${CL6} 6in6 gue`]);
  for (const g of got6) assert.is(g.from, VIP6);
  const got4 = await listen(CL, 40000, 2, () => {
    send([req6("ipip", { payload: "4in6" }), req6("gue", { payload: "4in6 gue", flags: 1 })]);
  });
  assert.equal(got4.map((g) => `${g.from} ${g.data}`).sort(), [`${VIP} rs1 ${CL} 4in6`, `${VIP} rs1 ${CL} 4in6 gue`]);
  const c = await counters(out, pid);
  assert.equal([c.ipip, c.ipv6ip, c.gre, c.ipip6, c.ipv6ip6, c.gre6, c.gue], [1, 1, 2, 1, 1, 1, 4]);
  assert.equal([c.received, c.injected, c.dropped], [11, 11, 0]);
});

e2e("drops are counted by reason and nothing is injected for them", async () => {
  const before = await counters(out, pid);
  const got = await listen(CL, 40000, 1, () => {
    send([
      req("ipip", { dst: "198.18.0.101", payload: "not a vip" }),
      req("gre", { poke: [[10, 0], [11, 0]], payload: "bad inner checksum" }),
      req("gue", { outerPoke: [[29, 17]], payload: "GUE proto 17" }),
      req("gue", { outerPoke: [[28, 0x20]], payload: "GUE control message" }),
      req("ipip", { outerEcn: 3, payload: "CE over not-ECT" }),
      req("ipip", { outerEcn: 3, innerTos: 2, payload: "CE over ECT(0) is delivered" }),
    ]);
  }, 2000);
  assert.equal(got.map((g) => g.data), [`rs1 ${CL} CE over ECT(0) is delivered`]);
  const c = await counters(out, pid);
  const d = (k: string) => c[k] - before[k];
  assert.equal([d("received"), d("injected"), d("not_vip"), d("malformed"), d("unknown_proto"), d("ecn"), d("tx_error")],
    [6, 1, 1, 1, 2, 1, 0]);
});

e2e("a VIP added to lo while running is followed (netlink notification), and removal too", async () => {
  ip(NS.rs, "addr", "add", "198.18.0.101/32", "dev", "lo");
  await Bun.sleep(300);
  const got = await listen(CL, 40000, 1, () => send([req("ipip", { dst: "198.18.0.101", dport: 9, payload: "new vip" })]), 1500);
  assert.equal(got, [], "nothing listens on port 9, but the packet was injected");
  let c = await counters(out, pid);
  const injected = c.injected;
  const notVip = c.not_vip;
  ip(NS.rs, "addr", "del", "198.18.0.101/32", "dev", "lo");
  await Bun.sleep(300);
  send([req("ipip", { dst: "198.18.0.101", dport: 9, payload: "gone" })]);
  await Bun.sleep(200);
  c = await counters(out, pid);
  assert.is(c.not_vip, notVip + 1);
  assert.is(c.injected, injected);
});

e2e("TCP through IPIP: a TUN-based director encapsulates in place, HTTP completes, IPv4 and IPv6", async () => {
  const dirProc = spawnIn(NS.dir, [BUN, join(ROOT, "test/helpers/tunnel_director.ts"), "tslbtd0", "ipip", "0", "0",
    DIR, RS, DIR6, RS6, VIP, VIP6, "60"], 90);
  const dl = new Lines(dirProc);
  await dl.next(/^ready/);
  try {
    const http = (addr: string, n: number) =>
      sh(inNs(NS.cl, [BUN, join(ROOT, "scripts/client.ts"), "http", addr, "80", String(n)], 30), true).out.trim().split("\n");
    assert.equal(http(VIP, 3), [`rs1 ${CL}`, `rs1 ${CL}`, `rs1 ${CL}`]);
    assert.equal(http(VIP6, 1), [`rs1 ${CL6}`]);
  } finally {
    (dirProc.stdin as import("bun").FileSink).end();
  }
  const counts = JSON.parse(await dl.next(/^\{/));
  assert.ok(counts.out >= 4 * 5, `director encapsulated ${counts.out} packets`);
  assert.is(counts.err, 0);
});

e2e("SIGTERM: final counters, exit 0, TUN and pid file gone", async () => {
  const t0 = performance.now();
  process.kill(pid, "SIGTERM");
  const last = await out.next(/^tslb decap: received/, 3000);
  assert.match(last, /dropped \d+/);
  assert.is(await decap.exited, 0);
  console.log(`    (stopped in ${(performance.now() - t0).toFixed(0)} ms)`);
  assert.is(sh(["ip", "-n", NS.rs, "link", "show", "tslbdecap0"], true).code !== 0, true);
  assert.not.ok(existsSync(PID_FILE));
});

e2e("background mode: returns once running, pid file written, --vip limits the VIPs", async () => {
  const log = join(TMP, "bg.log");
  const pidFile = join(TMP, "bg.pid");
  const r = sh(inNs(NS.rs, [BIN, "--decap", "--vip", VIP, "--tun", "tslbdecap1", "--log", log, "--pid-file", pidFile], 30), true);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /running in the background, pid \d+/);
  const bgPid = pidOf(pidFile);
  try {
    assert.match(readFileSync(log, "utf8"), /ready: tun tslbdecap1, .* vips 198\.18\.0\.100\n/);
    const again = sh(inNs(NS.rs, [BIN, "--decap", "--vip", VIP, "--pid-file", pidFile], 30), true);
    assert.is(again.code, 1);
    assert.match(again.err, /already runs/);
    const got = await listen(CL6, 40000, 1, () => send([req("ipip", { src: CL6, dst: VIP6, payload: "v6 not listed" })]), 1200);
    assert.equal(got, [], "the IPv6 VIP is not in --vip");
  } finally {
    process.kill(bgPid, "SIGTERM");
  }
  for (let i = 0; i < 100 && existsSync(pidFile); i++) await Bun.sleep(20);
  assert.not.ok(existsSync(pidFile));
  assert.match(readFileSync(log, "utf8"), /received 1, injected 0, dropped 1 .* not_vip=1/);
});

e2e.run();
