// -R's planning step and `-R --dry-run`'s report, both pure. planRestore parses -R input
// and applies it to a copy of the current rules line by line, so the first bad line, a
// syntax error or a command the "kernel" refuses, is named by its line number before
// anything is sent; diffRules says what a restore would change, one line per service,
// destination or timeout setting, each written in -S syntax so that it reads like the
// rule files users keep:
//
//   + -A -t 198.18.0.100:80 -s rr
//   + -a -t 198.18.0.100:80 -r 198.19.0.1:80 -g -w 1
//   ~ -a -t 198.18.0.100:80 -r 198.19.0.2:80 -m -w 3   (weight 1 -> 3)
//   - -A -u 198.18.0.53:53 -s wlc
//   1 service added, 1 service removed, 1 destination added, 1 destination edited
//
// `+` added, `-` removed, `~` edited (the settings that changed in parentheses). A removed
// service takes its destinations with it, and they are listed and counted too. Services
// and destinations come in -S order; the last line counts the changes, or says
// `no changes`.
import { RuleBatch } from "../control/apply.ts";
import type { Command } from "../control/commands.ts";
import { IpvsError } from "../control/errors.ts";
import type { Dest, Fwd, RuleSet, Service, Timeouts } from "../control/model.ts";
import { type ResolveEnv, type ReverseNames, NO_NAMES, systemNames } from "./names.ts";
import { checkOptions, sortDests, sortServices, formatSave, lineCommands, lineWords, restoreLines, schedFlagNames } from "./rules_text.ts";
import { FastLineCache, fastLineText } from "./fast_line.ts";

// ---- planning -----------------------------------------------------------------------

/** -R input as one Command batch per non-blank, non-comment line, parsed lazily (each line
 *  exactly as parseRestore parses it; an error gets that line's number). */
export function* restoreBatches(text: string, prog = "ipvsadm", env: ResolveEnv = systemNames()): Generator<{ line: number; cmds: Command[] }> {
  for (const { line, argv } of restoreLines(text)) {
    let cmds: Command[];
    try {
      cmds = lineCommands(argv, prog, env);
    } catch (e) {
      if (e instanceof IpvsError) e.line = line;
      throw e;
    }
    yield { line, cmds };
  }
}

/**
 * What `-R` would do to `current`: every Command of the input and the RuleSet after them.
 * Throws the IpvsError of the first failing line, in input order, with `line` set: ipvsadm's
 * message and exit status for a line that does not parse (2, or 255 for the "Try" path) or
 * that the kernel would refuse (255). Nothing is applied anywhere. Each line is parsed and
 * applied before the next is read (restoreBatches and applyLines, without their generator).
 * `after` shares what the input leaves alone with `current`, and the Commands of the
 * common line shapes are the objects `after` holds (no copies of 100 000 destinations):
 * treat all of them as read-only.
 */
export function planRestore(
  current: RuleSet, text: string, schedulers: readonly string[], prog = "ipvsadm", env: ResolveEnv = systemNames(),
): { cmds: Command[]; after: RuleSet } {
  const cmds: Command[] = [];
  const batch = new RuleBatch(current, schedulers, true);
  const raw = text.split("\n");
  const cache = new FastLineCache();
  for (let i = 0; i < raw.length; i++) {
    try {
      // The common line shapes straight from the text; their objects are new, so the
      // rules take them without copies (cmds then shares them: read only).
      const fast = fastLineText(raw[i], cache);
      if (fast !== null) {
        batch.apply(fast, true);
        cmds.push(fast);
        continue;
      }
      const argv = lineWords(raw[i]);
      if (argv === null) continue;
      for (const cmd of lineCommands(argv, prog, env)) {
        batch.apply(cmd);
        cmds.push(cmd);
      }
    } catch (e) {
      if (e instanceof IpvsError && e.line === undefined) e.line = i + 1;
      throw e;
    }
  }
  return { cmds, after: batch.rules };
}

// ---- the report ---------------------------------------------------------------------

const FWD_NAME: Readonly<Record<Fwd, string>> = { masq: "Masq", route: "Route", tunnel: "Tunnel", fullnat: "FullNat" };
const CSUM_FLAG = { nocsum: "-c", csum: "+c", remcsum: "r+c" } as const;

/** --tun-info's text for a tunnel destination. */
function tunnelText(d: Dest): string {
  switch (d.tunType) {
    case "ipip": return "ipip";
    case "gue": return `gue:${d.tunPort}:${CSUM_FLAG[d.tunCsum]}`;
    case "gre": return `gre:${CSUM_FLAG[d.tunCsum]}`;
  }
}

function flagsText(s: Service): string {
  if ((s.schedFlags & 7) === 0) return "none";
  const names = schedFlagNames(s.sched, s.schedFlags);
  // sh and mh have no name for flag-3 (ipvsadm prints none), but it is a change all the same.
  if ((s.schedFlags & 4) && (s.sched === "sh" || s.sched === "mh")) names.push("flag-3");
  return names.join(",");
}

const onOff = (b: boolean) => (b ? "on" : "off");
const persistText = (s: Service) => (s.persistent ? String(s.timeoutSec) : "off");
const proxyText = (s: Service) => (s.proxyProtocol ? `v${s.proxyProtocol}` : "off");

/** "what old -> new" for each service setting that differs. */
function serviceChanges(a: Service, b: Service): string[] {
  const out: string[] = [];
  const diff = (what: string, x: string, y: string) => { if (x !== y) out.push(`${what} ${x} -> ${y}`); };
  diff("scheduler", a.sched, b.sched);
  if ((a.schedFlags & 7) !== (b.schedFlags & 7)) out.push(`sched-flags ${flagsText(a)} -> ${flagsText(b)}`);
  diff("persistent", persistText(a), persistText(b));
  diff("netmask", a.netmask, b.netmask);
  diff("pe", a.pe || "none", b.pe || "none");
  diff("ops", onOff(a.ops), onOff(b.ops));
  diff("laddr", a.laddrs.join(",") || "default", b.laddrs.join(",") || "default");
  diff("proxy-protocol", proxyText(a), proxyText(b));
  return out;
}

/** "what old -> new" for each destination setting that differs. */
function destChanges(a: Dest, b: Dest): string[] {
  const out: string[] = [];
  const diff = (what: string, x: string | number, y: string | number) => { if (x !== y) out.push(`${what} ${x} -> ${y}`); };
  diff("forward", FWD_NAME[a.fwd], FWD_NAME[b.fwd]);
  diff("weight", a.weight, b.weight);
  diff("u-threshold", a.uThreshold, b.uThreshold);
  diff("l-threshold", a.lThreshold, b.lThreshold);
  if (a.fwd === "tunnel" && b.fwd === "tunnel") diff("tunnel", tunnelText(a), tunnelText(b));
  diff("check", a.check ? checkOptions(a.check) : "none", b.check ? checkOptions(b.check) : "none");
  return out;
}

const destKey = (d: Dest) => `${d.af}/${d.addr}/${d.port}`;
const svcKey = (s: Service) => JSON.stringify([s.key.kind, s.key.af, s.key.addr, s.key.port, s.key.fwmark]);

interface Counts { svcAdd: number; svcDel: number; svcEdit: number; destAdd: number; destDel: number; destEdit: number; timeouts: number }

function summary(c: Counts): string {
  const part = (n: number, noun: string, verb: string) => (n ? [`${n} ${noun}${n === 1 ? "" : "s"} ${verb}`] : []);
  const parts = [
    ...part(c.svcAdd, "service", "added"), ...part(c.svcDel, "service", "removed"), ...part(c.svcEdit, "service", "edited"),
    ...part(c.destAdd, "destination", "added"), ...part(c.destDel, "destination", "removed"),
    ...part(c.destEdit, "destination", "edited"),
    ...(c.timeouts ? ["timeouts changed"] : []),
  ];
  return parts.length ? parts.join(", ") : "no changes";
}

const timeoutChanges = (a: Timeouts, b: Timeouts) =>
  (["tcp", "tcpfin", "udp"] as const).filter((k) => a[k] !== b[k]).map((k) => `${k} ${a[k]} -> ${b[k]}`);

/**
 * The report of `-R --dry-run`: what turns `before` into `after`, line by line (see the
 * top of this file), ending with the counts line. Addresses and ports are numeric unless
 * `names` is given (then as -S without -n prints them). Thresholds, which -S never
 * prints, are appended as `-x`/`-y` when set, so that every line is valid -R input.
 */
export function diffRules(before: RuleSet, after: RuleSet, names?: ReverseNames): string {
  const numeric = names === undefined;
  const nm = names ?? NO_NAMES;
  const svcLine = (s: Service) => formatSave([{ ...s, dests: [] }], numeric, nm).slice(0, -1);
  const destLine = (s: Service, d: Dest) => {
    const line = formatSave([{ ...s, dests: [d] }], numeric, nm).split("\n")[1];
    return line + (d.uThreshold ? ` -x ${d.uThreshold}` : "") + (d.lThreshold ? ` -y ${d.lThreshold}` : "");
  };
  const note = (changes: string[]) => `   (${changes.join(", ")})`;

  const c: Counts = { svcAdd: 0, svcDel: 0, svcEdit: 0, destAdd: 0, destDel: 0, destEdit: 0, timeouts: 0 };
  let out = "";
  const oldSvcs = new Map(before.services.map((s) => [svcKey(s), s]));
  const newKeys = new Set(after.services.map(svcKey));
  const union = [...after.services, ...before.services.filter((s) => !newKeys.has(svcKey(s)))];

  for (const svc of sortServices(union)) {
    const key = svcKey(svc);
    if (!newKeys.has(key)) { // removed, and its destinations with it
      c.svcDel++;
      out += `- ${svcLine(svc)}\n`;
      for (const d of sortDests(svc.dests)) { c.destDel++; out += `- ${destLine(svc, d)}\n`; }
      continue;
    }
    const old = oldSvcs.get(key);
    if (!old) {
      c.svcAdd++;
      out += `+ ${svcLine(svc)}\n`;
      for (const d of sortDests(svc.dests)) { c.destAdd++; out += `+ ${destLine(svc, d)}\n`; }
      continue;
    }
    const changes = serviceChanges(old, svc);
    if (changes.length) { c.svcEdit++; out += `~ ${svcLine(svc)}${note(changes)}\n`; }
    const oldDests = new Map(old.dests.map((d) => [destKey(d), d]));
    const newDests = new Set(svc.dests.map(destKey));
    const dests = [...svc.dests, ...old.dests.filter((d) => !newDests.has(destKey(d)))];
    for (const d of sortDests(dests)) {
      const was = oldDests.get(destKey(d));
      if (!newDests.has(destKey(d))) { c.destDel++; out += `- ${destLine(old, d)}\n`; }
      else if (!was) { c.destAdd++; out += `+ ${destLine(svc, d)}\n`; }
      else {
        const dc = destChanges(was, d);
        if (dc.length) { c.destEdit++; out += `~ ${destLine(svc, d)}${note(dc)}\n`; }
      }
    }
  }

  const tc = timeoutChanges(before.timeouts, after.timeouts);
  if (tc.length) {
    c.timeouts++;
    const t = after.timeouts;
    out += `~ --set ${t.tcp} ${t.tcpfin} ${t.udp}${note(tc)}\n`;
  }
  return out + summary(c) + "\n";
}
