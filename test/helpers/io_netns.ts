// Namespace helpers for the src/io tests. Every test that touches the network runs inside
// its own namespace "tslbt-io-<pid>-<n>", deleted in a finally and again at exit, so that
// nothing is ever configured in the root namespace. Addresses: 198.18.0.0/15, 2001:2::/48.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export const HELPERS = import.meta.dir;
export const BUN = process.execPath;

const live = new Set<string>();
let counter = 0;
process.on("exit", () => {
  for (const ns of live) spawnSync("ip", ["netns", "del", ns]);
});

/** Runs a command, returns stdout; throws with stderr when it fails (unless allowFail). */
export function sh(cmd: string[], allowFail = false): { out: string; err: string; code: number } {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 30_000 });
  const res = { out: r.stdout ?? "", err: r.stderr ?? "", code: r.status ?? -1 };
  if (res.code !== 0 && !allowFail) throw new Error(`${cmd.join(" ")} -> ${res.code}: ${res.err}`);
  return res;
}

/** `ip -n NS args...` */
export function ipn(ns: string, ...args: string[]): string {
  return sh(["ip", "-n", ns, ...args]).out;
}

/** Creates a namespace with lo up, runs fn, deletes the namespace whatever happens. */
export async function withNetns<T>(tag: string, fn: (ns: string) => T | Promise<T>): Promise<T> {
  const ns = `tslbt-${tag}-${process.pid}-${counter++}`;
  sh(["ip", "netns", "add", ns]);
  live.add(ns);
  try {
    ipn(ns, "link", "set", "lo", "up");
    return await fn(ns);
  } finally {
    sh(["ip", "netns", "del", ns], true);
    live.delete(ns);
  }
}

/** Runs test/helpers/<script> with bun inside ns (under `timeout`); stdout parsed as JSON. */
export function nsProbe<T = any>(ns: string, script: string, ...args: string[]): T {
  const r = sh(["timeout", "60", "ip", "netns", "exec", ns, BUN, join(HELPERS, script), ...args], true);
  if (r.code !== 0) throw new Error(`${script} ${args.join(" ")} exited ${r.code}: ${r.err}${r.out}`);
  return JSON.parse(r.out.trim().split("\n").pop()!) as T;
}

function spawnProbe(ns: string, script: string, args: string[]) {
  return Bun.spawn(["timeout", "60", "ip", "netns", "exec", ns, BUN, join(HELPERS, script), ...args], {
    stdin: "pipe", stdout: "pipe", stderr: "pipe",
  });
}

const readerOf = (p: ReturnType<typeof spawnProbe>) => p.stdout.getReader();

/**
 * A probe that prints a JSON line, then waits for a line on stdin before going on: the test
 * inspects the namespace with `ip` while the probe still holds its devices.
 */
export class GatedProbe {
  private buf = "";
  private readonly proc: ReturnType<typeof spawnProbe>;
  private readonly reader: ReturnType<typeof readerOf>;
  private stderr = "";
  private released = false;

  constructor(ns: string, script: string, ...args: string[]) {
    this.proc = spawnProbe(ns, script, args);
    this.reader = readerOf(this.proc);
    new Response(this.proc.stderr).text().then((t) => (this.stderr = t));
  }

  /** The next JSON line of the probe's stdout. */
  async next<T = any>(): Promise<T> {
    const dec = new TextDecoder();
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        return JSON.parse(line) as T;
      }
      const { value, done } = await this.reader.read();
      if (done) {
        await this.proc.exited;
        throw new Error(`probe ended (exit ${this.proc.exitCode}) before a JSON line: ${this.buf}${this.stderr}`);
      }
      this.buf += dec.decode(value, { stream: true });
    }
  }

  /** Lets the probe go on past its stdin gate. */
  release(): void {
    this.released = true;
    this.proc.stdin.write("go\n");
    this.proc.stdin.end();
  }

  /** Waits for exit; kills the probe if it was never released or does not finish. */
  async done(): Promise<number> {
    if (this.proc.exitCode === null) {
      const t = setTimeout(() => this.proc.kill(), this.released ? 10_000 : 0);
      await this.proc.exited;
      clearTimeout(t);
    }
    return this.proc.exitCode ?? -1;
  }
}
