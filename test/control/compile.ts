// compile() writes the packed form; ActiveConfig packs the object form that tests and
// tools write. The same rules must give the same tables either way.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NO_NAMES } from "../../src/cli/names.ts";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { applyAll } from "../../src/control/apply.ts";
import { compile } from "../../src/control/compile.ts";
import { RuleIds } from "../../src/control/ids.ts";
import { emptyRuleSet, serviceKeyText } from "../../src/control/model.ts";
import { DEFAULT_SYSCTLS } from "../../src/control/options.ts";
import { allocDestState } from "../../src/conntrack/dest_state.ts";
import { ActiveConfig, D_ADDR, D_AF, D_AVAILABLE, D_FWD, D_ID, D_INNER_MTU, D_LTHRESHOLD, D_PORT, D_UTHRESHOLD, D_WEIGHT, DEST_WORDS,
  S_ADDR, S_AF, S_FWMARK, S_ID, S_MASK, S_OPS, S_PERSISTENT, S_PORT, S_PROTO, S_PROXY, S_SCHED_FLAGS, S_TIMEOUT, SVC_WORDS,
  type CompiledService, type Snapshot } from "../../src/dataplane/snapshot.ts";
import { MAX_DEST } from "../../src/stats/counters.ts";

const RULES = [
  "-A -t 198.18.0.1:80 -s rr", "-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m -w 2", "-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -m -x 10 -y 5",
  "-A -u 198.18.0.1:53 -s wrr -p 60 -M 255.255.255.0", "-a -u 198.18.0.1:53 -r 198.19.0.3 -g -w 0",
  "-A -t [2001:2::1]:443 -s sh -b sh-port", "-a -t [2001:2::1]:443 -r 198.19.0.4 -i", "-a -t [2001:2::1]:443 -r [2001:2::4]:443 --fullnat",
  "-A -f 7 -s mh", "-a -f 7 -r 198.19.0.5:80 -m", "-A -u 198.18.0.9:0 -s rr -p -o", "-a -u 198.18.0.9:0 -r 198.19.0.9:0 -m",
].join("\n");

/** The object form of a packed snapshot, as tests and tools write it. */
function unpack(snap: Snapshot): CompiledService[] {
  const p = snap.packed!;
  const tun = new Map(p.tuns.map((t) => [t.j, t.tun]));
  const laddrs = new Map(p.laddrs.map((l) => [l.j, l.words]));
  return p.sched.map((sched, s) => {
    const v = (k: number) => p.svc[s * SVC_WORDS + k];
    const words = (k: number) => [0, 1, 2, 3].map((i) => v(k + i));
    return {
      id: v(S_ID), proto: v(S_PROTO), af: v(S_AF), addr: words(S_ADDR), port: v(S_PORT), fwmark: v(S_FWMARK), sched,
      schedFlags: v(S_SCHED_FLAGS), persistent: v(S_PERSISTENT) === 1, timeoutSec: v(S_TIMEOUT), mask: words(S_MASK), ops: v(S_OPS) === 1,
      ...(v(S_PROXY) ? { proxy: v(S_PROXY) } : {}),
      dests: Array.from({ length: p.destStart[s + 1] - p.destStart[s] }, (_, i) => {
        const j = p.destStart[s] + i;
        const d = (k: number) => p.dest[j * DEST_WORDS + k];
        return {
          id: d(D_ID), addr: [0, 1, 2, 3].map((k) => d(D_ADDR + k)), port: d(D_PORT), weight: d(D_WEIGHT), fwd: d(D_FWD),
          uThreshold: d(D_UTHRESHOLD), lThreshold: d(D_LTHRESHOLD), available: d(D_AVAILABLE) === 1, innerMtu: d(D_INNER_MTU),
          ...(tun.has(j) ? { tun: tun.get(j)! } : {}), ...(laddrs.has(j) ? { laddrs: laddrs.get(j)! } : {}),
          ...(d(D_AF) ? { af: d(D_AF) } : {}),
        };
      }),
    };
  });
}

const c = suite("compile: the packed snapshot");

c("every field lands where ActiveConfig reads it, the same as from the object form", () => {
  const rules = applyAll(emptyRuleSet(), parseRestore(RULES, "ipvsadm", NO_NAMES), ["rr", "wrr", "sh", "mh"]);
  const ids = new RuleIds(() => false);
  ids.sync(rules, () => {});
  const down = new Set([RuleIds.destKey(serviceKeyText(rules.services[0].key), { addr: "198.19.0.1", port: 8080 })]);
  const snap = compile(rules, ids, 7, {
    sysctl: DEFAULT_SYSCTLS, down, tunnelOf: () => ({ src: "198.19.0.254", mtu: 1500 }),
    localOf: (d) => (d.af === 6 ? "2001:2::fe" : "198.19.0.254"), fullnatPorts: [61000, 61999],
  });
  assert.equal(snap.services, []);
  const objects: Snapshot = { ...snap, services: unpack(snap), packed: undefined };
  const state = new Int32Array(allocDestState(MAX_DEST));
  const packed = new ActiveConfig(snap, state, null);
  const plain = new ActiveConfig(objects, state, null);
  const view = (a: ActiveConfig) => ({
    svc: [a.svcId, a.svcProto, a.svcPort, a.svcFwmark, a.svcPersistent, a.svcTimeout, a.svcMask, a.svcOps, a.svcProxy, a.svcHashSched].map((x) => [...x]),
    dests: a.dests.map((d) => [d.id, d.weight, d.flags, d.port, d.fwd, d.addr].map((x) => [...x])),
    tuns: a.tuns, innerMtu: a.innerMtu.map((x) => [...x]), laddrs: a.laddrs.map((l) => l.map((x) => [...x])), destAf: a.destAf.map((x) => [...x]),
    scheds: a.scheds.map((s) => s.name), drVips: a.drVips, ports: [a.fullnatPortLo, a.fullnatPortHi],
  });
  assert.equal(view(packed), view(plain));
  // A few values by hand: order, ids, availability, thresholds, the translated family, the tunnel.
  const v = view(packed);
  assert.equal(v.svc[2], [80, 53, 443, 0, 0]);
  assert.equal(v.svc[5], [0, 60, 0, 0, 360]);
  assert.equal(v.dests[0][0], [...ids.destIds.subarray(0, 2)], "ids in rule order");
  assert.equal(v.dests[0][2], [1, 0], "198.19.0.1 (listed second, newest first) is down");
  assert.equal(snap.packed!.dest[1 * DEST_WORDS + D_UTHRESHOLD], 0);
  assert.equal(snap.packed!.dest[0 * DEST_WORDS + D_UTHRESHOLD], 10);
  assert.equal(v.destAf[2], [6, 4]);
  assert.ok(v.tuns[2][1] !== null && v.innerMtu[2][1] > 0, "the -i server has its outer header");
  assert.equal(v.laddrs[2][0].length, 4, "the full-NAT server has its local address");
  assert.equal(v.ports, [61000, 61999]);
  assert.is(packed.count, 5);
});

c.run();
