// Runs INSIDE a test namespace (test/io/rtnetlink.ts): RtNetlink.batch() with more
// changes than one sendmsg takes, failures among them (EEXIST, a gateway off-link, a
// missing route), and the same changes again; prints one JSON line with the results and
// what `ip` would count. Preconditions: lo up.
import { RtNetlink, type NlChange } from "../../src/io/rtnetlink.ts";
import { openTun } from "../../src/io/tun.ts";

const nl = RtNetlink.open();
const tun = openTun("tslbt%d");
const idx = nl.linkIndex(tun.name);
nl.linkSetUp(idx);
const route = (i: number) => ({ af: 4 as const, dst: `198.18.${(i >> 8) & 255}.${i & 255}`, prefixLen: 32, oif: idx });
const adds: NlChange[] = [];
for (let i = 0; i < 300; i++) adds.push({ op: "routeAdd", route: route(i) });
adds.splice(150, 0, { op: "routeAdd", route: route(7) }); // already added by then: EEXIST
adds.splice(200, 0, { op: "routeAdd", route: { af: 4, dst: "198.18.200.0", prefixLen: 24, gateway: "198.19.99.1" } });
adds.push({ op: "ruleAdd", rule: { af: 4, priority: 1000, table: 4242, src: "198.18.1.12", srcLen: 31, ipproto: 6, sport: 80 } });
adds.push({ op: "routeDel", route: route(999) }); // never added
const first = nl.batch(adds);
const again = nl.batch(adds.slice(0, 10));
const dels = nl.batch(adds.filter((c) => c.op === "routeAdd").map((c) => ({ op: "routeDel", route: (c as { route: ReturnType<typeof route> }).route })));
const failures = (r: { code: number; error: Error | null }[]) => r.map((x, i) => [i, x.code, x.error?.message ?? null]).filter((x) => x[1] !== 0);
console.log(JSON.stringify({ n: first.length, first: failures(first), again: failures(again).length, dels: failures(dels) }));
