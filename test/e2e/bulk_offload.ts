// End to end, the bulk offload (--bulk-offload, on by default with --xdp): once an
// established NAT or full-NAT connection sends a frame over 1 024 bytes, a tc program on
// the hand-off's interfaces rewrites its bulk frames in the kernel. Transfers both ways,
// IPv4 and IPv6, must arrive whole with almost nothing through the TUN; the kernel's
// frames must still count in the service's statistics; and the checksums the program
// updates must be right in both of the kernel's states: a partial sum (a super-packet,
// finished at the egress) and a complete one (a real server sending without checksum
// offload). With the veths' transmit checksumming off, the balancer finishes partial sums
// in software and the receivers verify every segment: a wrong sum stalls the transfer.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CL6, LB_RS, RS, RS6, Topology, VIP, VIP6, sh } from "../../scripts/topology.ts";
import { BIG_BYTES, NginxFixture, byteSum, ensureNginx, patternBytes, takeUpload } from "../helpers/nginx.ts";
import { BUN, ROOT, daemonCounters, e2eSocket, ensureBinary, tslb } from "../helpers/tslb.ts";

const RULES = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS[0]}:8080 -m
-A -t ${VIP}:81 -s rr
-a -t ${VIP}:81 -r ${RS[1]}:8080 --fullnat
-A -t [${VIP6}]:80 -s rr
-a -t [${VIP6}]:80 -r [${RS6[1]}]:8080 -m
`;
let xdpDevs = "lbc,lbr1,lbr2";

ensureBinary();
ensureNginx();
if (sh(["which", "ethtool"], true).code !== 0) {
  sh(["timeout", "300", "apt-get", "install", "-y", "-qq", "ethtool"], true);
}
const topo = new Topology("e2ebulk");
const socket = e2eSocket("bulk");
const fx = new NginxFixture("bulk");
const { dir } = fx;
const lb = () => topo.ns.lb;
let bulkOffload = "on";
const cli = (args: string[], stdin?: string) =>
  tslb(lb(), socket, args, { stdin, env: { TSLB_XDP: xdpDevs, TSLB_BULK_OFFLOAD: bulkOffload } });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
const bigSum = () => byteSum(patternBytes(BIG_BYTES));
const ethtool = (ns: string, dev: string, ...args: string[]) => topo.exec(ns, ["ethtool", "-K", dev, ...args], false);

/** Runs `transfer`; returns how many connections were offloaded and how many packets came in through the TUN meanwhile. */
async function measure(transfer: () => void): Promise<{ offloaded: number; viaTun: number }> {
  const before = await daemonCounters(socket);
  transfer();
  const after = await daemonCounters(socket);
  const viaTun = (after.rx - after.xdp_rx) - (before.rx - before.xdp_rx);
  const offloaded = after.offloaded - before.offloaded;
  console.log(`    (${offloaded} connection(s) offloaded, ${viaTun} packets through the TUN)`);
  return { offloaded, viaTun };
}

/** A service's exact counters: Conns, InPkts, OutPkts, InBytes, OutBytes. */
function serviceStats(svc: string): number[] {
  const line = cli(["-L", "-n", "--stats", "--exact"]).out.split("\n").find((l) => l.startsWith(`TCP  ${svc} `));
  assert.ok(line, `no line for ${svc}`);
  return line!.trim().split(/\s+/).slice(2).map(Number);
}

const e2e = suite("e2e bulk offload");

e2e.before(async () => {
  topo.up();
  await fx.startServers(topo.ns, [RS[0], RS6[0]], [RS[1], RS6[1]], false);
});

e2e.after(() => fx.teardown(topo, socket));

e2e("-R with --xdp: tslb doctor reports the bulk offload on the hand-off's interfaces", () => {
  const r = cli(["-R"], RULES);
  assert.is(r.code, 0, r.err);
  const d = cli(["doctor"]);
  assert.match(d.out, /\[ ok \] bulk offload on \(lbc, lbr1, lbr2\)/);
});

e2e("5 MiB down arrives whole; the connection is offloaded and its super-packets skip the TUN", async () => {
  const { offloaded, viaTun } = await measure(() => assert.equal(client("download", VIP, "80", "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]));
  assert.is(offloaded, 1);
  // Through the TUN: the frames before the entries are in, not the whole download (80
  // super-packets of 64 KiB, or 3 600 segments with TUN offloads off).
  assert.ok(viaTun <= (process.env.TSLB_OFFLOAD === "off" ? 200 : 20), `through the TUN ${viaTun}`);
});

e2e("the kernel's frames count in the service's statistics (OutBytes covers the download)", async () => {
  const before = serviceStats(`${VIP}:80`);
  assert.equal(client("download", VIP, "80", "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]);
  // Folded in every 250 ms by the worker that offloaded the connection.
  await Bun.sleep(1500);
  const after = serviceStats(`${VIP}:80`);
  assert.is(after[0] - before[0], 1, "one connection");
  assert.ok(after[4] - before[4] >= BIG_BYTES, `OutBytes ${after[4] - before[4]}`);
  assert.ok(after[2] - before[2] >= 10, `OutPkts ${after[2] - before[2]}`);
});

e2e("5 MiB up arrives whole (the client's frames rewritten toward the real server)", async () => {
  const { offloaded } = await measure(() => assert.equal(client("put", VIP, "80", String(BIG_BYTES)), ["201"]));
  assert.is(offloaded, 1);
  assert.is(byteSum(takeUpload(dir)), bigSum());
});

e2e("full NAT: the server sees tslb's address; 5 MiB down arrives whole, offloaded", async () => {
  assert.equal(client("http", VIP, "81", "2"), [`rs2 ${LB_RS}`, `rs2 ${LB_RS}`]);
  const { offloaded } = await measure(() => assert.equal(client("download", VIP, "81", "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]));
  assert.is(offloaded, 1);
});

e2e("IPv6: the client's address preserved; 5 MiB down and up arrive whole, offloaded", async () => {
  assert.equal(client("http", VIP6, "80", "1"), [`rs2 ${CL6}`]);
  const down = await measure(() => assert.equal(client("download", VIP6, "80", "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]));
  assert.is(down.offloaded, 1);
  const up = await measure(() => assert.equal(client("put", VIP6, "80", String(BIG_BYTES)), ["201"]));
  assert.is(up.offloaded, 1);
  assert.is(byteSum(takeUpload(dir)), bigSum());
});

e2e("partial sums: with transmit checksumming off on lb's interfaces, lb finishes them in software and the receivers verify them", async () => {
  for (const dev of ["lbc", "lbr1", "lbr2"]) ethtool(lb(), dev, "tx", "off");
  for (const [vip, port] of [[VIP, "80"], [VIP, "81"], [VIP6, "80"]]) {
    const { offloaded } = await measure(() => assert.equal(client("download", vip, port, "/big"), [`200 ${BIG_BYTES} ${bigSum()}`], `${vip}:${port}`));
    assert.is(offloaded, 1);
  }
  assert.equal(client("put", VIP, "80", String(BIG_BYTES)), ["201"]);
  assert.is(byteSum(takeUpload(dir)), bigSum());
});

e2e("complete sums: real servers and client sending without checksum offload (full-size frames, each summed), receivers verify", async () => {
  for (const ns of [topo.ns.rs1, topo.ns.rs2, topo.ns.cl]) ethtool(ns, "eth0", "tx", "off");
  for (const [vip, port] of [[VIP, "80"], [VIP, "81"], [VIP6, "80"]]) {
    const { offloaded } = await measure(() => assert.equal(client("download", vip, port, "/big"), [`200 ${BIG_BYTES} ${bigSum()}`], `${vip}:${port}`));
    assert.is(offloaded, 1);
  }
  for (const vip of [VIP, VIP6]) {
    assert.equal(client("put", vip, "80", String(BIG_BYTES)), ["201"]);
    assert.is(byteSum(takeUpload(dir)), bigSum());
  }
});

/**
 * A slow download (16 KiB every 20 ms through a 32 KiB receive buffer: about 6 s for the
 * 5 MiB file) from the client, started in the background; bytes() reads how far it got.
 */
function slowDownload(): { bytes: () => number; stop: () => void } {
  const file = join(dir, "slow-progress");
  const py = `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
s.connect(("${VIP}", 80))
s.sendall(b"GET /big HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n")
n = 0
s.settimeout(0.02)
while True:
    try:
        b = s.recv(16384)
        if not b: break
        n += len(b)
    except socket.timeout:
        pass
    open("${file}.tmp", "w").write(str(n))
    import os; os.replace("${file}.tmp", "${file}")
    time.sleep(0.02)
`;
  const p = Bun.spawn(["timeout", "30", "ip", "netns", "exec", topo.ns.cl, "python3", "-c", py], { stdout: "ignore", stderr: "inherit" });
  return {
    bytes: () => {
      try {
        return Number(readFileSync(file, "utf8")) || 0;
      } catch {
        return 0;
      }
    },
    stop: () => p.kill(),
  };
}

e2e("a real server removed (-d) during an offloaded transfer: its frames stop within a second, as through the TUN", async () => {
  const before = await daemonCounters(socket);
  const dl = slowDownload();
  try {
    await Bun.sleep(1500);
    const started = dl.bytes();
    assert.ok(started > 0 && started < BIG_BYTES, `started ${started}`);
    assert.is((await daemonCounters(socket)).offloaded - before.offloaded, 1, "offloaded");
    assert.is(cli(["-d", "-t", `${VIP}:80`, "-r", `${RS[0]}:8080`]).code, 0);
    // The rule change makes the worker take the kernel's entries out; the connection's
    // next frame reaches tslb, which expires it (--expire-nodest-conn 1) and resets it.
    await Bun.sleep(1000);
    const at = dl.bytes();
    await Bun.sleep(1500);
    const later = dl.bytes();
    console.log(`    (${started} bytes before -d, ${at} a second after, ${later} 1.5 s later)`);
    assert.ok(later - at <= 32768, `still flowing: ${later - at} bytes`);
    assert.ok(later < BIG_BYTES);
  } finally {
    dl.stop();
    assert.is(cli(["-a", "-t", `${VIP}:80`, "-r", `${RS[0]}:8080`, "-m"]).code, 0);
  }
});

/** Bytes br0 has received so far (as the host's interface: what the bridge passed up). */
const bridgeRx = () => Number(topo.exec(lb(), ["cat", "/sys/class/net/br0/statistics/rx_bytes"], true).out.trim());

/** Polls doctor until its bulk offload line matches `re` (the daemon follows a bridge's ports every second). */
async function doctorShows(re: RegExp): Promise<void> {
  let out = "";
  for (let i = 0; i < 40 && !re.test(out); i++) {
    if (i > 0) await Bun.sleep(100);
    out = cli(["doctor"]).out;
  }
  assert.match(out, re);
}

e2e("--xdp on the bridge: its ports get the tc program too, also a port that joins later, and a download's frames leave from the port, past the bridge", async () => {
  assert.is(tslb(lb(), socket, ["--shutdown"]).code, 0);
  xdpDevs = "lbc,br0";
  // lbr2 (toward rs2) joins the bridge after the start. br0's MAC is pinned first: a
  // bridge without one takes its lowest port's, and rs2's neighbour entry must stay right.
  const brMac = /link\/ether ([0-9a-f:]{17})/.exec(topo.exec(lb(), ["ip", "link", "show", "br0"], false).out)![1];
  topo.exec(lb(), ["ip", "link", "set", "br0", "address", brMac], false);
  topo.exec(lb(), ["ip", "link", "set", "lbr2", "nomaster"], false);
  try {
    assert.is(cli(["-R"], RULES).code, 0);
    assert.match(cli(["doctor"]).out, /\[ ok \] bulk offload on \(lbc, br0, lbr1 \(port of br0\)\)/);
  } finally {
    topo.exec(lb(), ["ip", "link", "set", "lbr2", "master", "br0"], false);
  }
  await doctorShows(/\[ ok \] bulk offload on \(lbc, br0, lbr1 \(port of br0\), lbr2 \(port of br0\)\)/);
  // VIP:81 and [VIP6]:80 reach rs2 through lbr2: their transfers pass br0 only if it has the program.
  for (const [vip, port] of [[VIP, "80"], [VIP, "81"], [VIP6, "80"]]) {
    const rx = bridgeRx();
    const { offloaded, viaTun } = await measure(() => assert.equal(client("download", vip, port, "/big"), [`200 ${BIG_BYTES} ${bigSum()}`], `${vip}:${port}`));
    const passedUp = bridgeRx() - rx;
    console.log(`    (${passedUp} bytes passed up by br0)`);
    assert.is(offloaded, 1);
    assert.ok(viaTun <= (process.env.TSLB_OFFLOAD === "off" ? 200 : 20), `through the TUN ${viaTun}`);
    // The handshake and the frames before the entries are in; not the transfer.
    assert.ok(passedUp < BIG_BYTES / 4, `passed up by br0: ${passedUp} bytes`);
  }
  assert.equal(client("put", VIP, "80", String(BIG_BYTES)), ["201"]);
  assert.is(byteSum(takeUpload(dir)), bigSum());
  // A port that leaves the bridge loses the program.
  topo.exec(lb(), ["ip", "link", "set", "lbr2", "nomaster"], false);
  try {
    await doctorShows(/\[ ok \] bulk offload on \(lbc, br0, lbr1 \(port of br0\)\):/);
  } finally {
    topo.exec(lb(), ["ip", "link", "set", "lbr2", "master", "br0"], false);
  }
  await doctorShows(/lbr2 \(port of br0\)/);
});

e2e("--bulk-offload off: nothing offloaded, the transfer goes through the TUN and arrives whole", async () => {
  assert.is(tslb(lb(), socket, ["--shutdown"]).code, 0);
  bulkOffload = "off";
  assert.is(cli(["-R"], RULES).code, 0);
  assert.match(cli(["doctor"]).out, /bulk offload off: NAT transfers go through the TUN/);
  const { offloaded, viaTun } = await measure(() => assert.equal(client("download", VIP, "80", "/big"), [`200 ${BIG_BYTES} ${bigSum()}`]));
  assert.is(offloaded, 0);
  assert.ok(viaTun >= 40, `through the TUN ${viaTun}`);
});

e2e.run();
