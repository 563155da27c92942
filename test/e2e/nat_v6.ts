// End to end, NAT over TUN with IPv6: services and real servers in bracketed form, the
// VIP routed into the TUN, reply rules for IPv6, proxy NDP for a client on the VIP's
// segment, and a clean shutdown.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { CL26, CL6, RS, RS6, Topology, VIP6 } from "../../scripts/topology.ts";
import { BUN, ROOT, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";

ensureBinary();
const topo = new Topology("e2ev6");
const socket = e2eSocket("v6");
const servers: ReturnType<typeof Bun.spawn>[] = [];
const cli = (args: string[], stdin?: string) => tslb(topo.ns.lb, socket, args, { stdin, env: { TSLB_VIP_DEV: topo.vipDev } });
const client = (ns: string, ...args: string[]) => topo.exec(ns, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");

const v6 = suite("e2e NAT over TUN, IPv6");

v6.before(async () => {
  topo.up();
  for (let i = 0; i < 2; i++) servers.push(await startServer(i ? topo.ns.rs2 : topo.ns.rs1, `rs${i + 1}`, `${RS[i]},${RS6[i]}`));
});

v6.after(() => {
  cli(["--shutdown"]);
  for (const p of servers) p.kill();
  topo.destroy();
});

v6("IPv6 rules load; HTTP alternates between the servers, each sees the client's address", () => {
  const r = cli(["-R"], `-A -t [${VIP6}]:80 -s rr
-a -t [${VIP6}]:80 -r [${RS6[0]}]:8080 -m
-a -t [${VIP6}]:80 -r [${RS6[1]}]:8080 -m
-A -u [${VIP6}]:53 -s rr
-a -u [${VIP6}]:53 -r [${RS6[0]}]:5353 -m
`);
  assert.equal([r.code, r.err], [0, ""]);
  const lines = client(topo.ns.cl, "http", VIP6, "80", "6");
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${CL6}`, `request ${i}`));
});

v6("a client on the VIP's segment reaches it through proxy NDP", () => {
  assert.equal(client(topo.ns.cl2, "http", VIP6, "80", "2"), [`rs2 ${CL26}`, `rs1 ${CL26}`]);
});

v6("UDP over IPv6", () => {
  assert.equal(client(topo.ns.cl, "udp", VIP6, "53", "hi"), [`rs1 ${CL6} hi`]);
});

v6("-L -n brackets IPv6 services and servers; --stats counts the connections", () => {
  assert.is(cli(["-L", "-n"]).out, [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    "TCP  [2001:2:0:ff::100]:80 rr",
    "  -> [2001:2:0:1::11]:8080        Masq    1      0          4         ",
    "  -> [2001:2:0:1::12]:8080        Masq    1      0          4         ",
    "UDP  [2001:2:0:ff::100]:53 rr",
    "  -> [2001:2:0:1::11]:5353        Masq    1      0          1         ",
    "",
  ].join("\n"));
  const tcp = cli(["-L", "-n", "--stats"]).out.split("\n").find((l) => l.startsWith("TCP"))!.trim().split(/\s+/);
  assert.is(tcp[2], "8");
});

v6("shutdown removes the IPv6 routes, rules and proxy entries too", () => {
  assert.is(cli(["--shutdown"]).code, 0);
  const all = topo.ip(topo.ns.lb, "-6", "rule") + topo.ip(topo.ns.lb, "-6", "route", "show", "table", "all") + topo.ip(topo.ns.lb, "-6", "neigh", "show", "proxy");
  assert.not.match(all, /29000|29001|29811|tslb0|2001:2:0:ff::100/);
});

v6.run();
