import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatSimulation, pcapFlows, simulate, syntheticFlows } from "../../src/control/simulate.ts";
import { applyAll } from "../../src/control/apply.ts";
import { emptyRuleSet, type RuleSet } from "../../src/control/model.ts";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { SCHEDULER_NAMES } from "../../src/sched/index.ts";
import { buildIp4 } from "../fixtures/builder.ts";

const rules = (text: string): RuleSet => applyAll(emptyRuleSet(), parseRestore(text, "tslb", NO_NAMES), SCHEDULER_NAMES);
const three = (sched: string, w = [1, 1, 1]) => rules(`-A -t 198.18.0.100:80 -s ${sched}
-a -t 198.18.0.100:80 -r 198.18.1.11:80 -m -w ${w[0]}
-a -t 198.18.0.100:80 -r 198.18.1.12:80 -m -w ${w[1]}
-a -t 198.18.0.100:80 -r 198.18.1.13:80 -m -w ${w[2]}
`);
const without13 = (r: RuleSet) => {
  const c = structuredClone(r);
  c.services[0].dests = c.services[0].dests.filter((d) => d.addr !== "198.18.1.13");
  return c;
};

const s = suite("tslb --simulate");
s("rr shares flows evenly and shows every destination", () => {
  const [r] = simulate(three("rr"), () => syntheticFlows(3000, 4));
  assert.equal(r.before.map((d) => d.flows), [1000, 1000, 1000]);
  assert.is(r.unscheduled, 0);
});
s("wlc with open flows follows the weights", () => {
  const [r] = simulate(three("wlc", [1, 2, 1]), () => syntheticFlows(4000, 4));
  const byAddr = Object.fromEntries(r.before.map((d) => [d.dest, d.flows]));
  assert.equal(byAddr, { "198.18.1.13:80": 1000, "198.18.1.12:80": 2000, "198.18.1.11:80": 1000 });
});
s("removing a server under mh (Maglev) moves only about its own flows", () => {
  const base = three("mh");
  const [r] = simulate(base, () => syntheticFlows(20000, 4), without13(base));
  const gone = r.before.find((d) => d.dest === "198.18.1.13:80")!.flows;
  assert.ok(r.moved! >= gone && r.moved! <= gone * 1.05, `moved ${r.moved}, removed server had ${gone}`);
  const out = formatSimulation([r], "--remove 198.18.1.13:80");
  assert.match(out, /^TCP  198\.18\.0\.100:80 mh  \(20000 flows\)\n/);
  assert.match(out, /after --remove 198\.18\.1\.13:80:/);
  assert.match(out, new RegExp(`moved: ${r.moved} of 20000 flows`));
});
s("all weights 0: every flow is unscheduled", () => {
  const [r] = simulate(three("wlc", [0, 0, 0]), () => syntheticFlows(10, 4));
  assert.is(r.unscheduled, 10);
});
s.run();

const p = suite("pcap flows");
p("distinct client flows of an Ethernet pcap", () => {
  const pkts = [
    buildIp4({ src: "198.18.0.2", dst: "198.18.0.100", sport: 1000, dport: 80 }),
    buildIp4({ src: "198.18.0.2", dst: "198.18.0.100", sport: 1000, dport: 80, flags: 0x10 }),
    buildIp4({ src: "198.18.0.3", dst: "198.18.0.100", proto: "udp", sport: 53, dport: 53, payload: "x" }),
  ];
  const parts: Uint8Array[] = [];
  const gh = new DataView(new ArrayBuffer(24));
  gh.setUint32(0, 0xa1b2c3d4, true); gh.setUint16(4, 2, true); gh.setUint16(6, 4, true); gh.setUint32(16, 65535, true); gh.setUint32(20, 1, true);
  parts.push(new Uint8Array(gh.buffer));
  for (const ip of pkts) {
    const rec = new DataView(new ArrayBuffer(16));
    rec.setUint32(8, ip.length + 14, true); rec.setUint32(12, ip.length + 14, true);
    const eth = new Uint8Array(14); eth[12] = 0x08;
    parts.push(new Uint8Array(rec.buffer), eth, ip);
  }
  const buf = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0; for (const x of parts) { buf.set(x, o); o += x.length; }
  const flows = pcapFlows(buf);
  assert.is(flows.length, 2);
  assert.equal(flows.map((f) => f.sport), [1000, 53]);
  assert.throws(() => pcapFlows(new Uint8Array(30)), /not a pcap/);
});
p.run();
