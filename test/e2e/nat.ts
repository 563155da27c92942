// End to end, NAT mode over TUN: real namespaces, real servers, real clients, the built
// binary booted with `tslb -R < rules` (auto-starting its daemon, as ipvsadm loads ip_vs).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { CL, CL2, RS, Topology, VIP, sh } from "../../scripts/topology.ts";
import { BUN, ROOT, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import { request } from "../../src/control/client.ts";

const RULES = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS[0]}:8080 -m
-a -t ${VIP}:80 -r ${RS[1]}:8080 -m
-A -u ${VIP}:53 -s wrr
-a -u ${VIP}:53 -r ${RS[0]}:5353 -m -w 2
`;

ensureBinary();
const topo = new Topology("e2enat");
const socket = e2eSocket("nat");
const servers: ReturnType<typeof Bun.spawn>[] = [];
const lb = () => topo.ns.lb;
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin, env: { TSLB_VIP_DEV: topo.vipDev } });
const client = (ns: string, ...args: string[]) => topo.exec(ns, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");

const nat = suite("e2e NAT over TUN");

nat.before(async () => {
  topo.up();
  servers.push(await startServer(topo.ns.rs1, "rs1", RS[0]), await startServer(topo.ns.rs2, "rs2", RS[1]));
});

nat.after(() => {
  tslb(lb(), socket, ["--shutdown"]);
  for (const p of servers) p.kill();
  topo.destroy();
});

nat("-R boots the daemon and loads the rules; startup is well under a second", () => {
  const t0 = performance.now();
  const r = cli(["-R"], RULES);
  const ms = performance.now() - t0;
  assert.is(r.err, "");
  assert.is(r.code, 0);
  console.log(`    (auto-start + restore: ${ms.toFixed(0)} ms)`);
  assert.ok(ms < 3000, `took ${ms} ms`);
});

nat("20 sequential HTTP requests alternate between the servers under rr, each sees the client's address", () => {
  const lines = client(topo.ns.cl, "http", VIP, "80", "20");
  assert.is(lines.length, 20);
  // IPVS lists destinations newest first, so rr starts with the last one added (rs2).
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${CL}`, `request ${i}`));
});

nat("a client on the VIP's own segment reaches it through proxy ARP (--vip-dev)", () => {
  const lines = client(topo.ns.cl2, "http", VIP, "80", "2");
  assert.equal(lines, [`rs2 ${CL2}`, `rs1 ${CL2}`], "the rotation continues");
});

nat("UDP request and reply through the VIP", () => {
  assert.equal(client(topo.ns.cl, "udp", VIP, "53", "hello"), [`rs1 ${CL} hello`]);
});

nat("ICMP port unreachable from a real server reaches the client as an error for the VIP", () => {
  assert.is(cli(["-A", "-u", `${VIP}:54`, "-s", "rr"]).code, 0);
  assert.is(cli(["-a", "-u", `${VIP}:54`, "-r", `${RS[0]}:5454`, "-m"]).code, 0);
  assert.equal(client(topo.ns.cl, "udp", VIP, "54", "nobody listens"), ["error ECONNREFUSED"]);
  assert.is(cli(["-D", "-u", `${VIP}:54`]).code, 0);
});

nat("-L -n shows the rules and the connections in TIME_WAIT as InActConn", () => {
  const r = cli(["-L", "-n"]);
  assert.is(r.code, 0);
  assert.is(r.out, [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    "TCP  198.18.0.100:80 rr",
    "  -> 198.18.1.11:8080             Masq    1      0          11        ",
    "  -> 198.18.1.12:8080             Masq    1      0          11        ",
    "UDP  198.18.0.100:53 wrr",
    "  -> 198.18.1.11:5353             Masq    2      0          1         ",
    "",
  ].join("\n"));
});

nat("-S -n writes the rules back in restore form", () => {
  assert.is(cli(["-S", "-n"]).out, [
    "-A -t 198.18.0.100:80 -s rr",
    "-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m -w 1",
    "-a -t 198.18.0.100:80 -r 198.18.1.12:8080 -m -w 1",
    "-A -u 198.18.0.100:53 -s wrr",
    "-a -u 198.18.0.100:53 -r 198.18.1.11:5353 -m -w 2",
    "",
  ].join("\n"));
});

nat("--stats counts one connection per request and packets both ways", () => {
  const lines = cli(["-L", "-n", "--stats"]).out.split("\n");
  const row = (prefix: string) => lines.find((l) => l.startsWith(prefix))!.trim().split(/\s+/);
  const tcp = row("TCP  198.18.0.100:80");
  assert.is(tcp[2], "22", "Conns = 22 HTTP requests");
  // A client sends at least SYN, the handshake's ACK, its request and a FIN; the server
  // at least SYN-ACK, its answer and a FIN, which tslb may have joined into one write.
  assert.ok(Number(tcp[3]) >= 22 * 4 && Number(tcp[4]) >= 22 * 3, `packets ${tcp}`);
  assert.is(row("  -> 198.18.1.11:8080")[2], "11");
  assert.is(row("  -> 198.18.1.12:8080")[2], "11");
  const udp = row("UDP  198.18.0.100:53");
  assert.equal(udp.slice(2, 5), ["1", "1", "1"]);
});

nat("--rate reports IPVS's 2-second estimator after traffic", async () => {
  // The estimator samples every 2 s; two samples after the requests above are enough.
  await Bun.sleep(4200);
  const lines = cli(["-L", "-n", "--rate"]).out.split("\n");
  assert.is(lines[1], "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS");
  const tcp = lines.find((l) => l.startsWith("TCP  198.18.0.100:80"))!.trim().split(/\s+/);
  assert.ok(Number(tcp[3]) > 0 && Number(tcp[5]) > 0, `rates: ${tcp.join(" ")}`);
});

nat("-L -n -c lists the entries", () => {
  const out = cli(["-L", "-n", "-c"]).out.split("\n");
  assert.is(out[0], "IPVS connection entries");
  assert.ok(out.some((l) => /^UDP \d\d:\d\d  UDP         198\.18\.2\.2:\d+ +198\.18\.0\.100:53 +198\.18\.1\.11:5353$/.test(l)), out.join("\n"));
  assert.is(out.filter((l) => l.startsWith("TCP ") && l.includes("TIME_WAIT")).length, 22);
});

nat("a failing command changes nothing and exits like ipvsadm", () => {
  const before = cli(["-S", "-n"]).out;
  let r = cli(["-A", "-t", `${VIP}:80`, "-s", "rr"]);
  assert.equal([r.err, r.code], ["Service already exists\n", 255]);
  r = cli(["-A", "-t", `${VIP}:81`, "-s", "nosuch"]);
  assert.equal([r.err, r.code], ["Scheduler or persistence engine not found\n", 255]);
  r = cli(["-R"], `-A -t ${VIP}:8081 -s rr\n-a -t ${VIP}:8081 -r ${RS[0]}:80 -m\n-a -t ${VIP}:9999 -r ${RS[0]}:80 -m\n`);
  assert.is(r.code, 255);
  assert.match(r.err, /^Service not defined\n/);
  assert.is(cli(["-S", "-n"]).out, before, "a failed -R changed nothing");
});

nat("deleting a destination stops new connections to it and removes its reply rule", () => {
  assert.is(cli(["-d", "-t", `${VIP}:80`, "-r", `${RS[1]}:8080`]).code, 0);
  assert.equal(client(topo.ns.cl, "http", VIP, "80", "3"), [`rs1 ${CL}`, `rs1 ${CL}`, `rs1 ${CL}`]);
  const rules = topo.ip(lb(), "rule");
  assert.not.match(rules, /from 198\.18\.1\.12 ipproto tcp sport 8080/);
  assert.match(rules, /from 198\.18\.1\.11 ipproto tcp sport 8080/);
});

nat("tslb doctor checks the host and prints each real server's setup", () => {
  const r = cli(["doctor"]);
  assert.is(r.code, 0, r.out + r.err);
  assert.match(r.out, /\[ ok \] \/dev\/net\/tun can be opened/);
  assert.match(r.out, /\[ ok \] device tslb0 is up, mtu \d+/);
  assert.match(r.out, /real server 198\.18\.1\.11:8080 \(masq, reached from 198\.18\.1\.1\):\n +# NAT .*\n +ip route replace default via 198\.18\.1\.1\n/);
  // --rps (default on): the TUN's rx queues steer to every CPU the daemon may use.
  const mask = /receive steering to CPUs ([0-9a-f,]+)/.exec(r.out)?.[1];
  if (availableParallelism() === 1) return void assert.match(r.out, /receive steering off/);
  assert.ok(mask, r.out);
  const queues = topo.exec(lb(), ["sh", "-c", "cat /sys/class/net/tslb0/queues/rx-*/rps_cpus"]).out.trim().split("\n");
  for (const q of queues) assert.is(q.replace(/^[0,]+(?=.)/, ""), mask.replace(/^[0,]+(?=.)/, ""), "rps_cpus of each rx queue");
});

nat("a burst of 200 datagrams of one flow: coalesced into few writes with offloads, every echo intact", async () => {
  const counts = async () => { const r = await request(socket, { op: "drops" }); return (r.ok ? r.data : {}) as Record<string, number>; };
  const before = await counts();
  const [line] = client(topo.ns.cl, "udpburst", VIP, "53", "200");
  const [replies, distinct] = line.split(" ").map(Number);
  const after = await counts();
  console.log(`    (${replies} replies, ${distinct} distinct; ${after.coalesced - before.coalesced} coalesced writes)`);
  // Socket buffers may overflow in a burst; what arrives must be whole and distinct.
  assert.ok(distinct >= 190, line);
  assert.is(replies, distinct, "no reply came twice or garbled");
  // With the XDP hand-off on, the datagrams come and go by its sockets, one frame each.
  if (process.env.TSLB_XDP) assert.ok(after.xdp_rx - before.xdp_rx >= distinct, "the burst went by the XDP sockets");
  else if (process.env.TSLB_OFFLOAD !== "off") assert.ok(after.coalesced > before.coalesced, "the burst was joined into GSO writes");
});

nat("tslb --shutdown removes every device, route and rule it made", () => {
  const r = tslb(lb(), socket, ["--shutdown"]);
  assert.is(r.code, 0);
  assert.is(sh(["ip", "-n", lb(), "link", "show", "tslb0"], true).code !== 0, true, "tslb0 gone");
  const rules = topo.ip(lb(), "rule") + topo.ip(lb(), "-6", "rule");
  assert.not.match(rules, /29000|29001|29811/);
  assert.is(topo.ip(lb(), "route", "show", "table", "all").includes("tslb0"), false);
  assert.is(topo.ip(lb(), "-6", "route", "show", "table", "all").includes("tslb0"), false);
  assert.is(topo.ip(lb(), "neigh", "show", "proxy").trim(), "");
  // Read-only commands with no daemon print an empty table, as ipvsadm does with no rules.
  assert.is(tslb(lb(), socket, ["-L", "-n"]).out, "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
});

nat("SIGTERM to a foreground daemon cleans up the same way", async () => {
  const p = Bun.spawn(["ip", "netns", "exec", lb(), join(ROOT, "build/tslb"), "--daemon", "--foreground", "--socket", socket], { stderr: "pipe", stdout: "ignore" });
  const reader = p.stderr.getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  assert.match(text, /ready/);
  assert.is(cli(["-A", "-t", `${VIP}:80`, "-s", "rr"]).code, 0);
  assert.is(cli(["-a", "-t", `${VIP}:80`, "-r", `${RS[0]}:8080`, "-m"]).code, 0);
  assert.match(topo.ip(lb(), "rule"), /29001/);
  p.kill("SIGTERM");
  assert.is(await p.exited, 0);
  assert.is(sh(["ip", "-n", lb(), "link", "show", "tslb0"], true).code !== 0, true);
  assert.not.match(topo.ip(lb(), "rule"), /29000|29001/);
  assert.is(topo.ip(lb(), "route", "show", "table", "all").includes("tslb0"), false);
});

nat.run();
