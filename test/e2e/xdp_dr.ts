// End to end, direct routing on the XDP hand-off (--xdp), IPv4 and IPv6: client, real
// servers and tslb's TAP on one bridge, an XDP program on the client's bridge port. The
// client's frames to the VIP go straight into tslb's AF_XDP socket (not through the bridge
// to the TAP), and leave through the TAP toward the real server's MAC as on the TUN path;
// the servers' replies bypass tslb. nginx real servers listen on the VIP; every byte of a
// 5 MiB upload is checked at the far end (its small frames by the socket, its full-size
// ones through the TAP path), and the server's stack verifies every checksum.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { DR_CL, DR_CL6, DR_RS, DR_RS6, DR_VIP, DR_VIP6, DrTopology, sh } from "../../scripts/topology.ts";
import { BIG_BYTES, NginxFixture, byteSum, ensureNginx, patternBytes, storedUpload } from "../helpers/nginx.ts";
import { BUN, ROOT, XDP_TX_CSUM, daemonCounters, drRules, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";

const RULES = drRules(DR_VIP, DR_VIP6, DR_RS, DR_RS6);

ensureBinary();
ensureNginx();
const topo = new DrTopology("e2exdpdr");
const socket = e2eSocket("xdpdr");
const fx = new NginxFixture("xdpdr");
const { dir } = fx;
const lb = () => topo.ns.lb;
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin, env: { TSLB_XDP: "lbc", TSLB_BRIDGE: topo.bridge } });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
const hasXdp = () => /\bxdp\b/.test(topo.ip(lb(), "link", "show", "lbc"));

const e2e = suite("e2e XDP hand-off, direct routing");

e2e.before(async () => {
  topo.up();
  await fx.startServers(topo.ns, [DR_VIP, DR_VIP6], [DR_VIP, DR_VIP6], false);
  fx.procs.push(await startServer(topo.ns.rs1, "rs1", DR_VIP, "8081", "53"));
});

e2e.after(() => fx.teardown(topo, socket));

e2e("-R boots a daemon with --xdp on the client's bridge port", () => {
  const r = cli(["-R"], RULES);
  assert.equal([r.code, r.err], [0, ""]);
  assert.ok(hasXdp());
});

e2e("wrr 3:1 gives 15/5 of 20 requests, each server sees the client, the client's frames go by XDP, replies bypass tslb", async () => {
  const before = await daemonCounters(socket);
  const lines = client("http", DR_VIP, "8080", "20");
  const c = new Map<string, number>();
  for (const l of lines) c.set(l, (c.get(l) ?? 0) + 1);
  assert.is(c.get(`rs1 ${DR_CL}`), 15, lines.join(","));
  assert.is(c.get(`rs2 ${DR_CL}`), 5);
  const after = await daemonCounters(socket);
  const taken = after.xdp_rx - before.xdp_rx;
  console.log(`    (${taken} frames taken by XDP of ${after.rx - before.rx} received)`);
  // Each request is at least SYN, ACK, request, FIN from the client; DR never needs the TUN.
  assert.ok(taken >= 20 * 4, `taken ${taken}`);
  assert.is(after.xdp_tun - before.xdp_tun, 0);
  assert.is(after.xdp_dr - before.xdp_dr, 0, "replies taken");
  const svc = cli(["-L", "-n", "--stats"]).out.split("\n").find((l) => l.startsWith(`TCP  ${DR_VIP}:8080`))!.trim().split(/\s+/);
  assert.is(svc[2], "20");
  assert.is(svc[4], "0", "OutPkts");
});

e2e("5 MiB up arrives whole (checksums completed, the server verifies them); 5 MiB down comes straight from the server", () => {
  const sum = byteSum(patternBytes(BIG_BYTES));
  assert.equal(client("put", DR_VIP, "8080", String(BIG_BYTES)), ["201"]);
  assert.is(byteSum(storedUpload(dir)), sum);
  assert.equal(client("download", DR_VIP, "8080", "/big"), [`200 ${BIG_BYTES} ${sum}`]);
});

e2e("UDP request and reply through the VIP", () => {
  assert.equal(client("udp", DR_VIP, "53", "hello"), [`rs1 ${DR_CL} hello`]);
});

e2e("IPv6: requests alternate, each server sees the client, the client's frames go by XDP (the servers resolved with NDP)", async () => {
  const before = await daemonCounters(socket);
  const lines = client("http", DR_VIP6, "8080", "6");
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${DR_CL6}`, `request ${i}: ${lines.join(",")}`));
  const after = await daemonCounters(socket);
  assert.ok(after.xdp_rx - before.xdp_rx >= 6 * 4, `taken ${after.xdp_rx - before.xdp_rx}`);
  assert.is(after.xdp_tun - before.xdp_tun, 0);
});

e2e("tslb doctor counts the DR services' keys", () => {
  const r = cli(["doctor"]);
  assert.is(r.code, 0, r.out + r.err);
  // Two keys per service: to the VIP, and from it (replies, which on this segment go
  // straight to the client, addressed to its MAC: none is taken).
  assert.match(r.out, new RegExp(`\\[ ok \\] xdp hand-off on lbc \\(generic${XDP_TX_CSUM}\\): 6 steal keys`));
});

e2e("tslb --shutdown takes the program off", () => {
  assert.is(tslb(lb(), socket, ["--shutdown"]).code, 0);
  assert.not.ok(hasXdp());
  assert.is(sh(["ip", "-n", lb(), "link", "show", "tslbtap0"], true).code !== 0, true, "tslbtap0 gone");
});

e2e.run();
