// The rules' --check settings as monitor watches: which port and address each probe goes
// to (the destination's, the check's own port, or the VIP for --check-via-vip with a
// probe slot), keys that match the compiled destinations, labels for the log.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import { PROBE_PORT_BASE, watchSpecs } from "../../src/control/health.ts";
import { RuleIds } from "../../src/control/ids.ts";
import { emptyRuleSet, serviceKeyText } from "../../src/control/model.ts";

const RULES = `-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m --check http --check-path /h --check-status 204 --check-interval 0.5 --check-rise 1 --check-fall 4
-a -t 198.18.0.100:80 -r 198.18.1.12:8080 -m --check tcp --check-port 9000
-a -t 198.18.0.100:80 -r 198.18.1.13:8080 -m
-A -u [2001:2::100]:53 -s rr
-a -u [2001:2::100]:53 -r [2001:2::11]:53 -g --check udp --check-via-vip
-A -f 9 -s rr
-a -f 9 -r 198.18.1.14 -m --check tcp --check-port 22
`;

const ws = suite("watchSpecs");

ws("one watch per checked destination, with its target and settings", () => {
  const rules = applyAll(emptyRuleSet(), parseRestore(RULES, "ipvsadm", NO_NAMES), ["rr"]);
  const specs = watchSpecs(rules, () => 7);
  const web = serviceKeyText(rules.services[0].key);
  assert.equal(specs.map((s) => s.key), [
    RuleIds.destKey(web, { addr: "198.18.1.12", port: 8080 }), RuleIds.destKey(web, { addr: "198.18.1.11", port: 8080 }),
    RuleIds.destKey(serviceKeyText(rules.services[1].key), { addr: "2001:2::11", port: 53 }),
    RuleIds.destKey(serviceKeyText(rules.services[2].key), { addr: "198.18.1.14", port: 0 }),
  ]);
  assert.equal(specs.map((s) => s.label), [
    "198.18.1.12:8080 of TCP 198.18.0.100:80", "198.18.1.11:8080 of TCP 198.18.0.100:80",
    "[2001:2::11]:53 of UDP [2001:2::100]:53", "198.18.1.14:0 of FWM 9",
  ]);
  assert.equal(specs[0].target, { af: 4, addr: "198.18.1.12", port: 9000, path: "/", status: 0, localPort: 0 });
  assert.equal(specs[1].target, { af: 4, addr: "198.18.1.11", port: 8080, path: "/h", status: 204, localPort: 0 });
  assert.equal(specs[1].settings, { kind: "http", intervalMs: 500, timeoutMs: 1000, rise: 1, fall: 4 });
  assert.equal(specs[2].target, { af: 6, addr: "2001:2::100", port: 53, path: "/", status: 0, localPort: PROBE_PORT_BASE + 7 }, "via the VIP, from its slot's port");
  assert.equal(specs[3].target.port, 22);
});

ws("a via-VIP check without a probe slot probes the real server itself", () => {
  const rules = applyAll(emptyRuleSet(), parseRestore(RULES, "ipvsadm", NO_NAMES), ["rr"]);
  assert.equal(watchSpecs(rules, () => 0)[2].target, { af: 6, addr: "2001:2::11", port: 53, path: "/", status: 0, localPort: 0 });
});

ws.run();
