// The control socket under abuse: many CLI clients at once, malformed and oversized
// requests, a socket only its owner may use. The daemon must answer each with an error
// and keep its rules exact.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, statSync } from "node:fs";
import { Topology, VIP } from "../../scripts/topology.ts";
import { BIN, EMPTY_DIR, e2eSocket, ensureBinary, tslb } from "../helpers/tslb.ts";

ensureBinary();
const topo = new Topology("e2ectl");
const socket = e2eSocket("ctl");
const cli = (args: string[], stdin?: string) => tslb(topo.ns.lb, socket, args, { stdin });

/** One raw exchange on the control socket: `payload` as is (written in full), the reply line ("" when none). */
async function raw(payload: string | Uint8Array): Promise<string> {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  return await new Promise((resolve) => {
    let buf = "";
    let off = 0;
    const pump = (s: { write(b: Uint8Array): number; end(): void }) => {
      while (off < bytes.length) {
        const n = s.write(bytes.subarray(off));
        if (n <= 0) return; // wait for drain
        off += n;
      }
      if (bytes[bytes.length - 1] !== 0x0a) s.end();
    };
    Bun.connect({
      unix: socket,
      socket: {
        open(s) { pump(s); },
        drain(s) { pump(s); },
        data(_s, d) { buf += d.toString(); },
        close() { resolve(buf.trim()); },
        error() { resolve(buf.trim()); },
      },
    });
  });
}

const ctl = suite("e2e control socket");
ctl.before(() => { topo.up(); });
ctl.after(() => { cli(["--shutdown"]); topo.destroy(); });

ctl("the socket is mode 0600 in a 0700 directory", () => {
  assert.is(cli(["-A", "-t", `${VIP}:80`, "-s", "rr"]).code, 0);
  assert.is(statSync(socket).mode & 0o777, 0o600);
  assert.is(statSync(socket.replace(/\/[^/]+$/, "")).mode & 0o777, 0o700);
});

ctl("SO_PEERCRED: even with the socket opened to everyone, another user is refused", () => {
  const dir = socket.replace(/\/[^/]+$/, "");
  chmodSync(dir, 0o711);
  chmodSync(socket, 0o666);
  try {
    const probe = `const s = await Bun.connect({ unix: ${JSON.stringify(socket)}, socket: { open(s) { s.write('{"op":"rules"}\\n'); }, data(_s, d) { process.stdout.write(d.toString()); }, close() { process.exit(0); } } });`;
    const r = Bun.spawnSync(["timeout", "20", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", probe]);
    assert.match(r.stdout.toString(), /"ok":false.*Permission denied \(you must be root\)/, r.stderr.toString());
  } finally {
    chmodSync(socket, 0o600);
    chmodSync(dir, 0o700);
  }
  assert.is(cli(["-L", "-n"]).code, 0, "root still served");
});

ctl("100 parallel -a then 100 parallel -d leave exactly the right table", async () => {
  const run = (args: string[]) => Bun.spawn(["timeout", "60", "ip", "netns", "exec", topo.ns.lb, BIN, ...args], {
    cwd: EMPTY_DIR, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TSLB_SOCKET: socket }, stdout: "ignore", stderr: "pipe",
  });
  const rs = (i: number) => `198.18.1.${(i % 200) + 20}:${8000 + Math.floor(i / 200)}`;
  let procs = Array.from({ length: 100 }, (_, i) => run(["-a", "-t", `${VIP}:80`, "-r", rs(i), "-m"]));
  assert.equal(await Promise.all(procs.map((p) => p.exited)), Array(100).fill(0));
  assert.is(cli(["-S", "-n"]).out.split("\n").filter((l) => l.startsWith("-a ")).length, 100);
  // Remove the even ones, in parallel.
  procs = Array.from({ length: 50 }, (_, k) => run(["-d", "-t", `${VIP}:80`, "-r", rs(2 * k)]));
  assert.equal(await Promise.all(procs.map((p) => p.exited)), Array(50).fill(0));
  const left = cli(["-S", "-n"]).out.split("\n").filter((l) => l.startsWith("-a ")).map((l) => l.split(" ")[4]).sort();
  assert.equal(left, Array.from({ length: 50 }, (_, k) => rs(2 * k + 1)).sort());
});

ctl("a restore of 2 000 services × 10 servers: multi-megabyte requests and replies arrive whole", () => {
  const lines: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const vip = `198.18.${100 + (i >> 8)}.${i & 255}`;
    lines.push(`-A -t ${vip}:80 -s rr`);
    for (let j = 0; j < 10; j++) lines.push(`-a -t ${vip}:80 -r 198.19.${j}.${(i % 250) + 1}:8080 -m -w 1`);
  }
  const t0 = performance.now();
  const r = cli(["-R"], lines.join("\n") + "\n");
  console.log(`    (-R of 22 000 lines: ${(performance.now() - t0).toFixed(0)} ms)`);
  assert.is(r.err, "");
  assert.is(r.code, 0);
  // -S prints every line (more than 64 KiB: the CLI must not exit before stdout drains).
  const saved = cli(["-S", "-n"]).out.trim().split("\n");
  assert.is(saved.filter((l) => l.startsWith("-A -t 198.18.1")).length, 2000);
  assert.is(saved.filter((l) => l.startsWith("-a -t 198.18.1")).length, 20000);
  const listed = cli(["-L", "-n"]).out.split("\n");
  assert.is(listed.filter((l) => l.startsWith("TCP  198.18.1")).length, 2000);
  assert.is(listed.filter((l) => l.startsWith("  -> 198.19.")).length, 20000);
  // Back to the rules the other tests expect.
  assert.is(cli(["-R"], lines.filter((l) => l.startsWith("-A")).map((l) => l.replace("-A", "-D").replace(" -s rr", "")).join("\n") + "\n").code, 0);
});

ctl("malformed, partial and oversized requests get an error; the daemon carries on", async () => {
  const before = cli(["-S", "-n"]).out;
  assert.match(await raw("this is not json\n"), /"ok":false.*malformed request/);
  assert.match(await raw('{"op": 42}\n'), /"ok":false/);
  assert.match(await raw('{"op":"apply","cmds":[{"kind":"add-service"}]}\n'), /"ok":false/);
  // A request cut off before its newline: the client goes away; nothing is applied.
  await raw('{"op":"apply","cmds":[{"kind":"clear"}]');
  // Ends with a newline, so the client waits for the answer (a Bun socket's end() closes both ways).
  const oversized = new Uint8Array((64 << 20) + 2).fill(0x61);
  oversized[oversized.length - 1] = 0x0a;
  const big = await raw(oversized);
  assert.match(big, /"ok":false.*too large/, JSON.stringify(big));
  assert.is(cli(["-S", "-n"]).out, before);
  assert.is(cli(["-L", "-n"]).code, 0);
});

ctl.run();
