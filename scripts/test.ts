// Test runner: every uvu file under test/ runs in its own `bun` process (a crash or a
// hang is then one failed file, not a dead runner); unit files two at a time, end-to-end
// files (test/e2e/, real namespaces) one at a time, after the units; the forwarding-mode
// files then run again with offloads off and two data-plane workers. Ends with the line
// `N passed, N failed` that CI reads.
//   bun scripts/test.ts [filter...]   run only files whose path contains a filter
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");
const TEST_DIR = join(ROOT, "test");
const SKIP_DIRS = new Set(["fixtures", "golden", "helpers"]);
const UNIT_TIMEOUT_MS = 120_000;
/** End-to-end files of the forwarding modes, run a second time with VARIANT_ENV. */
const VARIANT_FILES = ["nat", "nat_v6", "fullnat", "dr", "tunnel", "tunnel_pmtu", "fwmark", "offload", "proxy_protocol", "schedulers", "xdp", "xdp_dr", "xdp_dr_routed", "bulk_offload"];
const VARIANT_ENV = { TSLB_OFFLOAD: "off", TSLB_WORKERS: "2" };
/**
 * The forwarding modes once more with the XDP hand-off on the topology's client side and
 * real-server ports (scripts/topology.ts names them alike in the NAT and DR topologies):
 * whatever it takes must come out as the TUN path would send it.
 */
const XDP_FILES = ["nat", "nat_v6", "fullnat", "dr", "tunnel", "fwmark", "offload", "proxy_protocol", "schedulers"];
const XDP_ENV = { TSLB_XDP: "lbc,lbr1,lbr2" };
const E2E_TIMEOUT_MS = 300_000;

function collect(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (!SKIP_DIRS.has(name)) collect(p, out);
    } else if (name.endsWith(".ts") && !name.startsWith("_")) out.push(p);
  }
  return out;
}

interface FileResult { file: string; passed: number; failed: number; skipped: number; ms: number; output: string }

// uvu's summary lines, after ANSI colours are removed.
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

async function runFile(file: string, timeoutMs: number, env: Record<string, string> = {}): Promise<FileResult> {
  const t0 = performance.now();
  const proc = Bun.spawn([process.execPath, file], {
    cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, FORCE_COLOR: "0", ...env },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  // A test killed on timeout never ran its cleanup: remove the namespaces it named after its pid.
  const ns = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString().split("\n").map((l) => l.split(" ")[0]);
  for (const n of ns.filter((n) => n.startsWith("tslb") && n.includes(`-${proc.pid}-`))) {
    Bun.spawnSync(["sh", "-c", `ip netns pids ${n} | xargs -r kill -9; ip netns del ${n}`]);
  }
  const text = strip(out + err);
  const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
  let failed = Number.isNaN(total) ? 1 : total - passed - skipped;
  if (failed === 0 && code !== 0) failed = 1; // crashed after its summary, or killed
  const tag = Object.keys(env).length ? ` [${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}]` : "";
  return { file: relative(ROOT, file) + tag, passed: Number.isNaN(passed) ? 0 : passed, failed, skipped, ms: performance.now() - t0, output: text };
}

async function runPool(files: string[], width: number, timeoutMs: number, results: FileResult[], env: Record<string, string> = {}) {
  let next = 0;
  async function lane() {
    while (next < files.length) {
      const f = files[next++];
      const r = await runFile(f, timeoutMs, env);
      results.push(r);
      const tag = r.failed ? "FAIL" : "ok  ";
      console.log(`${tag} ${r.file}  ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ""}  (${(r.ms / 1000).toFixed(1)} s)`);
      if (r.failed) console.log(r.output.split("\n").map((l) => "     | " + l).join("\n"));
    }
  }
  await Promise.all(Array.from({ length: width }, lane));
}

const filters = process.argv.slice(2);
const all = collect(TEST_DIR, []).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
const e2e = all.filter((f) => f.includes(`${join("test", "e2e")}/`));
const units = all.filter((f) => !e2e.includes(f));
const results: FileResult[] = [];
if (filters.length === 0) {
  // The whole tree type-checks (tsconfig.json: strict, no unused locals): one test.
  const t0 = performance.now();
  const tsc = Bun.spawnSync([join(ROOT, "node_modules", ".bin", "tsc"), "-p", ROOT, "--noEmit"], { stdout: "pipe", stderr: "pipe" });
  const ok = tsc.exitCode === 0;
  results.push({ file: "tsc --noEmit", passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0, ms: performance.now() - t0, output: tsc.stdout.toString() });
  console.log(`${ok ? "ok  " : "FAIL"} tsc --noEmit  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  if (!ok) console.log(tsc.stdout.toString().split("\n").map((l) => "     | " + l).join("\n"));
}
await runPool(units, 2, UNIT_TIMEOUT_MS, results);
if (e2e.length > 0) {
  // End-to-end tests run the shipped binary: build it first (a failed build fails them all).
  const b = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts")], { stdout: "inherit", stderr: "inherit" });
  if (b.exitCode !== 0) results.push({ file: "scripts/build.ts", passed: 0, failed: 1, skipped: 0, ms: 0, output: "build failed" });
  else {
    await runPool(e2e, 1, E2E_TIMEOUT_MS, results);
    // The forwarding modes once more with the other data-plane settings: offloads off and
    // two workers sharing the table (the first pass runs the defaults: offloads on, and
    // one worker on this 2-core machine); then with the XDP hand-off.
    for (const [files, env] of [[VARIANT_FILES, VARIANT_ENV], [XDP_FILES, XDP_ENV]] as const) {
      const modes = e2e.filter((f) => files.some((v) => f.endsWith(`/e2e/${v}.ts`)));
      if (modes.length === 0) continue;
      console.log(`-- again with ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}`);
      await runPool(modes, 1, E2E_TIMEOUT_MS, results, env);
    }
  }
}
const passed = results.reduce((a, r) => a + r.passed, 0);
const failed = results.reduce((a, r) => a + r.failed, 0);
const skipped = results.reduce((a, r) => a + r.skipped, 0);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed ? 1 : 0);
