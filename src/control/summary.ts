// One line that says what a rule change did, for the daemon's log: "1 service added,
// 2 destinations edited", "timeouts changed", "no changes" (the counts line of
// -R --dry-run, cli/dry_run.ts, without its per-rule lines and sorting). Linear in the
// rules, so it costs little next to applyAll even with tens of thousands of rules.
import { type Dest, type RuleSet, type Service, destKeyText, serviceKeyText } from "./model.ts";

const settings = (s: Service) => JSON.stringify({ ...s, dests: undefined });
const plural = (n: number, noun: string, verb: string) => (n ? [`${n} ${noun}${n === 1 ? "" : "s"} ${verb}`] : []);

export function changeSummary(before: RuleSet, after: RuleSet): string {
  const old = new Map(before.services.map((s) => [serviceKeyText(s.key), s]));
  const kept = new Set<string>();
  let svcAdd = 0, svcDel = 0, svcEdit = 0, destAdd = 0, destDel = 0, destEdit = 0;
  for (const s of after.services) {
    const k = serviceKeyText(s.key);
    const was = old.get(k);
    if (!was) { svcAdd++; destAdd += s.dests.length; continue; }
    kept.add(k);
    // The same object: a batch left the service alone and shared it (control/apply.ts).
    if (was === s) continue;
    if (settings(was) !== settings(s)) svcEdit++;
    const oldDests = new Map<string, Dest>(was.dests.map((d) => [destKeyText(d), d]));
    for (const d of s.dests) {
      const w = oldDests.get(destKeyText(d));
      if (!w) destAdd++;
      else if (w !== d && JSON.stringify(w) !== JSON.stringify(d)) destEdit++;
      oldDests.delete(destKeyText(d));
    }
    destDel += oldDests.size;
  }
  for (const [k, s] of old) if (!kept.has(k)) { svcDel++; destDel += s.dests.length; }
  const t = (r: RuleSet) => `${r.timeouts.tcp} ${r.timeouts.tcpfin} ${r.timeouts.udp}`;
  const parts = [
    ...plural(svcAdd, "service", "added"), ...plural(svcDel, "service", "removed"), ...plural(svcEdit, "service", "edited"),
    ...plural(destAdd, "destination", "added"), ...plural(destDel, "destination", "removed"), ...plural(destEdit, "destination", "edited"),
    ...(t(before) !== t(after) ? ["timeouts changed"] : []),
  ];
  return parts.length ? parts.join(", ") : "no changes";
}
