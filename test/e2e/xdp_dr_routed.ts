// End to end, direct routing on the XDP hand-off when the balancer is also the real
// servers' router (the bench's shape, and a common one in containers): the client on its
// own segment (lbc), the real servers behind lb's bridge br0 (lbr1, lbr2) with lb as their
// default gateway, the VIP on their lo, tslb's TAP on br0 answering ARP and NDP for the
// VIP. --xdp on all three interfaces. The servers' replies (source: the VIP) reach lb
// addressed to its bridge: with --xdp-forward (the default) the XDP program takes them and
// tslb routes them on to the client from its socket; having heard a server there, tslb
// sends the client's frames for it out of that bridge port's socket, not the TAP. With
// --xdp-forward off the replies take lb's bridge and routing, and the TAP carries the rest.
// nginx real servers; every byte of a 5 MiB upload and download is checked.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { CL, CL6, RS, RS6, Topology, sh, vipOnLo } from "../../scripts/topology.ts";
import { BIG_BYTES, NginxFixture, byteSum, ensureNginx, patternBytes, storedUpload } from "../helpers/nginx.ts";
import { BUN, ROOT, XDP_TX_CSUM, daemonCounters, drRules, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";

const DVIP = "198.18.5.100";
const DVIP6 = "2001:2:0:5::100";
const RULES = drRules(DVIP, DVIP6, RS, RS6);

ensureBinary();
ensureNginx();
const topo = new Topology("e2exdpdrr");
const socket = e2eSocket("xdpdrr");
const fx = new NginxFixture("xdpdrr");
const { dir } = fx;
const lb = () => topo.ns.lb;
let env: Record<string, string> = { TSLB_XDP: "lbc,lbr1,lbr2", TSLB_BRIDGE: "br0" };
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin, env });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
/** Frames tslb wrote into its TAP (the TAP's receive count, as the kernel sees it). */
const tapFrames = () => Number(sh(["ip", "netns", "exec", lb(), "cat", "/sys/class/net/tslbtap0/statistics/rx_packets"]).out.trim());

const e2e = suite("e2e XDP hand-off, direct routing, the balancer as the servers' router");

e2e.before(async () => {
  topo.up();
  const { cl, rs1, rs2 } = topo.ns;
  // A fixed bridge MAC: the TAP joining must not change the gateway MAC the servers know.
  topo.ip(lb(), "link", "set", "br0", "address", "02:00:c6:12:01:01");
  topo.ip(lb(), "route", "add", `${DVIP}/32`, "dev", "br0");
  topo.ip(lb(), "-6", "route", "add", `${DVIP6}/128`, "dev", "br0");
  topo.ip(cl, "route", "add", `${DVIP}/32`, "via", "198.18.2.1");
  topo.ip(cl, "-6", "route", "add", `${DVIP6}/128`, "via", "2001:2:0:2::1");
  for (const n of [rs1, rs2]) vipOnLo(n, DVIP, DVIP6);
  await fx.startServers(topo.ns, [DVIP, DVIP6], [DVIP, DVIP6], false);
  fx.procs.push(await startServer(rs1, "rs1", DVIP, "8081", "53"));
});

e2e.after(() => fx.teardown(topo, socket));

e2e("-R boots a daemon with --xdp on the client's interface and the bridge ports", () => {
  const r = cli(["-R"], RULES);
  assert.equal([r.code, r.err], [0, ""]);
});

e2e("wrr 3:1 gives 15/5 of 20 requests; replies are routed by tslb, and the client's frames leave by the servers' ports", async () => {
  // The first exchange teaches tslb where each server is.
  client("http", DVIP, "8080", "4");
  const before = await daemonCounters(socket);
  const tap0 = tapFrames();
  const lines = client("http", DVIP, "8080", "20");
  const c = new Map<string, number>();
  for (const l of lines) c.set(l, (c.get(l) ?? 0) + 1);
  assert.is(c.get(`rs1 ${CL}`), 15, lines.join(","));
  assert.is(c.get(`rs2 ${CL}`), 5);
  const after = await daemonCounters(socket);
  const taken = after.xdp_rx - before.xdp_rx;
  const replies = after.xdp_dr - before.xdp_dr;
  const viaTap = tapFrames() - tap0;
  console.log(`    (${taken} frames taken by XDP, ${replies} of them replies; ${viaTap} frames through the TAP)`);
  // Each request: at least SYN, ACK, request, FIN from the client, and SYN-ACK, response, FIN back.
  assert.ok(replies >= 20 * 3, `replies ${replies}`);
  assert.ok(taken - replies >= 20 * 4, `client frames ${taken - replies}`);
  assert.is(after.xdp_tun - before.xdp_tun, 0);
  assert.ok(viaTap <= 2, `through the TAP ${viaTap}`);
  // IPVS's DR statistics: the replies are not the connection's (OutPkts stays 0).
  const svc = cli(["-L", "-n", "--stats"]).out.split("\n").find((l) => l.startsWith(`TCP  ${DVIP}:8080`))!.trim().split(/\s+/);
  assert.is(svc[4], "0", "OutPkts");
});

e2e("5 MiB up and 5 MiB down arrive whole (small frames by the sockets, full-size ones by the kernel)", async () => {
  const sum = byteSum(patternBytes(BIG_BYTES));
  const before = await daemonCounters(socket);
  assert.equal(client("put", DVIP, "8080", String(BIG_BYTES)), ["201"]);
  assert.is(byteSum(storedUpload(dir)), sum);
  assert.equal(client("download", DVIP, "8080", "/big"), [`200 ${BIG_BYTES} ${sum}`]);
  const after = await daemonCounters(socket);
  assert.ok(after.xdp_dr > before.xdp_dr);
});

e2e("UDP request and reply", () => {
  assert.equal(client("udp", DVIP, "53", "hello"), [`rs1 ${CL} hello`]);
});

e2e("IPv6: requests alternate, each server sees the client, the replies are routed by tslb", async () => {
  const before = await daemonCounters(socket);
  const lines = client("http", DVIP6, "8080", "6");
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${CL6}`, `request ${i}: ${lines.join(",")}`));
  const after = await daemonCounters(socket);
  assert.ok(after.xdp_dr - before.xdp_dr >= 6 * 3, `replies ${after.xdp_dr - before.xdp_dr}`);
  // The first SYN waits for neighbour discovery instead of leaving at once, so the client is
  // not learnt from it: the first SYN-ACK may take the TUN (the kernel routes it).
  assert.ok(after.xdp_tun - before.xdp_tun <= 2, `through the TUN ${after.xdp_tun - before.xdp_tun}`);
});

e2e("tslb doctor: the DR replies' keys, and the forwarding on", () => {
  const r = cli(["doctor"]);
  assert.is(r.code, 0, r.out + r.err);
  // Per DR service: its VIP and port as destination and as the replies' source.
  assert.match(r.out, new RegExp(`\\[ ok \\] xdp hand-off on lbc \\(generic${XDP_TX_CSUM}\\), lbr1 \\(generic${XDP_TX_CSUM}\\), lbr2 \\(generic${XDP_TX_CSUM}\\): 6 steal keys`));
  assert.match(r.out, /DR replies crossing this host .* are routed by tslb \(--xdp-forward on\)/);
});

e2e("--xdp-forward off: the replies take lb's bridge and routing, the client's frames the TAP", async () => {
  assert.is(cli(["--shutdown"]).code, 0);
  env = { ...env, TSLB_XDP_FORWARD: "off" };
  const r = cli(["-R"], RULES);
  assert.equal([r.code, r.err], [0, ""]);
  const before = await daemonCounters(socket);
  const tap0 = tapFrames();
  const lines = client("http", DVIP, "8080", "8");
  assert.is(lines.filter((l) => l.endsWith(` ${CL}`)).length, 8, lines.join(","));
  const after = await daemonCounters(socket);
  assert.is(after.xdp_dr - before.xdp_dr, 0);
  assert.ok(tapFrames() - tap0 >= 8 * 4, `through the TAP ${tapFrames() - tap0}`);
  assert.match(cli(["doctor"]).out, /DR replies crossing this host are left to its bridge and routing \(--xdp-forward off\)/);
});

e2e.run();
