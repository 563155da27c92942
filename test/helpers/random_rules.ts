// Test helper: seeded random RuleSets that -S can express exactly, in the order that
// -R rebuilds them (services sorted as -S prints them, destinations newest first, so
// the reverse of the -S order). Addresses stay in 198.18.0.0/15 and 2001:2::/48, with
// IPv6 words below 2^31, and fwmarks below 2^31: in those ranges ipvsadm's wrap-around
// comparator is a true total order, so the expected order is well defined.
// They include what -S/-R can express but tslb's apply step refuses (SCTP services,
// --proxy-protocol); tslbAccepts() removes what applyAll refuses.
import { type Af, type Dest, emptyRuleSet, type Fwd, type RuleSet, type Service, type SvcKind, type TunCsum } from "../../src/control/model.ts";
import { cmpDests, cmpServices, qsort } from "../../src/cli/rules_text.ts";
import { formatIPv4, formatIPv6 } from "../../src/wire/addr.ts";

export const TEST_SCHEDULERS = ["rr", "wrr", "lc", "wlc", "sh", "mh", "sed"];

/** mulberry32: a small seeded PRNG; returns integers in [0, n). */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

export function randomRules(seed: number): RuleSet {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[r(xs.length)];
  const v4 = () => formatIPv4((0xc6120000 + r(1 << 17)) | 0);
  const g16 = () => (r(3) === 0 ? 0 : r(0x8000)); // zero groups are common, as in real use
  const v6 = () => formatIPv6([0x20010002, r(4) === 0 ? r(0x10000) : 0, (g16() << 16) | g16(), (g16() << 16) | g16()]);
  const addr = (af: Af) => (af === 4 ? v4() : v6());

  const rules = emptyRuleSet();
  const keys = new Set<string>();
  for (let n = r(7); n > 0; n--) {
    const kind: SvcKind = pick(["tcp", "udp", "sctp", "fwm"] as const);
    const af: Af = r(3) === 0 ? 6 : 4;
    const persistent = r(2) === 0;
    const port = persistent && r(4) === 0 ? 0 : 1 + r(65535);
    const key = kind === "fwm"
      ? { kind, af, addr: "", port: 0, fwmark: 1 + r(0x7fffffff) }
      : { kind, af, addr: addr(af), port, fwmark: 0 };
    const keyText = JSON.stringify(key);
    if (keys.has(keyText)) continue;
    keys.add(keyText);
    const sched = pick(TEST_SCHEDULERS);
    const svc: Service = {
      key, sched,
      schedFlags: r(2) ? 0 : (sched === "sh" || sched === "mh" ? 1 + r(3) : 1 + r(7)),
      persistent,
      timeoutSec: persistent ? 1 + r(2678400) : 0,
      netmask: persistent && r(2)
        ? (af === 4 ? formatIPv4(r(2) ? (0xffffffff << (32 - 1 - r(32))) | 0 : r(2 ** 32) | 0) : String(1 + r(128)))
        : (af === 4 ? "255.255.255.255" : "128"),
      pe: "",
      ops: (kind === "udp" || kind === "fwm") && r(2) === 0,
      laddrs: [],
      proxyProtocol: r(6) === 0 ? (1 + r(2)) as 1 | 2 : 0,
      dests: [],
    };
    for (let m = r(4) === 0 ? 1 + r(3) : 0; m > 0; m--) {
      const a = addr(af);
      if (!svc.laddrs.includes(a)) svc.laddrs.push(a);
    }
    const seen = new Set<string>();
    for (let m = r(6); m > 0; m--) {
      const fwd: Fwd = pick(["route", "masq", "tunnel", "fullnat"] as const);
      const daf: Af = fwd === "tunnel" && r(3) === 0 ? (af === 4 ? 6 : 4) : af;
      const dport = kind !== "fwm" && (fwd === "route" || fwd === "tunnel") ? port : r(8) === 0 ? 0 : 1 + r(65535);
      const d: Dest = {
        af: daf, addr: addr(daf), port: dport, fwd, weight: r(65536), uThreshold: 0, lThreshold: 0,
        tunType: "ipip", tunPort: 0, tunCsum: "nocsum",
      };
      if (fwd === "tunnel") {
        d.tunType = pick(["ipip", "gue", "gre"] as const);
        if (d.tunType === "gue") { d.tunPort = 1 + r(65535); d.tunCsum = pick(["nocsum", "csum", "remcsum"] as TunCsum[]); }
        if (d.tunType === "gre") d.tunCsum = pick(["nocsum", "csum"] as TunCsum[]);
      }
      if (seen.has(`${d.addr}/${d.port}`)) continue;
      seen.add(`${d.addr}/${d.port}`);
      svc.dests.push(d);
    }
    svc.dests = qsort(svc.dests, cmpDests).reverse();
    rules.services.push(svc);
  }
  rules.services = qsort(rules.services, (a, b) => cmpServices(a.key, b.key));
  return rules;
}

/** What applyAll accepts of a generated RuleSet: tslb refuses SCTP services, and
 *  --proxy-protocol v1 on UDP services or with -g/-i real servers, so they are left out. */
export function tslbAccepts(r: RuleSet): RuleSet {
  const proxyOk = (s: RuleSet["services"][number]) =>
    !(s.key.kind === "udp" && s.proxyProtocol === 1) && s.dests.every((d) => d.fwd === "masq" || d.fwd === "fullnat");
  return { ...r, services: r.services.filter((s) => s.key.kind !== "sctp").map((s) => ({ ...s, proxyProtocol: proxyOk(s) ? s.proxyProtocol : 0 })) };
}

/** /etc/hosts and /etc/services text naming every IPv4 address and port in `rules`
 *  (IPv6 addresses stay unnamed: ipvsadm cannot read a name back as IPv6). */
export function namesFor(rules: RuleSet): { hosts: string; services: string } {
  const hosts = new Set<string>();
  const ports = new Set<number>();
  for (const s of rules.services) {
    if (s.key.af === 4 && s.key.addr) hosts.add(s.key.addr);
    if (s.key.port) ports.add(s.key.port);
    for (const d of s.dests) {
      if (d.af === 4) hosts.add(d.addr);
      if (d.port) ports.add(d.port);
    }
  }
  return {
    hosts: [...hosts].map((a) => `${a} h-${a.replaceAll(".", "-")}\n`).join(""),
    services: [...ports].flatMap((p) => ["tcp", "udp", "sctp"].map((pr) => `p${p} ${p}/${pr}\n`)).join(""),
  };
}
