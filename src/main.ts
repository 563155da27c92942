// tslb: one binary, two roles. The first word decides: `--daemon` runs the data plane
// and control socket (`--foreground` keeps it attached, for containers and systemd),
// `--shutdown` stops a running daemon and removes what it made, `--simulate` shows what
// the schedulers would do with the rules, `--decap` is the real-server side of tunnel mode
// (src/decap/run.ts), anything else is the ipvsadm-compatible CLI.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { runCli } from "./cli/run.ts";
import { runSimulate } from "./cli/simulate.ts";
import { runDoctor } from "./control/doctor.ts";
import { call, isRunning, startDaemon } from "./control/client.ts";
import { runDaemon } from "./control/daemon.ts";
import { OptionError, splitGlobalOptions } from "./control/options.ts";
import { runDecap } from "./decap/run.ts";
import { flushStdout } from "./cli/stdout.ts";

async function main(): Promise<number> {
  // The decap role has its own options (TSLB_DECAP_*), none of the daemon's.
  if (process.argv[2] === "--decap") return runDecap(process.argv.slice(3), process.env);
  let split;
  try {
    split = splitGlobalOptions(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof OptionError) { process.stderr.write(`tslb: ${e.message}\n`); return 2; }
    throw e;
  }
  const { opts, rest } = split;
  if (opts.role === "daemon") {
    if (await isRunning(opts.socket)) {
      process.stderr.write(`tslb: a daemon already answers on ${opts.socket}\n`);
      return 1;
    }
    if (opts.foreground) {
      await runDaemon(opts);
      return -1; // keep running
    }
    await startDaemon(opts);
    return 0;
  }
  if (opts.role === "simulate") return runSimulate(rest, opts);
  if (rest[0] === "doctor" && rest.length === 1) return runDoctor(opts);
  if (opts.role === "shutdown") {
    const r = await call(opts, { op: "shutdown" }, false);
    if (r === null) return 0; // nothing running: nothing to remove
    // Done when the daemon process is gone (it removes its devices and rules first), not
    // merely its socket (the first thing it closes).
    const pid = r.ok ? (r.data as { pid?: number } | undefined)?.pid : undefined;
    for (let i = 0; i < 250 && (pid ? alive(pid) : await isRunning(opts.socket)); i++) await Bun.sleep(20);
    return 0;
  }
  // ipvsadm names itself by argv[0] in its messages; so does tslb (a symlink named ipvsadm says "ipvsadm").
  return runCli(rest, opts, basename(process.argv0 || "tslb"));
}

/** The process exists and has not exited (a zombie waits only for its parent). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const code = await main();
await flushStdout();
if (code >= 0) process.exit(code);
