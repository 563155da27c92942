// The daemon killed under load (kill -9) and started again with the same --state: the
// rules come back, and with a hash scheduler (mh) an established flow keeps going to the
// same real server — the new daemon has no connection entry for it, but tslb's default
// sloppy-TCP mode 2 lets a mid-flow segment of a hash-scheduled service start one, and
// Maglev picks the same server again. Direct routing: the TAP's MAC is stable too.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { DR_CL, DR_RS, DR_VIP, DrTopology } from "../../scripts/topology.ts";
import { BIN, ensureBinary, keepAliveClient, startServer, tslb } from "../helpers/tslb.ts";

ensureBinary();
const topo = new DrTopology("e2erst");
const dir = mkdtempSync(join(tmpdir(), "tslb-rst-"));
const socket = `${dir}/tslb.sock`;
const state = `${dir}/rules.state`;
const procs: ReturnType<typeof Bun.spawn>[] = [];
const cli = (args: string[], stdin?: string) => tslb(topo.ns.lb, socket, args, { stdin });

async function daemon(): Promise<ReturnType<typeof Bun.spawn>> {
  const p = Bun.spawn(["ip", "netns", "exec", topo.ns.lb, BIN, "--daemon", "--foreground", "--socket", socket, "--bridge", topo.bridge, "--state", state],
    { stdout: "ignore", stderr: "pipe" });
  const reader = p.stderr.getReader();
  let text = "";
  while (!/ready/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`daemon exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return p;
}

const r = suite("e2e restart under load");
r.before(async () => {
  topo.up();
  for (let i = 0; i < 2; i++) procs.push(await startServer(i ? topo.ns.rs2 : topo.ns.rs1, `rs${i + 1}`, DR_VIP, "80", "53"));
});
r.after(() => { cli(["--shutdown"]); for (const p of procs) p.kill(); topo.destroy(); });

r("kill -9 and restart with --state: same rules, and an established mh flow stays on its server", async () => {
  const d1 = await daemon();
  assert.is(cli(["-R"], `-A -t ${DR_VIP}:80 -s mh\n-a -t ${DR_VIP}:80 -r ${DR_RS[0]} -g\n-a -t ${DR_VIP}:80 -r ${DR_RS[1]} -g\n`).code, 0);
  const saved = cli(["-S", "-n"]).out;
  const ka = keepAliveClient(topo.ns.cl, DR_VIP, "80", 5000);
  const ask = () => ka.ask();
  const before = await ask();
  assert.match(before, new RegExp(`^rs[12] ${DR_CL.replace(/\./g, "\\.")}$`));
  d1.kill("SIGKILL");
  await d1.exited;
  const d2 = await daemon();
  procs.push(d2);
  assert.is(cli(["-S", "-n"]).out, saved, "rules restored from the state file");
  assert.is(readFileSync(state, "utf8").includes(`-A -t ${DR_VIP}:80 -s mh`), true);
  for (let i = 0; i < 3; i++) assert.is(await ask(), before, `request ${i} after the restart`);
  ka.stop();
});
r.run();
