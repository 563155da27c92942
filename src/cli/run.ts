// The CLI role: argv → Invocation (ipvsadm's grammar) → request to the daemon → output
// in ipvsadm's formats. Errors print ipvsadm's text on stderr and exit with its status.
// Read-only commands with no daemon behave as ipvsadm does on an empty table.
import { call } from "../control/client.ts";
import type { Invocation } from "../control/commands.ts";
import { IpvsError } from "../control/errors.ts";
import { DEFAULT_TIMEOUTS, emptyRuleSet, type RuleSet } from "../control/model.ts";
import type { GlobalOptions } from "../control/options.ts";
import type { ConnView, LaddrReply, ListReply, Reply, Request } from "../control/protocol.ts";
import { SCHEDULER_NAMES } from "../sched/index.ts";
import { diffRules, planRestore } from "./dry_run.ts";
import { formatSave } from "./rules_text.ts";
import { formatConns, helpText, versionText } from "./format_list.ts";
import { parseArgs } from "./getopt.ts";
import { formatLaddrs } from "./format_laddr.ts";
import { formatConnsJson } from "./format_json.ts";
import { listText } from "./list_text.ts";
import { type NameFiles, NO_NAMES, systemNameFiles, systemNames } from "./names.ts";
import { writeOut } from "./stdout.ts";

const EMPTY_LIST: ListReply = { size: 4096, services: [], timeouts: { ...DEFAULT_TIMEOUTS } };

function fail(e: unknown): number {
  if (e instanceof IpvsError) {
    process.stderr.write(e.message + "\n");
    return e.exit;
  }
  process.stderr.write(`tslb: ${(e as Error).message ?? e}\n`);
  return 1;
}

function replyData<T>(r: Reply | null, empty: T): T {
  if (r === null) return empty;
  if (!r.ok) {
    const e = new IpvsError(r.code, r.message, r.exit);
    if (r.line !== undefined) e.line = r.line;
    throw e;
  }
  return r.data as T;
}

/** Host and service names travel with a request that formats or parses for this process (not when numeric). */
function namesFor(numeric: boolean): { names?: NameFiles } {
  return numeric ? {} : { names: systemNameFiles() };
}

async function readStdin(): Promise<string> {
  return await new Response(Bun.stdin.stream()).text();
}

/** Runs one CLI invocation; returns the exit status. */
export async function runCli(argv: string[], o: GlobalOptions, prog: string): Promise<number> {
  let inv: Invocation;
  try {
    inv = argv.length === 0 ? parseArgs(["-L"], systemNames(), prog) : parseArgs(argv, systemNames(), prog);
  } catch (e) {
    return fail(e);
  }
  try {
    switch (inv.kind) {
      case "help": writeOut(helpText(prog)); return 0;
      case "version": writeOut(versionText()); return 0;
      case "apply": replyData(await call(o, { op: "apply", cmds: inv.cmds }, true), null); return 0;
      case "restore": {
        const text = await readStdin();
        if (inv.dryRun) {
          const current = replyData<RuleSet>(await call(o, { op: "rules" }, false), emptyRuleSet());
          writeOut(diffRules(current, planRestore(current, text, SCHEDULER_NAMES, prog, systemNames()).after));
          return 0;
        }
        // All-or-nothing, in the daemon: it parses every line and applies it to a copy of
        // its rules, so the first bad line is named (parse error or kernel refusal alike),
        // then installs all of it or none.
        const req: Request = { op: "restore", text, prog, names: systemNameFiles() };
        let r = await call(o, req, false);
        if (r === null) {
          // No daemon: the text is checked here first, so that a bad or empty restore
          // starts none (as ipvsadm loads no module for a failed restore).
          if (planRestore(emptyRuleSet(), text, SCHEDULER_NAMES, prog, systemNames()).cmds.length === 0) return 0;
          r = await call(o, req, true);
        }
        replyData(r, null);
        return 0;
      }
      case "zero": {
        const r = await call(o, { op: "zero", key: inv.key }, false);
        if (r === null && inv.key) throw new IpvsError("ESRCH", "No such service", 255);
        replyData(r, null);
        return 0;
      }
      case "save": {
        // Formatted by the daemon, with this process's names unless numeric (see listText).
        const text = replyData<string | null>(await call(o, { op: "save", numeric: inv.numeric, ...namesFor(inv.numeric) }, false), null);
        writeOut(text ?? formatSave(emptyRuleSet(), inv.numeric, inv.numeric ? NO_NAMES : systemNames()));
        return 0;
      }
      case "start-daemon":
      case "stop-daemon":
        // Parsed and validated exactly as ipvsadm does; connection sync itself is not built yet.
        throw new IpvsError("ENOTSUP", "connection synchronisation (--start-daemon/--stop-daemon) is not supported by tslb yet", 2);
      case "list": {
        const names = inv.opts.numeric ? NO_NAMES : systemNames();
        if (inv.opts.connections) {
          const conns = replyData<ConnView[]>(await call(o, { op: "conns" }, false), []);
          writeOut(inv.opts.json ? formatConnsJson(conns) : formatConns(conns, inv.opts, names));
          return 0;
        }
        if (inv.opts.laddr) {
          const empty: LaddrReply = { ports: [o.fullnatPorts[0], o.fullnatPorts[1]], services: [] };
          writeOut(formatLaddrs(replyData<LaddrReply>(await call(o, { op: "laddrs" }, false), empty), inv.opts, names));
          return 0;
        }
        // The daemon formats the listing where the data is (cli/list_text.ts), with this
        // process's names unless numeric; with no daemon the table is empty.
        const text = replyData<string | null>(await call(o, { op: "list", opts: inv.opts, ...namesFor(inv.opts.numeric) }, false), null);
        writeOut(text ?? listText(EMPTY_LIST, inv.opts, names));
        return 0;
      }
    }
  } catch (e) {
    const code = fail(e);
    if (e instanceof IpvsError && e.line !== undefined) process.stderr.write(`tslb: restore stopped at line ${e.line}; nothing was changed\n`);
    return code;
  }
}
