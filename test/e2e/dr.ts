// End to end, direct routing over TAP: client, real servers and tslb's TAP on one bridge.
// tslb answers ARP for the VIP, resolves the real servers' MACs itself, rewrites only the
// destination MAC; the real servers (VIP on lo) answer the client directly.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { DR_CL, DR_CL6, DR_RS, DR_RS6, DR_VIP, DR_VIP6, DrTopology } from "../../scripts/topology.ts";
import { BUN, ROOT, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";

ensureBinary();
const topo = new DrTopology("e2edr");
const socket = e2eSocket("dr");
const servers: ReturnType<typeof Bun.spawn>[] = [];
const cli = (args: string[], stdin?: string) => tslb(topo.ns.lb, socket, args, { stdin, env: { TSLB_BRIDGE: topo.bridge } });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");

const dr = suite("e2e direct routing over TAP");

dr.before(async () => {
  topo.up();
  // Real servers listen on the VIP (DR keeps the destination address).
  for (let i = 0; i < 2; i++) servers.push(await startServer(i ? topo.ns.rs2 : topo.ns.rs1, `rs${i + 1}`, `${DR_VIP},${DR_VIP6}`, "80", "53"));
});

dr.after(() => {
  cli(["--shutdown"]);
  for (const p of servers) p.kill();
  topo.destroy();
});

dr("wrr 3:1 over DR gives 15/5 of 20 requests; each server sees the client's address", () => {
  const r = cli(["-R"], `-A -t ${DR_VIP}:80 -s wrr\n-a -t ${DR_VIP}:80 -r ${DR_RS[0]} -g -w 3\n-a -t ${DR_VIP}:80 -r ${DR_RS[1]} -w 1\n`);
  assert.equal([r.code, r.err], [0, ""]);
  const lines = client("http", DR_VIP, "80", "20");
  const c = new Map<string, number>();
  for (const l of lines) c.set(l, (c.get(l) ?? 0) + 1);
  assert.is(c.get(`rs1 ${DR_CL}`), 15, lines.join(","));
  assert.is(c.get(`rs2 ${DR_CL}`), 5);
});

dr("the client learned the VIP at tslb's MAC; replies bypass tslb (OutPkts 0)", () => {
  const neigh = topo.ip(topo.ns.cl, "neigh", "show", DR_VIP);
  assert.match(neigh, /lladdr [0-9a-f][26ae]:/, neigh);
  const lines = cli(["-L", "-n", "--stats"]).out.split("\n");
  const svc = lines.find((l) => l.startsWith("TCP  198.18.4.100:80"))!.trim().split(/\s+/);
  assert.is(svc[2], "20");
  assert.ok(Number(svc[3]) >= 20 * 4, `InPkts ${svc[3]}`);
  assert.is(svc[4], "0", "OutPkts");
  assert.match(cli(["-L", "-n"]).out, /  -> 198\.18\.4\.11:80               Route   3      0          \d+ +\n/);
});

dr("tslb doctor sees the TAP on the bridge and prints the DR real-server setup", () => {
  const r = cli(["doctor"]);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /\[ ok \] tslbtap0 is a port of bridge br-dr/);
  // A long queue toward tslb, as for the TUN (1 000 packets overflowed at 1 000 connections).
  assert.match(topo.ip(topo.ns.lb, "link", "show", "tslbtap0"), /qlen 10000/);
  assert.match(r.out, /ip addr add 198\.18\.4\.100\/32 dev lo\n +sysctl -w net\.ipv4\.conf\.all\.arp_ignore=1 net\.ipv4\.conf\.all\.arp_announce=2/);
});

dr("IPv6: tslb answers neighbour solicitations for the VIP and resolves the servers with NDP", () => {
  const r = cli(["-R"], `-A -t [${DR_VIP6}]:80 -s rr\n-a -t [${DR_VIP6}]:80 -r ${DR_RS6[0]}\n-a -t [${DR_VIP6}]:80 -r ${DR_RS6[1]}\n`);
  assert.equal([r.code, r.err], [0, ""]);
  const lines = client("http", DR_VIP6, "80", "6");
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${DR_CL6}`, `request ${i}: ${lines.join(",")}`));
  assert.match(topo.ip(topo.ns.cl, "-6", "neigh", "show", DR_VIP6), /lladdr [0-9a-f][26ae]:/);
  const svc = cli(["-L", "-n", "--stats"]).out.split("\n").find((l) => l.startsWith("TCP  [2001:2:0:4::100]:80"))!.trim().split(/\s+/);
  assert.is(svc[4], "0", "OutPkts");
});

dr.run();
