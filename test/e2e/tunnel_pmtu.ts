// End to end, path MTU inside a tunnel: a router between tslb and the real server has a
// smaller MTU (1400) on its far side. Its "fragmentation needed" goes to tslb's own
// address (the outer source); tslb must lower that destination's tunnel MTU and tell the
// client, whose upload with DF then completes (IPVS does this in ip_vs_in_icmp).
//   cl 198.18.2.2 — 198.18.2.1 lb 198.18.5.1 — 198.18.5.2 rt 198.18.6.1 (mtu 1400) — 198.18.6.11 rs
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { deleteNamespaces, sh } from "../../scripts/topology.ts";
import { BIN, BUN, ROOT, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";
import { request } from "../../src/control/client.ts";

ensureBinary();
const VIP = "198.18.0.100";
const RS = "198.18.6.11";
const VIP6 = "2001:2:0:ff::100";
const RS6 = "2001:2:0:6::11";
const p = `tslb-e2epmtu-${process.pid}`;
const ns = { cl: `${p}-cl`, lb: `${p}-lb`, rt: `${p}-rt`, rs: `${p}-rs` };
const socket = e2eSocket("pmtu");
const procs: ReturnType<typeof Bun.spawn>[] = [];
const ip = (n: string, ...a: string[]) => sh(["ip", "-n", n, ...a]).out;
const sysctl = (n: string, kv: string) => sh(["ip", "netns", "exec", n, "sysctl", "-qw", kv]);
const destroy = () => deleteNamespaces(Object.values(ns));
process.once("exit", destroy);

const t = suite("e2e tunnel path MTU");

t.before(async () => {
  for (const n of Object.values(ns)) {
    sh(["ip", "netns", "add", n]);
    ip(n, "link", "set", "lo", "up");
    sysctl(n, "net.ipv6.conf.default.accept_dad=0");
    sysctl(n, "net.ipv6.conf.all.accept_dad=0");
  }
  const link = (a: string, ai: string, aAddr: string, a6: string, b: string, bi: string, bAddr: string, b6: string, mtu: number) => {
    sh(["ip", "link", "add", ai, "netns", a, "mtu", String(mtu), "type", "veth", "peer", "name", bi, "netns", b, "mtu", String(mtu)]);
    ip(a, "addr", "add", aAddr, "dev", ai); ip(a, "addr", "add", a6, "dev", ai, "nodad"); ip(a, "link", "set", ai, "up");
    ip(b, "addr", "add", bAddr, "dev", bi); ip(b, "addr", "add", b6, "dev", bi, "nodad"); ip(b, "link", "set", bi, "up");
  };
  link(ns.cl, "eth0", "198.18.2.2/24", "2001:2:0:2::2/64", ns.lb, "lbc", "198.18.2.1/24", "2001:2:0:2::1/64", 1500);
  link(ns.lb, "lbr", "198.18.5.1/24", "2001:2:0:5::1/64", ns.rt, "rtl", "198.18.5.2/24", "2001:2:0:5::2/64", 1500);
  link(ns.rt, "rts", "198.18.6.1/24", "2001:2:0:6::1/64", ns.rs, "eth0", "198.18.6.11/24", `${RS6}/64`, 1400);
  ip(ns.cl, "-6", "route", "add", `${VIP6}/128`, "via", "2001:2:0:2::1");
  ip(ns.lb, "-6", "route", "add", "2001:2:0:6::/64", "via", "2001:2:0:5::2");
  ip(ns.rt, "-6", "route", "add", "default", "via", "2001:2:0:5::1");
  ip(ns.rs, "-6", "route", "add", "default", "via", "2001:2:0:6::1");
  sysctl(ns.rt, "net.ipv6.conf.all.forwarding=1");
  ip(ns.rs, "addr", "add", `${VIP6}/128`, "dev", "lo");
  ip(ns.cl, "route", "add", `${VIP}/32`, "via", "198.18.2.1");
  ip(ns.lb, "route", "add", "198.18.6.0/24", "via", "198.18.5.2");
  ip(ns.rt, "route", "add", "default", "via", "198.18.5.1");
  ip(ns.rs, "route", "add", "default", "via", "198.18.6.1");
  sysctl(ns.rt, "net.ipv4.ip_forward=1");
  ip(ns.rs, "addr", "add", `${VIP}/32`, "dev", "lo");
  for (const k of ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"]) sysctl(ns.rs, k);
  procs.push(Bun.spawn(["ip", "netns", "exec", ns.rs, BIN, "--decap", "--foreground", "--vip", `${VIP},${VIP6}`], { stdout: "ignore", stderr: "ignore" }));
  procs.push(await startServer(ns.rs, "rs1", `${VIP},${VIP6}`, "80", "53", 120));
  await Bun.sleep(300);
});

t.after(() => {
  tslb(ns.lb, socket, ["--shutdown"]);
  for (const x of procs) x.kill();
  destroy();
});

t("an upload with DF completes through a narrower link behind the tunnel", async () => {
  const r = tslb(ns.lb, socket, ["-R"], { stdin: `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS} -i\n` });
  assert.equal([r.code, r.err], [0, ""]);
  const out = sh(["timeout", "30", "ip", "netns", "exec", ns.cl, BUN, join(ROOT, "scripts/client.ts"), "upload", VIP, "80", "300000"], true).out.trim();
  assert.is(out, "rs1 198.18.2.2 300000");
  const d = await request(socket, { op: "drops" });
  assert.ok(d.ok && (d.data as Record<string, number>).tunnel_too_big >= 2, `tslb told the client twice (1480, then 1380): ${JSON.stringify(d)}`);
});

t("IPv6: the same through an IPv6 tunnel (ICMPv6 packet too big, read from a raw ICMPv6 socket)", async () => {
  const r = tslb(ns.lb, socket, ["-R"], { stdin: `-A -t [${VIP6}]:80 -s rr\n-a -t [${VIP6}]:80 -r ${RS6} -i\n` });
  assert.equal([r.code, r.err], [0, ""]);
  const before = await request(socket, { op: "drops" });
  const n0 = before.ok ? (before.data as Record<string, number>).tunnel_too_big : 0;
  const out = sh(["timeout", "30", "ip", "netns", "exec", ns.cl, BUN, join(ROOT, "scripts/client.ts"), "upload", VIP6, "80", "300000"], true).out.trim();
  assert.is(out, "rs1 2001:2:0:2::2 300000");
  const d = await request(socket, { op: "drops" });
  assert.ok(d.ok && (d.data as Record<string, number>).tunnel_too_big >= n0 + 2, JSON.stringify(d));
});

t.run();
