// End to end, the scheduling features of IPVS through the VIP with real clients:
// wrr proportions, sh stickiness per client address, persistence with its template in
// -L -n -c, and quiescing with weight 0 while an open connection keeps working.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { CL, CL2, RS, Topology, VIP } from "../../scripts/topology.ts";
import { BUN, ROOT, e2eSocket, ensureBinary, keepAliveClient, startServer, tslb } from "../helpers/tslb.ts";

ensureBinary();
const topo = new Topology("e2esch");
const socket = e2eSocket("sch");
const servers: ReturnType<typeof Bun.spawn>[] = [];
const cli = (args: string[], stdin?: string) => {
  const r = tslb(topo.ns.lb, socket, args, { stdin, env: { TSLB_VIP_DEV: topo.vipDev } });
  assert.is(r.err, "", `tslb ${args.join(" ")}`);
  return r.out;
};
const client = (ns: string, ...args: string[]) => topo.exec(ns, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
const counts = (lines: string[]) => lines.reduce((m, l) => m.set(l, (m.get(l) ?? 0) + 1), new Map<string, number>());

const sch = suite("e2e schedulers");

sch.before(async () => {
  topo.up();
  for (let i = 0; i < 2; i++) servers.push(await startServer(i ? topo.ns.rs2 : topo.ns.rs1, `rs${i + 1}`, RS[i]));
});

sch.after(() => {
  tslb(topo.ns.lb, socket, ["--shutdown"]);
  for (const p of servers) p.kill();
  topo.destroy();
});

sch("wrr 3:1 splits 20 connections 15/5", () => {
  cli(["-R"], `-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r ${RS[0]}:8080 -m -w 3\n-a -t ${VIP}:80 -r ${RS[1]}:8080 -m -w 1\n`);
  const c = counts(client(topo.ns.cl, "http", VIP, "80", "20"));
  assert.is(c.get(`rs1 ${CL}`), 15);
  assert.is(c.get(`rs2 ${CL}`), 5);
});

sch("sh keeps each client address on one server", () => {
  cli(["-E", "-t", `${VIP}:80`, "-s", "sh"]);
  for (const [ns, addr] of [[topo.ns.cl, CL], [topo.ns.cl2, CL2]]) {
    const c = counts(client(ns, "http", VIP, "80", "8"));
    assert.is(c.size, 1, `${addr}: ${[...c.keys()].join(", ")}`);
    assert.match([...c.keys()][0], new RegExp(` ${addr.replace(/\./g, "\\.")}$`));
  }
});

sch("-p keeps a client on one server across source ports and lists the template", () => {
  cli(["-E", "-t", `${VIP}:80`, "-s", "rr", "-p", "120"]);
  const c = counts(client(topo.ns.cl, "http", VIP, "80", "6"));
  assert.is(c.size, 1, [...c.keys()].join(", "));
  const conns = cli(["-L", "-n", "-c"]).split("\n");
  assert.ok(conns.some((l) => /^TCP 0[12]:\d\d  NONE        198\.18\.2\.2:0 +198\.18\.0\.100:80 +198\.18\.1\.1[12]:8080$/.test(l)), conns.join("\n"));
  const pc = cli(["-L", "-n", "--persistent-conn"]);
  assert.match(pc, /Weight    PersistConn ActiveConn InActConn/);
  assert.match(pc, / 1           0          /, "one template (PersistConn 1)");
});

sch("weight 0 stops new connections while an open one keeps working", async () => {
  cli(["-E", "-t", `${VIP}:80`, "-s", "rr"]);
  const ka = keepAliveClient(topo.ns.cl, VIP, "80");
  const ask = () => ka.ask();
  const first = await ask();
  const server = first.split(" ")[0];
  assert.match(server, /^rs[12]$/);
  const rsAddr = server === "rs1" ? RS[0] : RS[1];
  cli(["-e", "-t", `${VIP}:80`, "-r", `${rsAddr}:8080`, "-m", "-w", "0"]);
  assert.is(await ask(), first, "the open connection still reaches its server");
  const fresh = counts(client(topo.ns.cl, "http", VIP, "80", "6"));
  assert.is(fresh.has(`${server} ${CL}`), false, "no new connection goes to the quiesced server");
  assert.is(await ask(), first);
  ka.stop();
});

sch.run();
