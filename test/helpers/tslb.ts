// Running the built binary in tests: build/tslb, run from an empty directory with an
// environment that has no bun or node on PATH, so every test also proves the binary is
// self-contained (worker entry included).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh } from "../../scripts/topology.ts";
import { request } from "../../src/control/client.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const BIN = join(ROOT, "build", "tslb");
export const BUN = process.execPath;

/** Builds build/tslb once if it is missing (scripts/test.ts builds before the e2e files). */
export function ensureBinary(): void {
  if (!existsSync(BIN)) sh([BUN, join(ROOT, "scripts", "build.ts")]);
}

export const EMPTY_DIR = mkdtempSync(join(tmpdir(), "tslb-empty-"));

export interface Run { out: string; err: string; code: number }

/** The daemon's counters by name (the drops op: drop reasons and packet kinds). */
export async function daemonCounters(socket: string): Promise<Record<string, number>> {
  const r = await request(socket, { op: "drops" });
  if (!r.ok) throw new Error(r.message);
  return r.data as Record<string, number>;
}

/**
 * Data-plane settings a test run may set for every daemon it starts (scripts/test.ts runs
 * the forwarding e2e files again with offloads off and several workers).
 */
const DATAPLANE_ENV = ["TSLB_XDP", "TSLB_XDP_MODE", "TSLB_XDP_JOIN", "TSLB_OFFLOAD", "TSLB_WORKERS", "TSLB_COALESCE"] as const;

function dataplaneEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of DATAPLANE_ENV) if (process.env[k]) out[k] = process.env[k]!;
  return out;
}

/**
 * The daemon socket of a test file, in a directory of its own under /tmp (the daemon puts
 * its log there too), removed when the test process exits after passing: a failed run
 * leaves the log to read.
 */
export function e2eSocket(name: string): string {
  const dir = `/tmp/tslb-e2e-${name}-${process.pid}`;
  process.on("exit", (code) => {
    if (code === 0) rmSync(dir, { recursive: true, force: true });
  });
  return `${dir}/tslb.sock`;
}

/**
 * What `tslb doctor` adds after an --xdp interface's mode when its socket leaves partial
 * checksums to the kernel (AF_XDP TX metadata): none with TSLB_OFFLOAD=off.
 */
export const XDP_TX_CSUM = process.env.TSLB_OFFLOAD === "off" ? "" : ", tx csum";

/** Runs `tslb args` inside namespace ns, cwd an empty directory, minimal environment. */
export function tslb(ns: string, socket: string, args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Run {
  const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TSLB_SOCKET: socket, ...dataplaneEnv(), ...opts.env };
  const r = Bun.spawnSync(["timeout", "30", "ip", "netns", "exec", ns, BIN, ...args], {
    cwd: EMPTY_DIR, env, stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
  });
  return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exitCode ?? -1 };
}

/**
 * Starts scripts/servers.ts (HTTP and UDP, answering with its name and the client's
 * address) as `name` inside namespace `ns` on `addrs` (comma-separated), and waits for it
 * to say it is ready. It exits by itself after `ttlSec`.
 */
export async function startServer(ns: string, name: string, addrs: string, httpPort = "8080", udpPort = "5353", ttlSec = 240): Promise<ReturnType<typeof Bun.spawn>> {
  const p = Bun.spawn(["ip", "netns", "exec", ns, BUN, join(ROOT, "scripts/servers.ts"), name, addrs, httpPort, udpPort],
    { stdout: "pipe", stderr: "inherit", env: { ...process.env, TSLB_SERVER_TTL: String(ttlSec) } });
  const reader = p.stdout.getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server ${name} in ${ns} exited before it was ready`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return p;
}

/** A client holding one keep-alive HTTP connection (scripts/client.ts keepalive). */
export interface KeepAlive {
  /** Sends one request on the connection; resolves to the answer line ("timeout", "closed" ...). */
  ask(): Promise<string>;
  stop(): void;
}

export function keepAliveClient(ns: string, addr: string, port: string, timeoutMs = 2000): KeepAlive {
  const ka = Bun.spawn(["timeout", "120", "ip", "netns", "exec", ns, BUN, join(ROOT, "scripts/client.ts"), "keepalive", addr, port],
    { stdin: "pipe", stdout: "pipe", stderr: "inherit", env: { ...process.env, TSLB_CLIENT_TIMEOUT_MS: String(timeoutMs) } });
  const reader = ka.stdout.getReader();
  let pending = "";
  return {
    async ask() {
      ka.stdin.write("go\n");
      ka.stdin.flush();
      while (!pending.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return "closed";
        pending += new TextDecoder().decode(value);
      }
      const i = pending.indexOf("\n");
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      return line;
    },
    stop() { ka.kill(); },
  };
}

/**
 * The direct-routing rules of the XDP tests: TCP 8080 wrr 3:1 over two real servers, UDP 53
 * on the first, and IPv6 TCP 8080 rr over two.
 */
export function drRules(vip: string, vip6: string, rs: readonly string[], rs6: readonly string[]): string {
  return `-A -t ${vip}:8080 -s wrr
-a -t ${vip}:8080 -r ${rs[0]} -g -w 3
-a -t ${vip}:8080 -r ${rs[1]} -g -w 1
-A -u ${vip}:53 -s rr
-a -u ${vip}:53 -r ${rs[0]} -g
-A -t [${vip6}]:8080 -s rr
-a -t [${vip6}]:8080 -r ${rs6[0]} -g
-a -t [${vip6}]:8080 -r ${rs6[1]} -g
`;
}
