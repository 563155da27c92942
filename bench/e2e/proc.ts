// Processes of the end-to-end bench: every long-lived one runs under timeout(1) and is
// registered here, so an exit, an error or Ctrl-C kills exactly what the bench started
// (by pid, never by name). CPU accounting reads utime+stime from /proc/PID/stat for a
// process and all its descendants (nginx workers, haproxy threads, tslb's workers).
import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";

export type Proc = ReturnType<typeof Bun.spawn>;

/** Clock ticks per second of /proc/PID/stat (USER_HZ; 100 on every Linux build we run on). */
const HZ = 100;

const live = new Set<Proc>();

/**
 * Spawns argv bounded by `timeout limitSec`, stdout and stderr appended to `log`.
 * The pid is timeout's; what it runs is its child (see descendants()).
 */
export function spawnBounded(argv: string[], limitSec: number, log: string, opts: { cwd?: string; env?: Record<string, string> } = {}): Proc {
  const fd = openSync(log, "a");
  try {
    const p = Bun.spawn(["timeout", "-k", "5", String(Math.ceil(limitSec)), ...argv], {
      stdin: "ignore", stdout: fd, stderr: fd, cwd: opts.cwd, env: opts.env ?? (process.env as Record<string, string>),
    });
    live.add(p);
    void p.exited.then(() => live.delete(p));
    return p;
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM (timeout passes it on to its child), then SIGKILL to the whole tree after graceMs. */
export async function stop(p: Proc, graceMs = 4000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const tree = descendants(p.pid);
  p.kill("SIGTERM");
  const done = await Promise.race([p.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
  if (!done) killTree(tree);
  await Promise.race([p.exited, Bun.sleep(1000)]);
}

function killTree(pids: number[]): void {
  for (const pid of pids) {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
  }
}

/** Synchronous last resort for exit and signal handlers: SIGKILL every registered tree. */
export function killAll(): void {
  for (const p of live) killTree(descendants(p.pid));
  live.clear();
}

/** Runs argv to completion (bounded by timeout), returning its output. Keeps signals serviceable. */
export async function run(argv: string[], limitSec: number): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(["timeout", "-k", "5", String(Math.ceil(limitSec)), ...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  live.add(p);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const code = await p.exited;
  live.delete(p);
  return { code, out, err };
}

interface StatLine { ppid: number; ticks: number }

function readStat(pid: number): StatLine | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may hold spaces and parentheses: fields count from the last ')'.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

/** root and every process below it. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU seconds (user + system) used so far by the trees under `roots`. */
export function cpuSeconds(roots: number[]): number {
  let ticks = 0;
  for (const r of roots) for (const pid of descendants(r)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / HZ;
}

/**
 * CPU seconds the whole machine has been busy, from /proc/stat's "cpu" line: all CPUs'
 * user (with nice and guest) and system time including interrupts and softirqs (`sys`),
 * and steal. Network work runs in softirq context on whatever task or ksoftirqd thread is
 * on the CPU, so only a machine-wide figure charges every configuration all of its costs.
 */
export function machineCpuSeconds(): { busy: number; sys: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const sys = system + irq + softirq;
  return { busy: (user + nice + sys + (steal || 0)) / HZ, sys: sys / HZ };
}
