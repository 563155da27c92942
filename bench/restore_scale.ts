// Rule-table scale: `tslb -R` of S services × D NAT real servers, then `-L -n` and `-S -n`,
// with the built binary in a namespace of its own (issue 7's target: 10 000 × 10, each
// under 1 s). Each run starts a fresh daemon, so every figure includes a cold JIT, as a
// container's first restore does; the median and the best of RUNS runs are printed.
// Also the in-process parts: parsing, and planning the restore as the daemon does.
//   bun bench/restore_scale.ts [services] [dests]     RUNS=3, TSLB_BIN=build/tslb
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteNamespaces, sh } from "../scripts/topology.ts";
import { planRestore } from "../src/cli/dry_run.ts";
import { NO_NAMES } from "../src/cli/names.ts";
import { parseRestore } from "../src/cli/rules_text.ts";
import { emptyRuleSet } from "../src/control/model.ts";
import { SCHEDULER_NAMES } from "../src/sched/index.ts";

const S = Number(process.argv[2] ?? 10_000);
const D = Number(process.argv[3] ?? 10);
const RUNS = Number(process.env.RUNS ?? 3);
const BIN = process.env.TSLB_BIN ?? join(import.meta.dir, "..", "build", "tslb");

const lines: string[] = [];
for (let i = 0; i < S; i++) {
  const vip = `198.18.${(i >> 8) & 255}.${i & 255}`;
  lines.push(`-A -t ${vip}:80 -s rr`);
  for (let j = 0; j < D; j++) lines.push(`-a -t ${vip}:80 -r 198.19.${j}.${(i % 250) + 1}:8080 -m`);
}
const text = lines.join("\n") + "\n";

const ms = (t0: number) => (performance.now() - t0).toFixed(0);
let t0 = performance.now();
const cmds = parseRestore(text, "tslb", NO_NAMES);
console.log(`parse ${lines.length} lines: ${ms(t0)} ms (${cmds.length} commands)`);
t0 = performance.now();
planRestore(emptyRuleSet(), text, SCHEDULER_NAMES, "tslb", NO_NAMES);
console.log(`plan the restore (parse and apply, as the daemon does): ${ms(t0)} ms`);

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
const times: Record<string, number[]> = { "-R": [], "-L -n": [], "-S -n": [] };
let listed = 0, saved = 0;
try {
  sh(["ip", "netns", "add", ns]);
  sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
  for (let k = 0; k < RUNS; k++) {
    run(["--daemon"]);
    times["-R"].push(run(["-R"], text).ms);
    const l = run(["-L", "-n"]);
    const s = run(["-S", "-n"]);
    times["-L -n"].push(l.ms);
    times["-S -n"].push(s.ms);
    [listed, saved] = [l.lines, s.lines];
    run(["--shutdown"]);
  }
  const stat = (v: number[]) => {
    const sorted = [...v].sort((a, b) => a - b);
    return `median ${sorted[sorted.length >> 1].toFixed(0)} ms, best ${sorted[0].toFixed(0)} ms`;
  };
  console.log(`${RUNS} runs, ${S} services × ${D} servers, a fresh daemon each:`);
  console.log(`  tslb -R     ${stat(times["-R"])}`);
  console.log(`  tslb -L -n  ${stat(times["-L -n"])} (${listed} lines)`);
  console.log(`  tslb -S -n  ${stat(times["-S -n"])} (${saved} lines)`);
} finally {
  deleteNamespaces([ns]);
  rmSync(dir, { recursive: true, force: true });
}
