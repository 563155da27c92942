// Running the built binary in tests: build/tslb, run from an empty directory with an
// environment that has no bun or node on PATH, so every test also proves the binary is
// self-contained (worker entry included).
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh } from "../../scripts/topology.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const BIN = join(ROOT, "build", "tslb");
export const BUN = process.execPath;

/** Builds build/tslb once if it is missing (scripts/test.ts builds before the e2e files). */
export function ensureBinary(): void {
  if (!existsSync(BIN)) sh([BUN, join(ROOT, "scripts", "build.ts")]);
}

export const EMPTY_DIR = mkdtempSync(join(tmpdir(), "tslb-empty-"));

export interface Run { out: string; err: string; code: number }

/** Runs `tslb args` inside namespace ns, cwd an empty directory, minimal environment. */
export function tslb(ns: string, socket: string, args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Run {
  const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TSLB_SOCKET: socket, ...opts.env };
  const r = Bun.spawnSync(["timeout", "30", "ip", "netns", "exec", ns, BIN, ...args], {
    cwd: EMPTY_DIR, env, stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
  });
  return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exitCode ?? -1 };
}
