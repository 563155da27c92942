// Rule-table scale: `tslb -R` of S services × D NAT real servers, then `-L -n` and `-S -n`,
// with the built binary in a namespace of its own (issue 7's target: 10 000 × 10, each
// under 1 s). Also the in-process parts: parsing and applying the same restore.
//   bun bench/restore_scale.ts [services] [dests]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteNamespaces, sh } from "../scripts/topology.ts";
import { parseRestore } from "../src/cli/rules_text.ts";
import { applyAll } from "../src/control/apply.ts";
import { emptyRuleSet } from "../src/control/model.ts";
import { SCHEDULER_NAMES } from "../src/sched/index.ts";

const S = Number(process.argv[2] ?? 10_000);
const D = Number(process.argv[3] ?? 10);
const BIN = join(import.meta.dir, "..", "build", "tslb");

const lines: string[] = [];
for (let i = 0; i < S; i++) {
  const vip = `198.18.${(i >> 8) & 255}.${i & 255}`;
  lines.push(`-A -t ${vip}:80 -s rr`);
  for (let j = 0; j < D; j++) lines.push(`-a -t ${vip}:80 -r 198.19.${j}.${(i % 250) + 1}:8080 -m`);
}
const text = lines.join("\n") + "\n";

const ms = (t0: number) => (performance.now() - t0).toFixed(0);
let t0 = performance.now();
const cmds = parseRestore(text);
console.log(`parse ${lines.length} lines: ${ms(t0)} ms`);
t0 = performance.now();
applyAll(emptyRuleSet(), cmds, SCHEDULER_NAMES);
console.log(`apply ${cmds.length} commands: ${ms(t0)} ms`);

const ns = `tslb-benchR-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), "tslb-benchR-"));
const socket = join(dir, "tslb.sock");
const run = (args: string[], stdin?: string) => {
  const t = performance.now();
  const r = Bun.spawnSync(["timeout", "120", "ip", "netns", "exec", ns, BIN, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TSLB_SOCKET: socket }, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe", stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`tslb ${args.join(" ")}: ${r.stderr.toString()}`);
  return { ms: performance.now() - t, lines: r.stdout.toString().split("\n").length - 1 };
};
try {
  sh(["ip", "netns", "add", ns]);
  sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
  run(["--daemon"]);
  const r = run(["-R"], text);
  const l = run(["-L", "-n"]);
  const s = run(["-S", "-n"]);
  console.log(`tslb -R of ${S} services × ${D} servers: ${r.ms.toFixed(0)} ms; -L -n: ${l.ms.toFixed(0)} ms (${l.lines} lines); -S -n: ${s.ms.toFixed(0)} ms (${s.lines} lines)`);
  run(["--shutdown"]);
} finally {
  deleteNamespaces([ns]);
  rmSync(dir, { recursive: true, force: true });
}
