// End-to-end rate of `tslb --decap` (root, namespaces; skipped unless TSLB_BENCH_E2E=1):
// a director namespace blasts N IPIP (or GUE) packets of a UDP request at the real server
// through an IPPROTO_RAW socket; the real server's decap injects them into its TUN, where
// the kernel delivers them to a UDP socket bound to the VIP (no reply, to keep the
// measurement one-way). Reports the sender's rate, what decap received and injected, and
// the decap's CPU time per packet (from /proc/<pid>/stat), which is the figure that matters:
// the sender in JS is not faster than the receiver, so wall-clock rates measure both.
//   TSLB_BENCH_E2E=1 bun bench/decap_rate.ts [packets] [ipip|gue|gre]
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

if (process.env.TSLB_BENCH_E2E !== "1") {
  console.log("decap_rate: skipped (end to end, needs root and namespaces: set TSLB_BENCH_E2E=1)");
  process.exit(0);
}
const N = Number(process.argv[2] ?? 200_000);
const TYPE = process.argv[3] ?? "ipip";
const ROOT = join(import.meta.dir, "..");
const BIN = join(ROOT, "build", "tslb");
const p = `tslb-bdecap-${process.pid}`;
const ns = { dir: `${p}-dir`, rs: `${p}-rs` };
const sh = (a: string[]) => {
  const r = spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${a.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
const made: string[] = [];
const cleanup = () => {
  for (const n of made) spawnSync("sh", ["-c", `ip netns pids ${n} | xargs -r kill -9`]);
  for (const n of made.splice(0)) spawnSync("ip", ["netns", "del", n]);
};
process.once("exit", cleanup);

/** [utime, stime] of a process, in clock ticks (100/s). */
const ticks = (pid: number): [number, number] => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return [Number(f[11]), Number(f[12])];
};

try {
  for (const n of [ns.dir, ns.rs]) { sh(["ip", "netns", "add", n]); made.push(n); sh(["ip", "-n", n, "link", "set", "lo", "up"]); }
  sh(["ip", "link", "add", "eth0", "netns", ns.rs, "type", "veth", "peer", "name", "eth0", "netns", ns.dir]);
  sh(["ip", "-n", ns.dir, "addr", "add", "198.18.1.1/24", "dev", "eth0"]);
  sh(["ip", "-n", ns.rs, "addr", "add", "198.18.1.11/24", "dev", "eth0"]);
  sh(["ip", "-n", ns.dir, "link", "set", "eth0", "up"]);
  sh(["ip", "-n", ns.rs, "link", "set", "eth0", "up"]);
  sh(["ip", "-n", ns.rs, "addr", "add", "198.18.0.100/32", "dev", "lo"]);
  sh(["ip", "-n", ns.rs, "route", "add", "198.18.2.0/24", "dev", "eth0"]);
  sh(["ip", "netns", "exec", ns.rs, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.core.rmem_max=8388608"]);
  const pidFile = `/tmp/${p}.pid`;
  const decap = Bun.spawn(["timeout", "300", "ip", "netns", "exec", ns.rs, BIN, "--decap", "--foreground", "--gue-port", "6080",
    "--pid-file", pidFile], { stdout: "pipe", stderr: "inherit" });
  const reader = decap.stdout.getReader();
  const dec = new TextDecoder();
  let out = "";
  const line = async (re: RegExp) => {
    for (;;) {
      const m = out.split("\n").find((l) => re.test(l));
      if (m) { out = out.slice(out.indexOf(m) + m.length + 1); return m; }
      const { value, done } = await reader.read();
      if (done) throw new Error(`decap ended: ${out}`);
      out += dec.decode(value);
    }
  };
  await line(/ready:/);
  const pid = Number(readFileSync(pidFile, "utf8"));
  // A sink bound to the VIP, so the kernel delivers instead of answering port unreachable.
  const sink = Bun.spawn(["timeout", "300", "ip", "netns", "exec", ns.rs, "python3", "-c",
    "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,8<<20)\ns.bind(('198.18.0.100',53))\nwhile True: s.recv(2048)"]);
  await Bun.sleep(300);
  const t0 = ticks(pid);
  const w0 = performance.now();
  const send = JSON.stringify([{ type: TYPE, port: 6080, outerSrc: "198.18.1.1", outerDst: "198.18.1.11", src: "198.18.2.2",
    dst: "198.18.0.100", proto: "udp", sport: 40000, dport: 53, payload: "x".repeat(64), count: N }]);
  const s0 = performance.now();
  sh(["timeout", "120", "ip", "netns", "exec", ns.dir, process.execPath, join(ROOT, "test/helpers/tunnel_send.ts"), send]);
  const sendMs = performance.now() - s0;
  await Bun.sleep(500);
  process.kill(pid, "SIGUSR1");
  const c = await line(/^tslb decap: received/);
  const t1 = ticks(pid);
  const user = (t1[0] - t0[0]) * 10; // ms
  const sys = (t1[1] - t0[1]) * 10;
  const cpu = user + sys;
  const wall = performance.now() - w0;
  const injected = Number(/injected (\d+)/.exec(c)![1]);
  const received = Number(/received (\d+)/.exec(c)![1]);
  console.log(`decap_rate ${TYPE}: sent ${N} in ${sendMs.toFixed(0)} ms (${(N / sendMs * 1000 / 1e3).toFixed(0)} kpps, includes bun start), ` +
    `received ${received}, injected ${injected}; decap CPU ${cpu} ms over ${wall.toFixed(0)} ms wall = ` +
    `${(cpu * 1e6 / Math.max(1, received)).toFixed(0)} ns/packet (recv + decap + TUN write; user ${(user * 1e6 / Math.max(1, received)).toFixed(0)}, ` +
    `kernel ${(sys * 1e6 / Math.max(1, received)).toFixed(0)}, which includes delivering the injected packet)`);
  console.log(c);
  process.kill(pid, "SIGTERM");
  sink.kill();
  await decap.exited;
} finally {
  cleanup();
}
