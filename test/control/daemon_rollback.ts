// The daemon's rule change without a kernel: the data plane gets the snapshot while the
// kernel takes the routes, so a change the kernel refuses must take back the ids, the
// rules and the data plane's snapshot. A stand-in network refuses one VIP.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Daemon } from "../../src/control/daemon.ts";
import { IpvsError } from "../../src/control/errors.ts";
import { RuleIds } from "../../src/control/ids.ts";
import { type RuleSet, serviceKeyText } from "../../src/control/model.ts";
import type { NetPlan } from "../../src/control/network.ts";
import { DEFAULT_SYSCTLS } from "../../src/control/options.ts";
import type { Snapshot } from "../../src/dataplane/snapshot.ts";

const REFUSED = "198.18.0.99";

/** A Daemon with stand-ins for the kernel, the mark devices and the worker (private fields reached on purpose). */
function daemon() {
  const events: string[] = [];
  const logger = Object.assign((m: string) => events.push(m), { event: (_k: string, m: string) => events.push(m) });
  const d = new Daemon({ connMax: 1024, sysctl: DEFAULT_SYSCTLS, fullnatPorts: [61000, 65534] } as never, logger as never);
  const inner = d as unknown as {
    net: { apply(p: NetPlan): void }; marks: object; nl: object; rules: RuleSet; ids: RuleIds;
    host: { post(s: Snapshot): Promise<void> }; restore(text: string, prog: string, names: object): Promise<void>;
  };
  const installed = new Set<string>();
  inner.net = {
    apply(p) {
      for (const k of p.vips.keys()) if (k.endsWith(REFUSED)) throw new Error(`route to ${REFUSED} refused`);
      installed.clear();
      for (const k of p.vips.keys()) installed.add(k);
    },
  };
  inner.marks = { sync() {}, closeStale() {}, devices: () => [] };
  inner.nl = {};
  const posted: Snapshot[] = [];
  inner.host.post = async (s) => { posted.push(s); };
  const restore = (text: string) => inner.restore(text, "tslb", { hosts: "", services: "" });
  return { inner, installed, posted, restore };
}

const r = suite("daemon: a change the kernel refuses is taken back");

r("rules, ids, routes and the data plane's snapshot are the ones from before", async () => {
  const { inner, installed, posted, restore } = daemon();
  await restore("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1:80 -m\n-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m\n" +
    "-A -t 198.18.0.2:80 -s rr\n-a -t 198.18.0.2:80 -r 198.19.0.3:80 -m\n");
  const rules = inner.rules;
  const ids = [[...inner.ids.svcIds], [...inner.ids.destIds]];
  const gone = RuleIds.destKey(serviceKeyText(rules.services[1].key), { addr: "198.19.0.3", port: 80 });
  const goneId = inner.ids.destId(gone);
  const lastGood = posted[posted.length - 1];
  // Removes a service, edits one, adds the refused VIP: fails in the kernel step.
  const err = await restore("-D -t 198.18.0.2:80\n-a -t 198.18.0.1:80 -r 198.19.0.4:80 -m\n-A -t 198.18.0.99:80 -s rr\n").then(() => null, (e) => e);
  assert.instance(err, Error);
  assert.not.instance(err, IpvsError);
  assert.match(String(err), /refused/);
  assert.is(inner.rules, rules, "the running rules are the old object");
  assert.equal([[...inner.ids.svcIds], [...inner.ids.destIds]], ids);
  assert.is(inner.ids.destId(gone), goneId, "the removed service's server has its id again");
  assert.equal([...installed].sort(), ["4|198.18.0.1", "4|198.18.0.2"]);
  // The data plane got the new snapshot, then the old rules again (a newer generation).
  const last = posted[posted.length - 1];
  assert.ok(last.gen > lastGood.gen + 1);
  assert.equal([...last.packed!.svc], [...lastGood.packed!.svc]);
  assert.equal([...last.packed!.dest], [...lastGood.packed!.dest]);
  // And the daemon carries on: the same change without the refused VIP goes through.
  await restore("-D -t 198.18.0.2:80\n-a -t 198.18.0.1:80 -r 198.19.0.4:80 -m\n");
  assert.is(inner.rules.services.length, 1);
  assert.equal([...installed], ["4|198.18.0.1"]);
});

r.run();
