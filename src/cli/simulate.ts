// The `tslb --simulate` command line (tslb-only):
//   tslb --simulate [--flows N | --pcap FILE] [--remove ADDR:PORT]... [--add ADDR:PORT[@WEIGHT]]... [--rules FILE]
// Rules come from --rules FILE, else from stdin when it is not a terminal, else from the
// running daemon. --remove/--add change every service that has (or gets) that server.
import { readFileSync } from "node:fs";
import { call } from "../control/client.ts";
import { IpvsError } from "../control/errors.ts";
import { emptyRuleSet, type Dest, type RuleSet } from "../control/model.ts";
import type { GlobalOptions } from "../control/options.ts";
import { formatSimulation, pcapFlows, simulate, syntheticFlows, type SimFlow } from "../control/simulate.ts";
import { canonicalAddr } from "../wire/addr.ts";
import { NO_NAMES } from "./names.ts";
import { parseRestore } from "./rules_text.ts";
import { applyAll } from "../control/apply.ts";
import { SCHEDULER_NAMES } from "../sched/index.ts";
import { writeOut } from "./stdout.ts";

const USAGE = "usage: tslb --simulate [--flows N | --pcap FILE] [--remove ADDR:PORT]... [--add ADDR:PORT[@WEIGHT]]... [--rules FILE]";

function parseServer(text: string): { af: 4 | 6; addr: string; port: number; weight: number } {
  const [hostPort, w] = text.split("@");
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(hostPort) ?? /^([^:]+):(\d+)$/.exec(hostPort);
  if (!m) throw new Error(`bad server ${text}: expected ADDR:PORT or [ADDR]:PORT`);
  const af = m[1].includes(":") ? 6 : 4;
  const addr = canonicalAddr(af, m[1]);
  if (addr === null) throw new Error(`bad address ${m[1]}`);
  return { af, addr, port: Number(m[2]), weight: w === undefined ? 1 : Number(w) };
}

export async function runSimulate(argv: string[], o: GlobalOptions): Promise<number> {
  let flows = 10000;
  let pcap: SimFlow[] | null = null;
  let rulesFile = "";
  const removes: ReturnType<typeof parseServer>[] = [];
  const adds: ReturnType<typeof parseServer>[] = [];
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const v = () => {
        const x = argv[++i];
        if (x === undefined) throw new Error(`${a} needs a value`);
        return x;
      };
      if (a === "--flows") flows = Number(v());
      else if (a === "--pcap") pcap = pcapFlows(new Uint8Array(readFileSync(v())));
      else if (a === "--remove") removes.push(parseServer(v()));
      else if (a === "--add") adds.push(parseServer(v()));
      else if (a === "--rules") rulesFile = v();
      else throw new Error(`unknown option ${a}`);
    }
    if (!Number.isInteger(flows) || flows < 1 || flows > 10_000_000) throw new Error("--flows must be 1 to 10000000");
  } catch (e) {
    process.stderr.write(`tslb: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  try {
    let rules: RuleSet;
    if (rulesFile || !process.stdin.isTTY) {
      const text = rulesFile ? readFileSync(rulesFile, "utf8") : await new Response(Bun.stdin.stream()).text();
      rules = applyAll(emptyRuleSet(), parseRestore(text, "tslb", NO_NAMES), SCHEDULER_NAMES);
    } else {
      const r = await call(o, { op: "rules" }, false);
      if (r && !r.ok) throw new IpvsError(r.code, r.message, r.exit);
      rules = (r?.data as RuleSet | undefined) ?? emptyRuleSet();
    }
    let changed: RuleSet | undefined;
    const words: string[] = [];
    if (removes.length || adds.length) {
      changed = structuredClone(rules);
      for (const svc of changed.services) {
        for (const r of removes) svc.dests = svc.dests.filter((d) => !(d.addr === r.addr && d.port === r.port));
        for (const a of adds) {
          if (svc.dests.some((d) => d.addr === a.addr && d.port === a.port) || a.af !== svc.key.af) continue;
          const tmpl: Dest = svc.dests[0] ?? { af: a.af, addr: "", port: 0, fwd: "masq", weight: 1, uThreshold: 0, lThreshold: 0, tunType: "ipip", tunPort: 0, tunCsum: "nocsum" };
          svc.dests.unshift({ ...tmpl, af: a.af, addr: a.addr, port: a.port, weight: a.weight, uThreshold: 0, lThreshold: 0 });
        }
      }
      removes.forEach((r) => words.push(`--remove ${r.addr}:${r.port}`));
      adds.forEach((a) => words.push(`--add ${a.addr}:${a.port}@${a.weight}`));
    }
    const synthetic = new Map<number, SimFlow[]>();
    const flowsFor = (s: RuleSet["services"][number]) => {
      if (pcap) return pcap.filter((f) => f.af === s.key.af);
      if (!synthetic.has(s.key.af)) synthetic.set(s.key.af, syntheticFlows(flows, s.key.af));
      return synthetic.get(s.key.af)!;
    };
    writeOut(formatSimulation(simulate(rules, flowsFor, changed), words.join(" ")));
    return 0;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return e instanceof IpvsError ? e.exit : 1;
  }
}
