// Every rules file in examples/ (the README points users at them) restores cleanly.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import { emptyRuleSet } from "../../src/control/model.ts";
import { SCHEDULER_NAMES } from "../../src/sched/index.ts";

const dir = join(import.meta.dir, "..", "..", "examples");
const files = readdirSync(dir).filter((f) => f.endsWith(".rules"));

test("examples/ has rules files", () => {
  assert.ok(files.includes("nat.rules") && files.includes("fullnat.rules"), files.join(" "));
});

for (const f of files) {
  test(`examples/${f} parses and applies`, () => {
    const rules = applyAll(emptyRuleSet(), parseRestore(readFileSync(join(dir, f), "utf8"), "tslb", NO_NAMES), SCHEDULER_NAMES);
    assert.ok(rules.services.length > 0);
    for (const s of rules.services) assert.ok(s.dests.length > 0, `${f}: a service without servers`);
  });
}

test.run();
