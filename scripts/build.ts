// npm run build: one self-contained executable, build/tslb. The data-plane worker is a
// second entry point so the compiled binary carries it (it cannot be read from disk on a
// machine that has only the binary).
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const out = join(root, "build", "tslb");
const t0 = performance.now();
// --bytecode: the modules ship compiled, so a CLI command starts in ~20 ms instead of
// ~55 ms of parsing the bundle (it needs --format=esm: main.ts awaits at top level).
const proc = Bun.spawnSync([process.execPath, "build", "--compile", "--minify-syntax", "--bytecode", "--format=esm",
  join(root, "src/main.ts"), join(root, "src/dataplane/worker.ts"), "--outfile", out], { stdout: "inherit", stderr: "inherit" });
if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
console.log(`built ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
