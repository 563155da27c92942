// realServerSetup (tslb doctor's per-server advice), for the forwarding methods whose
// advice does not depend on the host: full NAT needs nothing on the real server.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { realServerSetup } from "../../src/control/doctor.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { applyAll } from "../../src/control/apply.ts";
import { emptyRuleSet } from "../../src/control/model.ts";

const rules = (text: string) => applyAll(emptyRuleSet(), parseRestore(text, "ipvsadm", NO_NAMES), ["rr"]);

const s = suite("realServerSetup");

s("full NAT: nothing to set up; names the local addresses, else the balancer's own", () => {
  const r = rules("-A -t 198.18.0.1:80 -s rr --laddr 198.18.0.200,198.18.0.201\n-a -t 198.18.0.1:80 -r 198.19.0.1:8080 --fullnat\n" +
    "-A -t 198.18.0.2:80 -s rr\n-a -t 198.18.0.2:80 -r 198.19.0.1:8080 --fullnat\n");
  const [withL, without] = r.services;
  const a = realServerSetup(withL, withL.dests[0], "198.19.0.254");
  assert.ok(a[0].includes("Full NAT") && a[0].includes("198.18.0.200, 198.18.0.201"), a[0]);
  assert.ok(a.every((l) => l.startsWith("#")), "comments only: no command to run");
  assert.ok(realServerSetup(without, without.dests[0], "198.19.0.254")[0].includes("(198.19.0.254)"));
  assert.ok(realServerSetup(without, without.dests[0], null)[0].includes("<the balancer's address toward this server>"));
});

s("NAT still asks for the default route through the balancer", () => {
  const r = rules("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m\n");
  assert.ok(realServerSetup(r.services[0], r.services[0].dests[0], "198.19.0.254").includes("ip route replace default via 198.19.0.254"));
});

s.run();
