// End to end, TUN offloads (--offload, IFF_VNET_HDR): bulk transfers through NAT and full
// NAT, IPv4 and IPv6, with nginx real servers. The kernel hands tslb TCP super-packets
// and partial checksums; NAT forwards them as they are (counted in gso_rx), NAT46 cuts
// them into segments (counted in segmented). Every byte is checked at the far end, and
// the receivers verify checksums (tslb never marks a packet's checksum as checked).
// The same transfers with --offload off see no super-packet at all.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { RS, RS6, Topology, VIP, VIP6 } from "../../scripts/topology.ts";
import { BIG_BYTES, NginxFixture, SMALL_BYTES, byteSum, ensureNginx, patternBytes, takeUpload } from "../helpers/nginx.ts";
import { BUN, ROOT, daemonCounters, e2eSocket, ensureBinary, tslb } from "../helpers/tslb.ts";

const RULES = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS[0]}:8080 -m
-A -t [${VIP6}]:80 -s rr
-a -t [${VIP6}]:80 -r [${RS6[1]}]:8080 -m
-A -t ${VIP}:81 -s rr
-a -t ${VIP}:81 -r ${RS[1]}:8080 --fullnat
-A -t ${VIP}:82 -s rr
-a -t ${VIP}:82 -r [${RS6[0]}]:8080 --fullnat
`;

ensureBinary();
ensureNginx();
const topo = new Topology("e2eoff");
const socket = e2eSocket("off");
const fx = new NginxFixture("off");
const { dir } = fx;
const lb = () => topo.ns.lb;
let offload = "on";
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin, env: { TSLB_OFFLOAD: offload } });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
const bigSum = () => byteSum(patternBytes(BIG_BYTES));

function boot(): void {
  const r = cli(["-R"], RULES);
  assert.is(r.err, "");
  assert.is(r.code, 0);
}

const e2e = suite("e2e TUN offloads");

e2e.before(async () => {
  topo.up();
  await fx.startServers(topo.ns, [RS[0], RS6[0]], [RS[1], RS6[1]], false);
  boot();
});

e2e.after(() => fx.teardown(topo, socket));

for (const [name, vip, port] of [["NAT", VIP, "80"], ["NAT IPv6", VIP6, "80"], ["full NAT", VIP, "81"]] as const) {
  e2e(`${name}: 5 MiB down and up arrive whole, as super-packets`, async () => {
    const before = await daemonCounters(socket);
    assert.equal(client("download", vip, port, "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]);
    assert.equal(client("put", vip, port, String(BIG_BYTES)), ["201"]);
    const body = takeUpload(dir);
    assert.equal([body.length, byteSum(body)], [BIG_BYTES, bigSum()]);
    const after = await daemonCounters(socket);
    const gso = after.gso_rx - before.gso_rx;
    console.log(`    (${name}: ${gso} super-packets of ${after.rx - before.rx} reads)`);
    if (offload === "on" && process.env.TSLB_OFFLOAD !== "off") assert.ok(gso > 0, "the kernel handed over super-packets");
    assert.is(after.segmented - before.segmented, 0, "NAT carries them whole");
  });
}

e2e("NAT and full NAT: a small file's header and body segments (and FIN) are joined into one, every byte intact", async () => {
  const before = await daemonCounters(socket);
  const want = `200 ${SMALL_BYTES} ${byteSum(patternBytes(SMALL_BYTES))}`;
  for (let i = 0; i < 20; i++) {
    assert.equal(client("download", VIP, "80", "/small"), [want], `NAT request ${i}`);
    assert.equal(client("download", VIP6, "80", "/small"), [want], `NAT IPv6 request ${i}`);
    assert.equal(client("download", VIP, "81", "/small"), [want], `full NAT request ${i}`);
  }
  const after = await daemonCounters(socket);
  const joined = after.joined - before.joined;
  console.log(`    (${joined} joined writes for 60 responses)`);
  // Joining is opportunistic (both segments must be read in one batch), so any will do.
  assert.ok(joined > 0, "segments were joined");
});

e2e("NAT46 (full NAT, IPv4 VIP, IPv6 server): super-packets are cut into segments", async () => {
  const before = await daemonCounters(socket);
  assert.equal(client("put", VIP, "82", String(BIG_BYTES)), ["201"]);
  const body = takeUpload(dir);
  assert.equal([body.length, byteSum(body)], [BIG_BYTES, bigSum()]);
  assert.equal(client("download", VIP, "82", "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]);
  const after = await daemonCounters(socket);
  if (process.env.TSLB_OFFLOAD !== "off") assert.ok(after.segmented - before.segmented > 0, "segmented in user space");
});

e2e("--offload off: the same transfers, no super-packet", async () => {
  tslb(lb(), socket, ["--shutdown"]);
  offload = "off";
  boot();
  assert.equal(client("download", VIP, "80", "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]);
  assert.equal(client("put", VIP, "81", String(BIG_BYTES)), ["201"]);
  const body = takeUpload(dir);
  assert.equal([body.length, byteSum(body)], [BIG_BYTES, bigSum()]);
  const c = await daemonCounters(socket);
  assert.is(c.gso_rx, 0);
  assert.is(c.segmented, 0);
});

e2e.run();
