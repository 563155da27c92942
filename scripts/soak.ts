// The soak of the reliability issue (not part of npm test):
//   bun scripts/soak.ts [MINUTES=10]
// wrk (keep-alive, 50 connections) through the VIP for MINUTES while a loop edits,
// removes and re-adds destinations every 3 s; samples tslb's RSS and table size every
// 10 s; after wrk stops, waits for the timeouts and checks the table empties. Prints the
// curve and the summary (bench/RESULTS.md keeps them).
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { RS, Topology, VIP, sh } from "./topology.ts";
import { request } from "../src/control/client.ts";

const ROOT = join(import.meta.dir, "..");
const BIN = join(ROOT, "build", "tslb");
const BUN = process.execPath;
const minutes = Number(process.argv[2] ?? 10);
const secs = Math.round(minutes * 60);
const socket = `/tmp/tslb-soak-${process.pid}/tslb.sock`;

if (sh(["which", "wrk"], true).code !== 0) sh(["timeout", "300", "apt-get", "install", "-y", "-qq", "wrk"]);
sh([BUN, join(ROOT, "scripts/build.ts")]);
const topo = new Topology("soak").up();
const procs: ReturnType<typeof Bun.spawn>[] = [];
const cli = (...args: string[]) => sh(["timeout", "30", "ip", "netns", "exec", topo.ns.lb, BIN, "--socket", socket, ...args], true);
try {
  for (let i = 0; i < 2; i++) {
    procs.push(Bun.spawn(["ip", "netns", "exec", i ? topo.ns.rs2 : topo.ns.rs1, BUN, join(ROOT, "scripts/servers.ts"), `rs${i + 1}`, RS[i], "8080", "5353"],
      { stdout: "ignore", stderr: "inherit", env: { ...process.env, TSLB_SERVER_TTL: String(secs + 400) } }));
  }
  await Bun.sleep(500);
  const r = Bun.spawnSync(["ip", "netns", "exec", topo.ns.lb, BIN, "--socket", socket, "-R"],
    { stdin: new TextEncoder().encode(`-A -t ${VIP}:80 -s wlc\n-a -t ${VIP}:80 -r ${RS[0]}:8080 -m\n-a -t ${VIP}:80 -r ${RS[1]}:8080 -m\n`) });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  const pid = ((await request(socket, { op: "ping" })) as { data: { pid: number } }).data.pid;
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  const table = async () => { const d = await request(socket, { op: "drops" }); return d.ok ? (d.data as Record<string, number>).connections : -1; };
  const wrk = Bun.spawn(["timeout", String(secs + 60), "ip", "netns", "exec", topo.ns.cl, "wrk", "-t1", "-c50", `-d${secs}s`, "--timeout", "5s", `http://${VIP}/`],
    { stdout: "pipe", stderr: "inherit" });
  const t0 = performance.now();
  const curve: string[] = [];
  let removals = 0, edits = 0, step = 0, nextSample = 0;
  while (wrk.exitCode === null && performance.now() - t0 < (secs + 30) * 1000) {
    const s = step++ % 4;
    if (s === 0) { cli("-e", "-t", `${VIP}:80`, "-r", `${RS[0]}:8080`, "-m", "-w", String(1 + (step % 3))); edits++; }
    else if (s === 1) { cli("-d", "-t", `${VIP}:80`, "-r", `${RS[1]}:8080`); removals++; }
    else if (s === 2) cli("-a", "-t", `${VIP}:80`, "-r", `${RS[1]}:8080`, "-m", "-w", "1");
    else { cli("-e", "-t", `${VIP}:80`, "-r", `${RS[1]}:8080`, "-m", "-w", "2"); edits++; }
    const el = (performance.now() - t0) / 1000;
    if (el >= nextSample) {
      curve.push(`${el.toFixed(0).padStart(4)} s  RSS ${(rss() / 1024).toFixed(1)} MiB  table ${await table()}`);
      nextSample += 10;
    }
    await Bun.sleep(3000);
  }
  const wrkOut = await new Response(wrk.stdout).text();
  // TIME_WAIT lasts 120 s: then every entry of the run must be gone.
  let left = await table();
  for (let i = 0; i < 80 && left > 0; i++) { await Bun.sleep(2000); left = await table(); }
  console.log(curve.join("\n"));
  console.log(`wrk: ${/(\d+) requests in [^\n]*/.exec(wrkOut)?.[0]}; socket errors: ${/Socket errors: (.*)/.exec(wrkOut)?.[1] ?? "none"}; non-2xx: ${/Non-2xx or 3xx responses: (\d+)/.exec(wrkOut)?.[1] ?? 0}`);
  console.log(`rule changes: ${edits} edits, ${removals} removals of a destination (each drops that destination's open connections)`);
  console.log(`table after the timeouts: ${left} entries; RSS ${(rss() / 1024).toFixed(1)} MiB`);
} finally {
  cli("--shutdown");
  for (const p of procs) p.kill();
  topo.destroy();
}
