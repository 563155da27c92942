// The micro benches in bench/ as smoke tests: each runs in its short mode (`--short`, a
// few thousand packets and small tables) in a process of its own and must exit 0 — which
// also means its heap check passed — and print its figures. Timings are not judged here
// (bench/RESULTS.md has the real runs). End-to-end benches (root, namespaces, the built
// binary) are left out: those gated by TSLB_BENCH_E2E and the ones named below.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const BENCH = join(import.meta.dir, "..", "bench");
/** Not benches, or end to end whatever their gating: the runner and the namespace benches. */
const NOT_MICRO = new Set(["run.ts", "decap_rate.ts", "restore_scale.ts", "e2e.ts"]);
/** These must be found, so the test cannot pass by running nothing. */
const EXPECTED = ["conn_table.ts", "data_path.ts", "schedulers.ts", "tunnel.ts", "xdp_path.ts"];
/** Per bench; the short modes finish in about a second, ~4× slower on a busy 2-core machine. */
const TIMEOUT_MS = 30_000;

const micro = readdirSync(BENCH)
  .filter((n) => n.endsWith(".ts") && !NOT_MICRO.has(n))
  .filter((n) => !readFileSync(join(BENCH, n), "utf8").includes("TSLB_BENCH_E2E"))
  .sort();

const s = suite("micro benches, short mode");
s("every known micro bench is found", () => {
  for (const n of EXPECTED) assert.ok(micro.includes(n), `bench/${n} missing from ${micro.join(", ")}`);
});
for (const name of micro) {
  s(`bench/${name} --short runs, passes its heap check and prints ns figures`, async () => {
    const t0 = performance.now();
    const proc = Bun.spawn([process.execPath, join(BENCH, name), "--short"], {
      stdout: "pipe", stderr: "pipe", env: { ...process.env, BENCH_SHORT: "1" },
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), TIMEOUT_MS);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    clearTimeout(timer);
    const ms = performance.now() - t0;
    assert.is(code, 0, `exit ${code} after ${ms.toFixed(0)} ms\n${out}\n${err}`);
    assert.not.match(err, /FAIL/, err);
    assert.match(out, /\bns\b|ns\//, "names its unit");
    // At least one table row that ends in figures: "| ... | 123.4 | ... |".
    assert.match(out, /^\|[^\n]*\|\s*\d+(\.\d+)?\s*\|/m, `no figures in:\n${out}`);
  });
}
s.run();
