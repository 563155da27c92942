// End to end, the XDP hand-off (--xdp): XDP programs on the balancer's client-side
// interface and on its bridge ports toward the real servers take NAT and full NAT frames
// (IPv4 and IPv6) into tslb's AF_XDP sockets, and tslb sends them on as Ethernet frames, past the
// host's IP stack.
// nginx real servers; every byte is checked at the far end and the receivers verify every
// checksum (veth senders leave theirs partial: tslb completes them).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { CL, CL6, LB_RS, RS, RS6, Topology, VIP, VIP6, sh } from "../../scripts/topology.ts";
import { BIG_BYTES, NginxFixture, byteSum, ensureNginx, patternBytes, storedUpload } from "../helpers/nginx.ts";
import { BUN, ROOT, XDP_TX_CSUM, daemonCounters, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";

const RULES = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS[0]}:8080 -m
-a -t ${VIP}:80 -r ${RS[1]}:8080 -m
-A -u ${VIP}:53 -s rr
-a -u ${VIP}:53 -r ${RS[0]}:5353 -m
-A -t ${VIP}:81 -s rr
-a -t ${VIP}:81 -r ${RS[0]}:8080 --fullnat
-A -t [${VIP6}]:80 -s rr
-a -t [${VIP6}]:80 -r [${RS6[0]}]:8080 -m
-a -t [${VIP6}]:80 -r [${RS6[1]}]:8080 -m
-A -u [${VIP6}]:53 -s rr
-a -u [${VIP6}]:53 -r [${RS6[0]}]:5353 -m
`;
const XDP_DEVS = ["lbc", "lbr1", "lbr2"];

ensureBinary();
ensureNginx();
const topo = new Topology("e2exdp");
const socket = e2eSocket("xdp");
const fx = new NginxFixture("xdp");
const { dir } = fx;
const lb = () => topo.ns.lb;
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin, env: { TSLB_XDP: XDP_DEVS.join(",") } });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
/** Interfaces of lb that carry an XDP program. */
const withXdp = () => XDP_DEVS.filter((d) => /\bxdp\b/.test(topo.ip(lb(), "link", "show", d)));

/**
 * Runs `traffic` and checks what the hand-off took of it: at least `min` frames, at most
 * `maxTun` of them sent on through the TUN (a real server's first SYN, its MAC not learnt yet).
 */
async function byXdp(what: string, min: number, maxTun: number, traffic: () => void): Promise<void> {
  const before = await daemonCounters(socket);
  traffic();
  const after = await daemonCounters(socket);
  const taken = after.xdp_rx - before.xdp_rx;
  const viaTun = after.xdp_tun - before.xdp_tun;
  console.log(`    (${taken} ${what} frames taken by XDP, ${viaTun} of them sent on through the TUN)`);
  assert.ok(taken >= min, `taken ${taken}`);
  assert.ok(viaTun <= maxTun, `through the TUN ${viaTun}`);
}

const e2e = suite("e2e XDP hand-off");

e2e.before(async () => {
  topo.up();
  await fx.startServers(topo.ns, [RS[0], RS6[0]], [RS[1], RS6[1]], false);
  fx.procs.push(await startServer(topo.ns.rs1, "rs1", `${RS[0]},${RS6[0]}`, "8081", "5353"));
});

e2e.after(() => fx.teardown(topo, socket));

e2e("-R boots a daemon with --xdp from TSLB_XDP: a program on each interface", () => {
  const r = cli(["-R"], RULES);
  assert.is(r.err, "");
  assert.is(r.code, 0);
  assert.equal(withXdp(), XDP_DEVS);
});

/** 20 HTTP requests to vip:80 alternate between the servers, each seeing the client's address. */
function alternate(vip: string, cl: string): void {
  const lines = client("http", vip, "80", "20");
  assert.is(lines.length, 20);
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${cl}`, `request ${i}`));
}

// Each request is at least 7 frames both ways.
e2e("20 HTTP requests alternate between the servers, each sees the client's address, nearly all frames by XDP", () =>
  byXdp("IPv4", 20 * 7, 4, () => alternate(VIP, CL)));

e2e("5 MiB down and up arrive whole (checksums completed, receivers verify them)", () => {
  const sum = byteSum(patternBytes(BIG_BYTES));
  assert.equal(client("download", VIP, "80", "/big"), [`200 ${BIG_BYTES} ${sum}`]);
  assert.equal(client("put", VIP, "80", String(BIG_BYTES)), ["201"]);
  assert.is(byteSum(storedUpload(dir)), sum);
});

e2e("UDP request and reply through the VIP", () => {
  assert.equal(client("udp", VIP, "53", "hello"), [`rs1 ${CL} hello`]);
});

e2e("full NAT: the server sees tslb's address, nearly all frames by XDP; 5 MiB down arrives whole", async () => {
  await byXdp("full NAT", 10 * 7, 2, () => assert.equal(client("http", VIP, "81", "10"), new Array(10).fill(`rs1 ${LB_RS}`)));
  // Its small frames by the sockets, its full-size ones through the TUN, in one flow.
  assert.equal(client("download", VIP, "81", "/big"), [`200 ${BIG_BYTES} ${byteSum(patternBytes(BIG_BYTES))}`]);
});

e2e("IPv6: 20 HTTP requests alternate, the client's address preserved, nearly all frames by XDP", () =>
  byXdp("IPv6", 20 * 7, 4, () => alternate(VIP6, CL6)));

e2e("IPv6: 5 MiB down arrives whole; UDP request and reply", () => {
  assert.equal(client("download", VIP6, "80", "/big"), [`200 ${BIG_BYTES} ${byteSum(patternBytes(BIG_BYTES))}`]);
  assert.equal(client("udp", VIP6, "53", "hello"), [`rs1 ${CL6} hello`]);
});

e2e("frames between two other hosts on the bridge are the bridge's: a real server's answer to another is not taken", async () => {
  // rs2's answer leaves port 8080 of a real server, but is addressed to rs1's MAC.
  const before = await daemonCounters(socket);
  const r = topo.exec(topo.ns.rs1, [BUN, join(ROOT, "scripts/client.ts"), "http", RS[1], "8080", "1"], true);
  assert.equal(r.out.trim().split("\n"), [`rs2 ${RS[0]}`]);
  assert.is((await daemonCounters(socket)).xdp_rx - before.xdp_rx, 0);
});

e2e("a real server's answer to the balancer host itself (a health check's, say) is taken and handed back through the TUN", async () => {
  // No connection behind it: tslb hands it to the kernel unchanged, as IPVS lets it pass.
  await byXdp("unbalanced", 1, 100, () => {
    const r = topo.exec(lb(), [BUN, join(ROOT, "scripts/client.ts"), "http", RS[1], "8080", "1"], true);
    assert.equal(r.out.trim().split("\n"), [`rs2 ${LB_RS}`]);
  });
});

e2e("a bridge that takes another MAC: the programs follow it within seconds, and the replies go by XDP again", async () => {
  // As a bridge without a fixed MAC does when its lowest port leaves. The servers learn the
  // new MAC anew (their neighbour entries for the gateway flushed).
  topo.ip(lb(), "link", "set", "br0", "address", "02:00:c6:12:01:fe");
  for (const n of [topo.ns.rs1, topo.ns.rs2]) topo.ip(n, "neigh", "flush", "dev", "eth0");
  await Bun.sleep(2500);
  const before = await daemonCounters(socket);
  alternate(VIP, CL);
  const after = await daemonCounters(socket);
  // What came in by the TUN (received, not taken from a socket): the replies, had the
  // programs kept the old MAC.
  const viaTun = (after.rx - after.xdp_rx) - (before.rx - before.xdp_rx);
  console.log(`    (${after.xdp_rx - before.xdp_rx} frames taken by XDP, ${viaTun} received through the TUN)`);
  assert.ok(after.xdp_rx - before.xdp_rx >= 20 * 7, `taken ${after.xdp_rx - before.xdp_rx}`);
  assert.ok(viaTun <= 4, `through the TUN ${viaTun}`);
});

e2e("tslb doctor names the hand-off's interfaces and keys", () => {
  const r = cli(["doctor"]);
  assert.is(r.code, 0, r.out + r.err);
  // Two services and three real-server keys (80/8080 twice, 53/5353 once) in each family,
  // and the full NAT service (its server's key is one of those).
  assert.match(r.out, new RegExp(`\\[ ok \\] xdp hand-off on lbc \\(generic${XDP_TX_CSUM}\\), lbr1 \\(generic${XDP_TX_CSUM}\\), lbr2 \\(generic${XDP_TX_CSUM}\\): 11 steal keys`));
});

e2e("tslb --shutdown takes the programs off", () => {
  assert.is(tslb(lb(), socket, ["--shutdown"]).code, 0);
  assert.equal(withXdp(), []);
  assert.is(sh(["ip", "-n", lb(), "link", "show", "tslb0"], true).code !== 0, true, "tslb0 gone");
});

e2e.run();
