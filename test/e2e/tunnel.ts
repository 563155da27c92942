// End to end, tunnelling (-i) from the balancer to real servers that have no ipip/fou
// modules: each real server runs `tslb --decap` with the VIP on lo and answers the client
// directly. IPIP and GUE, rr 10/10 over 20 requests, and a large upload with DF set
// (path MTU discovery through the tunnel's smaller MTU).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { CL, CL6, RS, RS6, Topology, VIP, VIP6 } from "../../scripts/topology.ts";
import { BIN, BUN, ROOT, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";
import { request } from "../../src/control/client.ts";

ensureBinary();
const topo = new Topology("e2etun");
const socket = e2eSocket("tun");
const procs: ReturnType<typeof Bun.spawn>[] = [];
const cli = (args: string[], stdin?: string) => tslb(topo.ns.lb, socket, args, { stdin });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true, 30).out.trim().split("\n");
const counts = (lines: string[]) => lines.reduce((m, l) => m.set(l, (m.get(l) ?? 0) + 1), new Map<string, number>());

async function firstLine(p: ReturnType<typeof Bun.spawn>, stream: "stdout" | "stderr", want: RegExp): Promise<string> {
  const reader = (p[stream] as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!want.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text;
}

const tun = suite("e2e tunnelling with tslb --decap on the real servers");

tun.before(async () => {
  try {
    topo.up();
    for (let i = 0; i < 2; i++) {
      const ns = i ? topo.ns.rs2 : topo.ns.rs1;
      topo.ip(ns, "addr", "add", `${VIP}/32`, "dev", "lo");
      topo.ip(ns, "addr", "add", `${VIP6}/128`, "dev", "lo");
      for (const k of ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"]) topo.sysctl(ns, k);
      const decap = Bun.spawn(["ip", "netns", "exec", ns, BIN, "--decap", "--foreground", "--vip", `${VIP},${VIP6}`, "--gue-port", "6080"],
        { stdout: "pipe", stderr: "pipe" });
      procs.push(decap);
      await Promise.race([firstLine(decap, "stderr", /ready|listening|decap/i), Bun.sleep(3000)]);
      procs.push(await startServer(ns, `rs${i + 1}`, `${VIP},${VIP6}`, "80", "53"));
    }
  } catch (e) {
    console.error(`setup failed: ${(e as Error).message}`);
    throw e;
  }
});

tun.after(() => {
  cli(["--shutdown"]);
  for (const p of procs) p.kill();
  topo.destroy();
});

tun("IPIP: rr gives 10/10 over 20 requests; each server sees the client's address", () => {
  const r = cli(["-R"], `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS[0]} -i\n-a -t ${VIP}:80 -r ${RS[1]} -i\n`);
  assert.equal([r.code, r.err], [0, ""]);
  const c = counts(client("http", VIP, "80", "20"));
  assert.is(c.get(`rs1 ${CL}`), 10, [...c].join(" "));
  assert.is(c.get(`rs2 ${CL}`), 10);
  assert.match(cli(["-L", "-n", "--tun-info"]).out, /  -> 198\.18\.1\.11:80 +Tunnel  ipip +1 /);
});

tun("GUE: the same through UDP port 6080", () => {
  for (const rs of RS) assert.is(cli(["-e", "-t", `${VIP}:80`, "-r", rs, "-i", "--tun-type", "gue", "--tun-port", "6080"]).code, 0);
  const c = counts(client("http", VIP, "80", "20"));
  assert.is(c.get(`rs1 ${CL}`), 10, [...c].join(" "));
  assert.is(c.get(`rs2 ${CL}`), 10);
});

tun("--check-via-vip on tunnel servers: a server without the VIP on lo is taken out, and back in when it has it", async () => {
  for (const rs of RS) {
    assert.is(cli(["-e", "-t", `${VIP}:80`, "-r", rs, "-i", "--tun-type", "gue", "--tun-port", "6080",
      "--check", "tcp", "--check-interval", "0.5", "--check-fall", "2", "--check-rise", "1", "--check-via-vip"]).code, 0);
  }
  topo.ip(topo.ns.rs2, "addr", "del", `${VIP}/32`, "dev", "lo");
  const state = (rs: string) => new RegExp(`  -> ${rs.replace(/\./g, "\\.")}:80 +tcp +(\\w+)`).exec(cli(["-L", "-n", "--health"]).out)?.[1];
  let s2 = "";
  for (let i = 0; i < 30 && s2 !== "down"; i++) { await Bun.sleep(200); s2 = state(RS[1]) ?? ""; }
  assert.is(s2, "down", cli(["-L", "-n", "--health"]).out);
  assert.is(state(RS[0]), "up", "the real server with the VIP passes the same probe");
  const c = counts(client("http", VIP, "80", "6"));
  assert.is(c.get(`rs1 ${CL}`), 6, [...c].join(" "));
  topo.ip(topo.ns.rs2, "addr", "add", `${VIP}/32`, "dev", "lo");
  // Generous: on a loaded 2-core runner a probe can take a few intervals (recovery is ~1–2 s when idle).
  for (let i = 0; i < 60 && s2 !== "up"; i++) { await Bun.sleep(200); s2 = state(RS[1]) ?? ""; }
  assert.is(s2, "up", cli(["-L", "-n", "--health"]).out);
});

tun("a large upload with DF set completes: ICMP fragmentation-needed from tslb lowers the path MTU", async () => {
  const answer = client("upload", VIP, "80", "300000");
  assert.match(answer[0], /^rs[12] 198\.18\.2\.2 300000$/, answer.join(","));
  // The daemon answered at least one too-big segment with ICMP (counted as tunnel_too_big).
  const r = await request(socket, { op: "drops" });
  assert.ok(r.ok && (r.data as Record<string, number>).tunnel_too_big >= 1, JSON.stringify(r));
});

tun("IPv6 in IPv6: rr over two real servers through the tunnel", () => {
  const r = cli(["-R"], `-A -t [${VIP6}]:80 -s rr\n-a -t [${VIP6}]:80 -r ${RS6[0]} -i\n-a -t [${VIP6}]:80 -r ${RS6[1]} -i\n`);
  assert.equal([r.code, r.err], [0, ""]);
  const c = counts(client("http", VIP6, "80", "6"));
  assert.is(c.get(`rs1 ${CL6}`), 3, [...c].join(" "));
  assert.is(c.get(`rs2 ${CL6}`), 3);
});

tun.run();
