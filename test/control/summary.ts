// changeSummary (the daemon's one-line log of a rule change) against the counts line of
// -R --dry-run's diffRules, its slow reference, on seeded random edits.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { diffRules } from "../../src/cli/dry_run.ts";
import { CHECK_DEFAULTS, type RuleSet } from "../../src/control/model.ts";
import { changeSummary } from "../../src/control/summary.ts";
import { randomRules, rng } from "../helpers/random_rules.ts";

/** A copy of r with a few random edits: services and destinations removed, added, edited; timeouts. */
function edited(r: RuleSet, seed: number): RuleSet {
  const n = rng(seed);
  const out = structuredClone(r);
  const other = randomRules(seed + 7777);
  for (const s of out.services) {
    if (n(4) === 0) s.sched = s.sched === "rr" ? "wlc" : "rr";
    for (const d of s.dests) {
      if (n(4) === 0) d.weight = (d.weight + 1) % 65536;
      if (n(6) === 0) d.check = { kind: "tcp", ...CHECK_DEFAULTS, port: 1 };
    }
    if (s.dests.length && n(3) === 0) s.dests.splice(n(s.dests.length), 1);
  }
  if (out.services.length && n(3) === 0) out.services.splice(n(out.services.length), 1);
  out.services.push(...other.services.filter((s) => !out.services.some((x) => JSON.stringify(x.key) === JSON.stringify(s.key))).slice(0, n(3)));
  if (n(4) === 0) out.timeouts = { ...out.timeouts, tcp: out.timeouts.tcp + 1 };
  return out;
}

const sum = suite("changeSummary");

sum("equals diffRules' counts line on 300 seeded edits", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const a = randomRules(seed);
    const b = edited(a, seed);
    const want = diffRules(a, b).trimEnd().split("\n").pop();
    assert.is(changeSummary(a, b), want, `seed ${seed}`);
  }
  assert.is(changeSummary(randomRules(3), randomRules(3)), "no changes");
});

sum.run();
