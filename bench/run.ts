// npm run bench: every micro bench in bench/, one process each (end-to-end benches come
// with the performance issue). Figures and commands are recorded in bench/RESULTS.md.
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = import.meta.dir;
let failed = 0;
for (const f of readdirSync(dir).filter((n) => n.endsWith(".ts") && n !== "run.ts").sort()) {
  console.log(`## ${f}`);
  const r = Bun.spawnSync([process.execPath, join(dir, f)], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) failed++;
}
process.exit(failed ? 1 : 0);
