// The full-length SYN flood of the reliability issue (not part of npm test):
//   bun scripts/flood.ts [SECONDS=30] [CONN_MAX=65536]
// Builds the NAT topology, boots tslb with --conn-max CONN_MAX, starts wrk (keep-alive,
// 50 connections) through the VIP, floods the VIP with spoofed SYNs from the client
// namespace at the highest rate one core sends, and reports: flood rate, the table size
// during and after, wrk's requests and errors, tslb's RSS. wrk comes from Debian's
// package (installed if missing). Everything runs under `timeout` and cleans up.
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { RS, Topology, VIP, sh } from "./topology.ts";
import { request } from "../src/control/client.ts";

const ROOT = join(import.meta.dir, "..");
const BIN = join(ROOT, "build", "tslb");
const BUN = process.execPath;
const secs = Number(process.argv[2] ?? 30);
const connMax = Number(process.argv[3] ?? 65536);
const socket = `/tmp/tslb-flood-${process.pid}/tslb.sock`;

if (sh(["which", "wrk"], true).code !== 0) sh(["timeout", "300", "apt-get", "install", "-y", "-qq", "wrk"]);
sh([BUN, join(ROOT, "scripts/build.ts")]);
const topo = new Topology("flood").up();
const procs: ReturnType<typeof Bun.spawn>[] = [];
try {
  for (let i = 0; i < 2; i++) {
    procs.push(Bun.spawn(["ip", "netns", "exec", i ? topo.ns.rs2 : topo.ns.rs1, BUN, join(ROOT, "scripts/servers.ts"), `rs${i + 1}`, RS[i], "8080", "5353"],
      { stdout: "ignore", stderr: "inherit", env: { ...process.env, TSLB_SERVER_TTL: String(secs + 60) } }));
  }
  await Bun.sleep(500);
  const rules = `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS[0]}:8080 -m\n-a -t ${VIP}:80 -r ${RS[1]}:8080 -m\n`;
  const r = Bun.spawnSync(["ip", "netns", "exec", topo.ns.lb, BIN, "--socket", socket, "--conn-max", String(connMax), "-R"], { stdin: new TextEncoder().encode(rules) });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  const pid = ((await request(socket, { op: "ping" })) as { data: { pid: number } }).data.pid;
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  const rss0 = rss();
  const wrk = Bun.spawn(["timeout", String(secs + 30), "ip", "netns", "exec", topo.ns.cl, "wrk", "-t1", "-c50", `-d${secs + 4}s`, "--timeout", "5s", `http://${VIP}/`],
    { stdout: "pipe", stderr: "inherit" });
  await Bun.sleep(2000);
  const flood = Bun.spawn(["timeout", String(secs + 20), "ip", "netns", "exec", topo.ns.cl, BUN, join(ROOT, "scripts/synflood.ts"), VIP, "80", String(secs)],
    { stdout: "pipe", stderr: "inherit" });
  let maxTable = 0, maxRss = 0;
  while (flood.exitCode === null) {
    await Bun.sleep(1000);
    const d = await request(socket, { op: "drops" });
    if (d.ok) maxTable = Math.max(maxTable, (d.data as Record<string, number>).connections);
    maxRss = Math.max(maxRss, rss());
  }
  const floodOut = (await new Response(flood.stdout).text()).trim();
  const wrkOut = await new Response(wrk.stdout).text();
  await Bun.sleep(8000);
  const after = await request(socket, { op: "drops" });
  const table = after.ok ? (after.data as Record<string, number>).connections : -1;
  const reqs = /(\d+) requests in/.exec(wrkOut)?.[1];
  const errs = /Socket errors: (.*)/.exec(wrkOut)?.[1] ?? "none";
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(wrkOut)?.[1] ?? "0";
  console.log(`flood: ${floodOut}`);
  console.log(`table: capacity ${connMax}, at most ${maxTable} entries during the flood, ${table} 8 s after`);
  console.log(`wrk (-c50 keep-alive, ${secs + 4} s, flood in the middle): ${reqs} requests, socket errors: ${errs}, non-2xx: ${non2xx}`);
  console.log(`tslb RSS: ${(rss0 / 1024).toFixed(0)} MiB before, at most ${(maxRss / 1024).toFixed(0)} MiB during`);
  console.log(wrkOut.split("\n").filter((l) => /Latency|Req\/Sec|Requests\/sec/.test(l)).join("\n"));
} finally {
  sh(["ip", "netns", "exec", topo.ns.lb, BIN, "--socket", socket, "--shutdown"], true);
  for (const p of procs) p.kill();
  topo.destroy();
}
