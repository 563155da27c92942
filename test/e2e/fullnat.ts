// End to end, full NAT (--fullnat, DPVS's FNAT): the real servers' default route points at
// a router namespace that knows nothing of the clients, and they carry no VIP. Only
// because tslb rewrites the source to its own address (and a pool port) do replies come
// back. Also: IPv6, UDP, the local-port pool running out, and what the host is left with.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { CL, LB_RS, RS, RS6, Topology, VIP, VIP6 } from "../../scripts/topology.ts";
import { BUN, ROOT, daemonCounters, e2eSocket, ensureBinary, keepAliveClient, startServer, tslb } from "../helpers/tslb.ts";
import { join } from "node:path";

const LB_RS6 = "2001:2:0:1::1";
/** The default pool; the exhaustion test restarts the daemon with TINY_POOL. */
const POOL = "61000-65534";
const TINY_POOL = "61000-61001";
const RULES = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS[0]}:8080 --fullnat
-a -t ${VIP}:80 -r ${RS[1]}:8080 --fullnat
-A -u ${VIP}:53 -s rr
-a -u ${VIP}:53 -r ${RS[0]}:5353 --fullnat
-A -u ${VIP}:54 -s rr --proxy-protocol v2
-a -u ${VIP}:54 -r ${RS[1]}:5353 --fullnat
-A -u ${VIP}:55 -s rr
-a -u ${VIP}:55 -r ${RS[0]}:5999 --fullnat
-A -u [${VIP6}]:55 -s rr
-a -u [${VIP6}]:55 -r [${RS6[0]}]:5999 --fullnat
-A -t [${VIP6}]:80 -s rr
-a -t [${VIP6}]:80 -r [${RS6[0]}]:8080 --fullnat
-a -t [${VIP6}]:80 -r [${RS6[1]}]:8080 --fullnat
-A -t ${VIP}:81 -s rr
-a -t ${VIP}:81 -r [${RS6[0]}]:8080 --fullnat
-A -t [${VIP6}]:81 -s rr
-a -t [${VIP6}]:81 -r ${RS[1]}:8080 --fullnat
`;

ensureBinary();
const topo = new Topology("e2efnat", true);
const socket = e2eSocket("fnat");
const servers: ReturnType<typeof Bun.spawn>[] = [];
const lb = () => topo.ns.lb;
let pool = POOL;
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin, env: { TSLB_FULLNAT_PORTS: pool } });
const client = (ns: string, ...args: string[]) => topo.exec(ns, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
const ipRules = (af: "-4" | "-6") => topo.ip(lb(), af, "rule", "show");

const e2e = suite("e2e full NAT");

e2e.before(async () => {
  topo.up();
  servers.push(await startServer(topo.ns.rs1, "rs1", `${RS[0]},${RS6[0]}`), await startServer(topo.ns.rs2, "rs2", `${RS[1]},${RS6[1]}`));
});

e2e.after(() => {
  tslb(lb(), socket, ["--shutdown"]);
  for (const p of servers) p.kill();
  topo.destroy();
});

e2e("without full NAT the servers' replies go to their router and are lost (the check can fail)", () => {
  assert.is(cli(["-R"], `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS[0]}:8080 -m\n`).code, 0);
  const lines = client(topo.ns.cl, "http", VIP, "80", "1");
  assert.match(lines[0], /^error/);
  assert.is(cli(["-C"]).code, 0);
});

e2e("-R with --fullnat: -L shows FullNat, -S writes --fullnat", () => {
  const r = cli(["-R"], RULES);
  assert.is(r.err, "");
  assert.is(r.code, 0);
  const list = cli(["-L", "-n"]).out;
  assert.match(list, new RegExp(`-> ${RS[0].replace(/\./g, "\\.")}:8080\\s+FullNat\\s+1`));
  assert.match(cli(["-S", "-n"]).out, new RegExp(`-a -t ${VIP}:80 -r ${RS[0]}:8080 --fullnat -w 1`));
});

e2e("20 HTTP requests are balanced rr 10/10; each server sees the balancer's address", () => {
  const lines = client(topo.ns.cl, "http", VIP, "80", "20");
  assert.is(lines.length, 20);
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${LB_RS}`, `request ${i}`));
});

e2e("UDP through full NAT", () => {
  assert.equal(client(topo.ns.cl, "udp", VIP, "53", "hello"), [`rs1 ${LB_RS} hello`]);
});

e2e("ICMP port unreachable from a real server comes back through both rewrites", () => {
  // rs1 sends it to the balancer's address about laddr:lport → rs1:5999; the client gets
  // it from the VIP about its own datagram.
  assert.equal(client(topo.ns.cl, "udp", VIP, "55", "nobody listens"), ["error ECONNREFUSED"]);
  // IPv6: the error reaches tslb as a raw-socket copy (see README) and is translated the same.
  assert.equal(client(topo.ns.cl, "udp", VIP6, "55", "nobody listens"), ["error ECONNREFUSED"]);
});

e2e("UDP with --proxy-protocol v2: the first datagram of a flow carries the client's address", () => {
  assert.equal(client(topo.ns.cl, "udp", VIP, "54", "hi"), [`rs2 ${LB_RS} hi proxy=${CL}`]);
});

e2e("IPv6: 4 requests balanced, each server sees the balancer's IPv6 address", () => {
  const lines = client(topo.ns.cl, "http", VIP6, "80", "4");
  assert.equal(lines, [`rs2 ${LB_RS6}`, `rs1 ${LB_RS6}`, `rs2 ${LB_RS6}`, `rs1 ${LB_RS6}`]);
});

e2e("across families: an IPv4 VIP with an IPv6 server (NAT46) and an IPv6 VIP with an IPv4 server (NAT64)", () => {
  assert.equal(client(topo.ns.cl, "http", VIP, "81", "2"), [`rs1 ${LB_RS6}`, `rs1 ${LB_RS6}`]);
  assert.equal(client(topo.ns.cl, "http", VIP6, "81", "2"), [`rs2 ${LB_RS}`, `rs2 ${LB_RS}`]);
  const up = client(topo.ns.cl, "upload", VIP, "81", String(1024 * 1024));
  assert.equal(up, [`rs1 ${LB_RS6} ${1024 * 1024}`]);
});

e2e("a 5 MB upload crosses full NAT intact", () => {
  const lines = client(topo.ns.cl, "upload", VIP, "80", String(5 * 1024 * 1024));
  assert.match(lines[0], /^rs[12] .*5242880/);
});

e2e("the host keeps working: local rule moved, pool reserved, replies to the pool caught", () => {
  const rules = ipRules("-4");
  assert.match(rules, /^98:\s+from all iif tslb0 lookup local/m);
  assert.match(rules, new RegExp(`^99:\\s+from all to ${LB_RS} ipproto tcp dport ${POOL} lookup`, "m"));
  assert.match(rules, /^100:\s+from all lookup local/m);
  assert.not.match(rules, /^0:\s+from all lookup local/m);
  assert.match(ipRules("-6"), new RegExp(`^99:\\s+from all to ${LB_RS6} ipproto tcp dport ${POOL} lookup`, "m"));
  assert.match(topo.exec(lb(), ["sysctl", "-n", "net.ipv4.ip_local_reserved_ports"]).out, new RegExp(POOL));
  // The balancer's own connections to a real server still work (health checks, operators).
  assert.match(topo.exec(lb(), [BUN, join(ROOT, "scripts/client.ts"), "http", RS[0], "8080", "1"]).out, /^rs1 /);
});

e2e("-L -n -c --fullnat-info shows a held connection's local address and pool port; -L -n --laddr counts it", async () => {
  const held = keepAliveClient(topo.ns.cl, VIP, "80");
  try {
    const server = (await held.ask()).split(" ")[0]; // "rs1" or "rs2"
    assert.match(server, /^rs[12]$/);
    const rs = RS[Number(server.slice(2)) - 1];
    const esc = (t: string) => t.replace(/[.[\]]/g, "\\$&");
    const info = cli(["-L", "-n", "-c", "--fullnat-info"]);
    assert.is(info.code, 0);
    const lines = info.out.split("\n");
    assert.is(lines[1], "pro expire state       source             virtual            destination        local");
    const row = lines.find((l) => new RegExp(`^TCP .* ESTABLISHED .* ${esc(VIP)}:80\\s+${esc(rs)}:8080\\s+`).test(l));
    assert.ok(row, info.out);
    const m = new RegExp(` ${esc(LB_RS)}:(\\d+)$`).exec(row!);
    assert.ok(m, row);
    const port = Number(m![1]);
    assert.ok(port >= 61000 && port <= 65534, `local port ${port}`);
    // Plain -c is ipvsadm's: the destination is the last column, no local address.
    const plain = cli(["-L", "-n", "-c"]).out;
    assert.is(plain.split("\n")[1], "pro expire state       source             virtual            destination");
    assert.not.match(plain, `${LB_RS}:${port}`);
    assert.ok(plain.split("\n").some((l) => new RegExp(`^TCP .* ESTABLISHED .* ${esc(VIP)}:80\\s+${esc(rs)}:8080$`).test(l)), plain);

    const laddr = cli(["-L", "-n", "--laddr"]);
    assert.is(laddr.code, 0);
    const out = laddr.out.split("\n");
    assert.equal(out.slice(0, 3), [
      "FullNat local addresses (ports 61000-65534, 4535 per address and real server)",
      "Prot LocalAddress:Port",
      "  -> RemoteAddress:Port           LocalAddress    InUse",
    ]);
    assert.ok(out.includes(`TCP  ${VIP}:80`), laddr.out);
    assert.ok(out.includes(`TCP  [${VIP6}]:80`), laddr.out);
    const use = out.find((l) => l.startsWith(`  -> ${rs}:8080 `));
    const um = new RegExp(`^  -> ${esc(rs)}:8080\\s+${esc(LB_RS)}\\s+(\\d+)$`).exec(use ?? "");
    assert.ok(um, laddr.out);
    assert.ok(Number(um![1]) >= 1, `in use ${um![1]}`);
    assert.ok(out.some((l) => new RegExp(`^  -> \\[${esc(RS6[0])}\\]:8080\\s+${esc(LB_RS6)}\\s+\\d+$`).test(l)), laddr.out);
    // Not with -c.
    const bad = cli(["-L", "-n", "-c", "--laddr"]);
    assert.equal([bad.code, bad.err.trim()], [2, "options conflicts in the list command"]);
  } finally {
    held.stop();
  }
});

e2e("pool exhaustion: 2 ports per server, 5 held connections: the fifth is refused and counted, the others carry on", async () => {
  assert.is(tslb(lb(), socket, ["--shutdown"]).code, 0);
  pool = TINY_POOL;
  assert.is(cli(["-R"], RULES).code, 0);
  assert.match(ipRules("-4"), new RegExp(`dport ${TINY_POOL} lookup`));
  const before = await daemonCounters(socket);
  const held = Array.from({ length: 4 }, () => keepAliveClient(topo.ns.cl, VIP, "80"));
  try {
    const first = await Promise.all(held.map((k) => k.ask()));
    first.forEach((a) => assert.match(a, /^rs[12] /));
    // The fifth connection is refused with a reset at once (not left to time out).
    assert.equal(client(topo.ns.cl, "http", VIP, "80", "1"), [`error connect ECONNREFUSED ${VIP}:80`]);
    const after = await daemonCounters(socket);
    assert.ok(after.fullnat_no_port > before.fullnat_no_port, `fullnat_no_port ${before.fullnat_no_port} → ${after.fullnat_no_port}`);
    const again = await Promise.all(held.map((k) => k.ask()));
    assert.equal(again, first, "established connections unharmed, same servers");
  } finally {
    for (const k of held) k.stop();
  }
});

e2e("shutdown restores the local rule and the reserved ports", () => {
  assert.is(tslb(lb(), socket, ["--shutdown"]).code, 0);
  const rules = ipRules("-4");
  assert.match(rules, /^0:\s+from all lookup local/m);
  assert.not.match(rules, /^(98|99|100):/m);
  assert.match(ipRules("-6"), /^0:\s+from all lookup local/m);
  assert.is(topo.exec(lb(), ["sysctl", "-n", "net.ipv4.ip_local_reserved_ports"]).out.trim(), "");
});

e2e.run();
