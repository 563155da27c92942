// The state file: atomic writes (never a partial file, the temp file gone, mode 0600), and
// the text round-trips: applyAll(empty, parse(stateText(r))) deep-equals r for seeded
// random rules with thresholds, timeouts and health checks, which plain -S would lose.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import { CHECK_DEFAULTS, type CheckKind, emptyRuleSet, type RuleSet } from "../../src/control/model.ts";
import { readIfExists, stateText, writeAtomic } from "../../src/control/state_file.ts";
import { randomRules, rng, TEST_SCHEDULERS, tslbAccepts } from "../helpers/random_rules.ts";

const dir = mkdtempSync(join(tmpdir(), "tslb-state-"));

// ---
const w = suite("writeAtomic");

w("writes the whole text, replaces an older file, leaves no temp file, mode 0600, creates the directory", () => {
  const p = join(dir, "sub", "state");
  assert.is(readIfExists(p), null);
  writeAtomic(p, "one\n");
  assert.is(readFileSync(p, "utf8"), "one\n");
  const big = "x".repeat(1 << 20) + "\n";
  writeAtomic(p, big);
  assert.is(readFileSync(p, "utf8"), big);
  assert.equal(readdirSync(join(dir, "sub")), ["state"]);
  assert.is(statSync(p).mode & 0o777, 0o600);
});

w("a reader never sees a partial file: the old inode stays intact until the rename", () => {
  const p = join(dir, "state2");
  writeFileSync(p, "old\n");
  const before = statSync(p).ino;
  writeAtomic(p, "new\n");
  assert.is.not(statSync(p).ino, before, "a new file was renamed over the old one");
  assert.is(readFileSync(p, "utf8"), "new\n");
});

w.run();

// ---
const rt = suite("stateText round trip");

/** randomRules plus what -S does not keep: thresholds, timeouts, checks. */
function richRules(seed: number): RuleSet {
  const r = tslbAccepts(randomRules(seed)); // SCTP and --proxy-protocol parse, but no daemon accepts them
  const n = rng(seed ^ 0x5a5a);
  r.timeouts = { tcp: 1 + n(3600), tcpfin: 1 + n(600), udp: 1 + n(600) };
  for (const s of r.services) {
    for (const d of s.dests) {
      if (n(3) === 0) { d.uThreshold = 10 + n(1000); d.lThreshold = n(d.uThreshold); }
      if (n(2) === 0) {
        const kind = (["tcp", "http", "udp"] as CheckKind[])[n(3)];
        d.check = {
          kind, ...CHECK_DEFAULTS,
          port: d.port === 0 || n(3) === 0 ? 1 + n(65535) : 0,
          intervalMs: 1 + n(10_000), timeoutMs: 1 + n(5000), rise: 1 + n(9), fall: 1 + n(9),
          ...(kind === "http" ? { path: n(2) ? "/" : `/h${n(100)}?q=${n(9)}`, status: n(2) ? 0 : 200 + n(300) } : {}),
        };
        if (d.check.port === d.port) d.check.port = 0;
      }
    }
  }
  return r;
}

rt("200 seeded rule sets survive stateText -> -R exactly", () => {
  let checks = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const r = richRules(seed);
    checks += r.services.reduce((a, s) => a + s.dests.filter((d) => d.check).length, 0);
    const text = stateText(r);
    assert.ok(text.startsWith("# tslb state"));
    const back = applyAll(emptyRuleSet(), parseRestore(text, "tslb", NO_NAMES), TEST_SCHEDULERS);
    assert.equal(back, r, `seed ${seed}:\n${text}`);
  }
  assert.ok(checks > 100, `${checks} checks`);
});

rt.run();
