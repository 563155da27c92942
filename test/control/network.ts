import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import { emptyRuleSet } from "../../src/control/model.ts";
import { coverV4, planNetwork } from "../../src/control/network.ts";
import { formatIPv4, parseIPv4 } from "../../src/wire/addr.ts";

const v4 = (s: string) => parseIPv4(s)! >>> 0;
const text = (c: { addr: number; len: number }[]) => c.map((b) => `${formatIPv4(b.addr)}/${b.len}`);

const cover = suite("coverV4: the fewest prefixes holding exactly the addresses");

cover("runs become aligned blocks; lone addresses stay /32", () => {
  assert.equal(text(coverV4([v4("198.18.1.11"), v4("198.18.1.12"), v4("198.18.1.13")])), ["198.18.1.11/32", "198.18.1.12/31"]);
  const run = Array.from({ length: 250 }, (_, i) => v4(`198.19.0.${i + 1}`));
  assert.equal(text(coverV4(run)), ["198.19.0.1/32", "198.19.0.2/31", "198.19.0.4/30", "198.19.0.8/29", "198.19.0.16/28",
    "198.19.0.32/27", "198.19.0.64/26", "198.19.0.128/26", "198.19.0.192/27", "198.19.0.224/28", "198.19.0.240/29",
    "198.19.0.248/31", "198.19.0.250/32"]);
  assert.equal(text(coverV4([v4("198.18.0.0"), v4("198.18.0.1"), v4("198.18.0.1")])), ["198.18.0.0/31"]);
  assert.equal(text(coverV4([v4("255.255.255.255"), v4("255.255.255.254")])), ["255.255.255.254/31"]);
  assert.equal(coverV4([]), []);
});

cover("on seeded sets, the blocks hold every address and nothing else", () => {
  let seed = 11;
  const rand = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
  for (let k = 0; k < 200; k++) {
    const want = new Set<number>();
    const base = v4("198.18.0.0") + rand(1 << 16);
    for (let i = rand(300); i > 0; i--) want.add(base + rand(512));
    const got = new Set<number>();
    for (const b of coverV4([...want])) {
      assert.is(b.addr % 2 ** (32 - b.len), 0, "aligned");
      for (let a = 0; a < 2 ** (32 - b.len); a++) {
        assert.not.ok(got.has(b.addr + a), "no overlap");
        got.add(b.addr + a);
      }
    }
    assert.equal([...got].sort(), [...want].sort());
  }
});

const plan = suite("planNetwork");

plan("reply rules: per protocol and port, masqueraded servers only, ICMP once per address", () => {
  const rules = applyAll(emptyRuleSet(), parseRestore([
    "-A -t 198.18.0.1:80 -s rr", "-a -t 198.18.0.1:80 -r 198.18.1.12:8080 -m", "-a -t 198.18.0.1:80 -r 198.18.1.13:8080 -m",
    "-a -t 198.18.0.1:80 -r 198.18.1.11:8080 -m", "-a -t 198.18.0.1:80 -r 198.18.1.14:8080 -g",
    "-A -u 198.18.0.1:53 -s rr", "-a -u 198.18.0.1:53 -r 198.18.1.12:5353 -m",
    "-A -t [2001:2::1]:80 -s rr", "-a -t [2001:2::1]:80 -r [2001:2::b]:80 -m", "-a -t [2001:2::1]:80 -r [2001:2::a]:80 -m",
  ].join("\n"), "ipvsadm", NO_NAMES), ["rr"]);
  const p = planNetwork(rules);
  assert.equal([...p.vips.keys()].sort(), ["4|198.18.0.1", "6|2001:2::1"]);
  assert.equal([...p.replies.keys()].sort(), [
    "4|198.18.1.11/32|1|0", "4|198.18.1.11/32|6|8080", "4|198.18.1.12/31|1|0", "4|198.18.1.12/31|6|8080", "4|198.18.1.12/32|17|5353",
    "6|2001:2::a/128|58|0", "6|2001:2::a/128|6|80", "6|2001:2::b/128|58|0", "6|2001:2::b/128|6|80",
  ]);
  assert.equal(p.replies.get("4|198.18.1.12/31|6|8080"), { af: 4, rip: "198.18.1.12", ripLen: 31, proto: 6, rport: 8080 });
});

cover.run();
plan.run();
