// npm run demo: build tslb, make a client/balancer/two-server network out of namespaces,
// boot it with `./build/tslb -R < examples/nat.rules`, send real HTTP and UDP through
// the VIP, show `-L -n --stats`, and clean everything up (also on Ctrl-C or an error).
import { join } from "node:path";
import { CL, RS, Topology, VIP, sh } from "./topology.ts";

const ROOT = join(import.meta.dir, "..");
const BIN = join(ROOT, "build", "tslb");
const SOCKET = `/tmp/tslb-demo-${process.pid}/tslb.sock`;
const BUN = process.execPath;

if (process.getuid?.() !== 0) {
  console.error("the demo needs root (it creates network namespaces)");
  process.exit(1);
}

const topo = new Topology("demo");
const servers: ReturnType<typeof Bun.spawn>[] = [];
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  sh(["timeout", "10", "ip", "netns", "exec", topo.ns.lb, BIN, "--socket", SOCKET, "--shutdown"], true);
  for (const s of servers) s.kill();
  topo.destroy();
  console.log("\n# cleaned up: daemon stopped, namespaces deleted");
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => { cleanup(); process.exit(130); });

function step(title: string): void {
  console.log(`\n# ${title}`);
}
function show(ns: string, argv: string[], stdinFile?: string): string {
  const label = argv.map((a) => (a === BIN ? "./build/tslb" : a === BUN ? "bun" : a.startsWith(ROOT) ? a.slice(ROOT.length + 1) : a)).join(" ");
  console.log(`[${ns.split("-").pop()}]$ ${label}${stdinFile ? ` < ${stdinFile}` : ""}`);
  const r = Bun.spawnSync(["timeout", "30", "ip", "netns", "exec", ns, ...argv], {
    stdin: stdinFile ? Bun.file(join(ROOT, stdinFile)) : "ignore", env: { ...process.env, TSLB_SOCKET: SOCKET, TSLB_VIP_DEV: topo.vipDev },
  });
  const out = r.stdout.toString() + r.stderr.toString();
  process.stdout.write(out);
  if (r.exitCode !== 0) throw new Error(`exit status ${r.exitCode}`);
  return out;
}

try {
  step("build");
  sh([BUN, join(ROOT, "scripts/build.ts")]);
  console.log(`built ${BIN}`);

  step("topology: client 198.18.2.2 -> balancer -> real servers 198.18.1.11, 198.18.1.12 (namespaces)");
  topo.up();
  for (let i = 0; i < 2; i++) {
    const p = Bun.spawn(["ip", "netns", "exec", i ? topo.ns.rs2 : topo.ns.rs1, BUN, join(ROOT, "scripts/servers.ts"), `rs${i + 1}`, RS[i], "8080", "5353"],
      { stdout: "pipe", stderr: "inherit", env: { ...process.env, TSLB_SERVER_TTL: "120" } });
    servers.push(p);
    const { value } = await p.stdout.getReader().read();
    process.stdout.write(new TextDecoder().decode(value));
  }

  step("boot the balancer from a rules file (the daemon starts on first use)");
  show(topo.ns.lb, [BIN, "-R"], "examples/nat.rules");
  show(topo.ns.lb, [BIN, "-L", "-n"]);

  step(`HTTP through the VIP ${VIP}:80 (each server answers with its name and the client address it sees)`);
  const hasCurl = sh(["which", "curl"], true).code === 0;
  for (let i = 0; i < 6; i++) {
    show(topo.ns.cl, hasCurl ? ["curl", "-s", "-m", "2", `http://${VIP}/`] : [BUN, join(ROOT, "scripts/client.ts"), "http", VIP, "80", "1"]);
  }
  step(`UDP through the VIP ${VIP}:53`);
  for (let i = 0; i < 2; i++) show(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), "udp", VIP, "53", `hello-${i}`]);

  step("what the balancer saw");
  show(topo.ns.lb, [BIN, "-L", "-n", "--stats"]);
  show(topo.ns.lb, [BIN, "-L", "-n", "-c"]);
  console.log(`\n(client ${CL} reached both servers; they saw its own address, not the balancer's)`);
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
