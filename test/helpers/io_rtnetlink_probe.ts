// Runs INSIDE a test namespace (test/io/rtnetlink.ts). Phase 1 adds routes (main, table
// 4242, local, blackhole, IPv6), rules, proxy neighbours and queries source addresses, then
// prints one JSON line and waits for a line on stdin while the test inspects `ip`. Phase 2
// deletes everything (twice: the second time every delete must report false) and prints a
// second JSON line. Preconditions (set by the test): veth tv0 <-> tv1, both up, tv1 a port
// of bridge tvbr, 198.18.5.1/24 and 2001:2:0:5::1/64 (nodad) on tv0.
import { RtNetlink, type RouteSpec, type RuleSpec } from "../../src/io/rtnetlink.ts";
import { openTun } from "../../src/io/tun.ts";
import { SysError } from "../../src/io/libc.ts";

const nl = RtNetlink.open();
const tun = openTun("tslbt%d");
const tunIdx = nl.linkIndex(tun.name);
nl.linkSetUp(tunIdx);
const lo = nl.linkIndex("lo");
const tv0 = nl.linkIndex("tv0");

const routes: RouteSpec[] = [
  { af: 4, dst: "198.18.20.0", prefixLen: 24, oif: tunIdx },
  { af: 4, dst: "198.18.21.0", prefixLen: 24, oif: tunIdx, table: 4242 },
  { af: 4, dst: "198.18.24.0", prefixLen: 24, gateway: "198.18.20.1", table: 4242 },
  { af: 4, dst: "198.18.22.0", prefixLen: 24, type: "blackhole", table: 4242 },
  { af: 4, dst: "198.18.23.1", prefixLen: 32, type: "local", oif: lo, table: 255 },
  { af: 4, dst: "0.0.0.0", prefixLen: 0, oif: tunIdx, table: 4243 },
  { af: 6, dst: "2001:2:0:20::", prefixLen: 64, oif: tunIdx },
  { af: 6, dst: "2001:2:0:21::", prefixLen: 64, oif: tunIdx, table: 4242 },
];
const rules: RuleSpec[] = [
  { af: 4, priority: 1000, table: 4242, src: "198.18.1.11", ipproto: 6, sport: 80 },
  { af: 4, priority: 1001, table: 254, iif: tun.name },
  { af: 6, priority: 1002, table: 4242, dst: "2001:2::", dstLen: 48, ipproto: 17, dport: 443 },
];
const proxies: [4 | 6, string][] = [[4, "198.18.5.77"], [6, "2001:2:0:5::77"]];

const errMsg = (f: () => unknown): string => {
  try {
    f();
    return "no error";
  } catch (e) {
    return e instanceof SysError ? e.message : `not a SysError: ${e}`;
  }
};

for (const r of routes) nl.routeAdd(r);
for (const r of rules) nl.ruleAdd(r);
for (const [af, a] of proxies) nl.neighProxyAdd(af, a, tv0);
nl.neighProxyAdd(4, "198.18.5.77", tv0); // idempotent

console.log(JSON.stringify({
  tun: tun.name,
  dupRoute: errMsg(() => nl.routeAdd(routes[1])),
  dupRule: errMsg(() => nl.ruleAdd(rules[0])),
  badGateway: errMsg(() => nl.routeAdd({ af: 4, dst: "198.18.25.0", prefixLen: 24, gateway: "198.18.99.1" })),
  noLink: errMsg(() => nl.linkIndex("nope0")),
  // The link's address as the kernel reports it (a TUN has none).
  tv0Mac: [...nl.link("tv0").address].map((b) => b.toString(16).padStart(2, "0")).join(":"),
  tunMac: nl.link(tun.name).address.length,
  masters: [nl.link("tv0").master, nl.link("tv1").master],
  byIndex: [nl.link(tv0).index, [...nl.link(tv0).address].map((b) => b.toString(16).padStart(2, "0")).join(":")],
  src4: nl.routeGetSrc(4, "198.18.5.2"),
  src6: nl.routeGetSrc(6, "2001:2:0:5::2"),
  srcTun: nl.routeGetSrc(4, "198.18.20.9"),
  srcNone: nl.routeGetSrc(4, "198.19.200.1"),
}));
for await (const _ of console) break;

const del = () => ({
  routes: routes.map((r) => nl.routeDel(r)),
  rules: rules.map((r) => nl.ruleDel(r)),
  proxies: proxies.map(([af, a]) => nl.neighProxyDel(af, a, tv0)),
});
const first = del();
const second = del();
tun.close();
nl.close();
console.log(JSON.stringify({ first, second }));
