// One wrk measurement from the client namespace, and the parse of its --latency output.
// wrk always runs under timeout(1) and for a fixed duration.
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./proc.ts";

const TAIL_LUA = join(import.meta.dir, "tail.lua");

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Transfer/sec in MB/s (MiB, as wrk counts). */
  mbps: number;
  p50ms: number;
  p99ms: number;
  /** 99.9th percentile, from bench/e2e/tail.lua (NaN without it). */
  p999ms: number;
  /** Socket errors (connect, read, write, timeout) plus non-2xx/3xx answers. */
  errors: number;
}

export interface WrkJob {
  ns: string;
  url: string;
  conns: number;
  seconds: number;
  close: boolean;
  /** Milliseconds each connection waits between requests (0: back to back); read by tail.lua. */
  paceMs: number;
}

function argv(j: WrkJob, seconds: number, latency: boolean): string[] {
  return ["ip", "netns", "exec", j.ns, "env", `WRK_PACE_MS=${j.paceMs}`, "wrk", "-t1", `-c${j.conns}`, `-d${seconds}s`, ...(latency ? ["--latency", "-s", TAIL_LUA] : []),
    ...(j.close ? ["-H", "Connection: close"] : []), j.url];
}

/**
 * One second of the same load, not recorded: connections, ARP, caches and JITs warm.
 * False when it did not end in time (see measure()).
 */
export async function warmUp(j: WrkJob): Promise<boolean> {
  return (await run(argv(j, 1, false), 12)).code === 0;
}

/** The measured run; its raw output is appended to `log`. */
export async function measure(j: WrkJob, log: string): Promise<WrkResult> {
  const r = await run(argv(j, j.seconds, true), j.seconds + 30);
  appendFileSync(log, `$ wrk -t1 -c${j.conns} -d${j.seconds}s --latency -s tail.lua${j.paceMs ? ` (WRK_PACE_MS=${j.paceMs})` : ""}${j.close ? ' -H "Connection: close"' : ""} ${j.url}\n${r.out}${r.err}\n`);
  // wrk checks its deadline only when a response completes: if the path stalls (every
  // connection stuck in SYN retransmission) it never stops, and timeout ends it.
  if (r.code === 124) throw new Error(`wrk did not stop 30 s after its duration: no response completed (the path stalled)`);
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${(r.err || r.out).trim().slice(0, 200)}`);
  return parseWrk(r.out);
}

/** wrk's durations: 812.00us, 1.23ms, 2.01s, 1.00m. */
function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v);
  if (!m) return NaN;
  const x = Number(m[1]);
  return m[2] === "us" ? x / 1000 : m[2] === "ms" ? x : m[2] === "s" ? x * 1000 : x * 60_000;
}

/** wrk's sizes (binary units): 512.00B, 3.10KB, 1.20GB → MiB. */
function mib(v: string): number {
  const m = /^([\d.]+)([KMGT]?B)$/.exec(v);
  if (!m) return NaN;
  const scale: Record<string, number> = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024, TB: 1048576 };
  return Number(m[1]) * scale[m[2]];
}

export function parseWrk(out: string): WrkResult {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out);
  if (!done) throw new Error(`no result in wrk output: ${out.trim().slice(0, 200)}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    requests: Number(done[1]),
    seconds: ms(`${done[2]}${done[3]}`) / 1000,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    mbps: mib(/Transfer\/sec:\s+(\S+)/.exec(out)?.[1] ?? ""),
    p50ms: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ""),
    p99ms: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ""),
    p999ms: ms(/^p99\.9 latency: (\S+)/m.exec(out)?.[1] ?? ""),
    errors: (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx,
  };
}
