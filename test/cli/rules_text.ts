import { suite } from "uvu";
import * as assert from "uvu/assert";
import { makeNames, NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import { emptyRuleSet, type RuleSet, type ServiceKey } from "../../src/control/model.ts";
import { IpvsError } from "../../src/control/errors.ts";
import {
  addrPortName, cmpDests, cmpServices, cmpU32, formatSave, parseRestore, qsort, restoreLines, schedFlagNames,
} from "../../src/cli/rules_text.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";
import { listReply } from "../helpers/list_view.ts";
import { namesFor, randomRules, rng, TEST_SCHEDULERS, tslbAccepts } from "../helpers/random_rules.ts";
import { planRestore } from "../../src/cli/dry_run.ts";
import type { Command } from "../../src/control/commands.ts";
import type { Service } from "../../src/control/model.ts";
import { readdirSync, readFileSync } from "node:fs";

const golden = (name: string) => Bun.file(new URL(`../golden/${name}`, import.meta.url)).text();
const TRY = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";
const restore = (text: string) => applyAll(emptyRuleSet(), parseRestore(text, "ipvsadm", NO_NAMES), TEST_SCHEDULERS);
/** tslb refuses SCTP services and --proxy-protocol (its data plane does not support them
 *  yet), so rule sets that go through applyAll leave them out; the generator still makes
 *  them for -S/-R text. */
const noSctp = tslbAccepts;
const SCTP_MSG = "SCTP services are not supported by tslb's data plane yet";

// ---
const tok = suite("restore tokenizer");

tok("splits on blanks, tabs and CR; drops `ipvsadm` anywhere; skips blank and # lines", () => {
  const text = [
    "ipvsadm -A -t 198.18.0.1:80",        // 1
    "",                                   // 2
    "   \t ",                             // 3
    "# a comment",                        // 4
    "   # an indented comment",           // 5
    "-a\t-t  198.18.0.1:80 -r 198.19.0.1\r", // 6
    "ipvsadm",                            // 7
    "-A ipvsadm -u 198.18.0.1:53",        // 8
    "/sbin/ipvsadm -C",                   // 9
    "-C # not a comment here",            // 10
  ].join("\n");
  assert.equal(restoreLines(text), [
    { line: 1, argv: ["-A", "-t", "198.18.0.1:80"] },
    { line: 6, argv: ["-a", "-t", "198.18.0.1:80", "-r", "198.19.0.1"] },
    { line: 8, argv: ["-A", "-u", "198.18.0.1:53"] },
    { line: 9, argv: ["/sbin/ipvsadm", "-C"] },
    { line: 10, argv: ["-C", "#", "not", "a", "comment", "here"] },
  ]);
});

tok("no quoting: quotes are part of the word", () => {
  assert.equal(restoreLines(`-A -t "198.18.0.1:80"`)[0].argv, ["-A", "-t", `"198.18.0.1:80"`]);
});

tok("empty input gives no commands", () => {
  assert.equal(parseRestore("", "ipvsadm", NO_NAMES), []);
  assert.equal(parseRestore("\n# only comments\n\n", "ipvsadm", NO_NAMES), []);
});

tok.run();

// ---
const lines = suite("parseRestore");

lines("each line is one ipvsadm invocation with fresh defaults", () => {
  const cmds = parseRestore("-A -t 198.18.0.1:80 -s rr -p\n-E -t 198.18.0.1:80\n-a -t 198.18.0.1:80 -r 198.19.0.1 -m -w 5\n--set 1 0 3\n-C\n", "ipvsadm", NO_NAMES);
  assert.equal(cmds.map((c) => c.kind), ["add-service", "edit-service", "add-dest", "set-timeouts", "clear"]);
  assert.is((cmds[1] as { svc: { sched: string; persistent: boolean } }).svc.sched, "wlc");
  assert.is((cmds[1] as { svc: { persistent: boolean } }).svc.persistent, false);
});

lines("an error names its line and keeps ipvsadm's text and status", () => {
  const text = "-A -t 198.18.0.1:80\n\n-a -t 198.18.0.1:80 -r 198.19.0.1 -w 70000\n-A -t 198.18.0.2:80\n";
  throwsIpvs(() => parseRestore(text, "ipvsadm", NO_NAMES), "illegal weight specified", 2, 3);
  throwsIpvs(() => parseRestore("-C\n-A -t 198.18.0.1:80 --bogus", "ipvsadm", NO_NAMES), "--bogus: unknown option", 255, 2);
});

lines("a # line that is not first on its line is not a comment", () => {
  throwsIpvs(() => parseRestore("ipvsadm # hello", "ipvsadm", NO_NAMES), TRY, 255, 1);
});

lines("only state-changing lines: listings, -R, -h, -v ... get the Try message", () => {
  for (const bad of ["-L -n", "-R", "-S", "-Z", "-h", "-v", "--start-daemon master", "-t 198.18.0.1:80"]) {
    throwsIpvs(() => parseRestore(`-C\n${bad}\n`, "tslb", NO_NAMES), "Try `tslb -h' or 'tslb --help' for more information.", 255, 2);
  }
});

lines("`/sbin/ipvsadm` is not dropped", () => {
  throwsIpvs(() => parseRestore("/sbin/ipvsadm -C", "ipvsadm", NO_NAMES), "unexpected argument /sbin/ipvsadm", 2, 1);
});

lines("names resolve through the given environment", () => {
  const env = makeNames("198.18.0.10 web1\n", "http 80/tcp\n");
  assert.equal(parseRestore("-A -t web1:http", "ipvsadm", env)[0], {
    kind: "add-service",
    svc: { key: { kind: "tcp", af: 4, addr: "198.18.0.10", port: 80, fwmark: 0 }, sched: "wlc", schedFlags: 0, persistent: false, timeoutSec: 0, netmask: "255.255.255.255", pe: "", ops: false, laddrs: [], proxyProtocol: 0 },
  });
});

lines.run();

// ---
const save = suite("formatSave (-S)");

const EX1 = "-A -t 198.18.81.100:80 -s rr\n-a -t 198.18.81.100:80 -r 198.19.0.2:8080 -m\n-a -t 198.18.81.100:80 -r 198.19.0.1:8080 -m -w 3\n";
const EX2 = "-A -f 5 -s wlc -M 255.255.255.0 -p\n-a -f 5 -r 198.19.1.1 -g -w 2 -x 100 -y 50\n-a -f 5 -r 198.19.1.2\n";
const EX3 = "-A -t 198.18.81.100:80 -s rr\n-a -t 198.18.81.100:80 -r 198.19.0.5:80 -i --tun-type gue --tun-port 6080 --tun-csum\n" +
  "-A -u [2001:2::10]:53 -s sh -b sh-port,sh-fallback -o\n-a -u [2001:2::10]:53 -r [2001:2::a]:53 -m\n";

save("example 1 (NAT, rr)", async () => assert.fixture(formatSave(restore(EX1), true), await golden("ipvsadm_ex1_save.txt")));
save("example 2 (fwmark, persistence, mask; thresholds are not saved)", async () => assert.fixture(formatSave(restore(EX2), true), await golden("ipvsadm_ex2_save.txt")));
save("example 3 (IPv6, sh flags, ops, GUE)", async () => assert.fixture(formatSave(restore(EX3), true), await golden("ipvsadm_ex3_save.txt")));

save("names without -n", async () => {
  const names = makeNames(
    "198.18.0.1 www-frontend-vip.lab.example.test\n198.19.0.1 backend-number-one.lab.example.test\n" +
    "2001:2::53 v6-dns.lab.example.test\n2001:2::5 v6-backend-resolver.lab.example.test\n",
    "http 80/tcp\ndomain 53/udp\n",
  );
  const rules = restore("-A -t 198.18.0.1:80\n-a -t 198.18.0.1:80 -r 198.19.0.2\n-a -t 198.18.0.1:80 -r 198.19.0.1\n" +
    "-A -u [2001:2::53]:53 -s rr\n-a -u [2001:2::53]:53 -r [2001:2::5]:53 -m\n");
  assert.fixture(formatSave(rules, false, names), await golden("ipvsadm_names_save.txt"));
  assert.fixture(formatSave(rules.services, false, names), await golden("ipvsadm_names_save.txt"));
  assert.fixture(formatSave(listReply(rules).services, false, names), await golden("ipvsadm_names_save.txt"));
});

save("every tunnel form, IPv6 fwmark, pe, IPv6 mask, flag order", () => {
  const rules: RuleSet = restore(
    "-A -f 7 -6 -s mh -b flag-2,flag-1 -p 60 -M 64\n" +
    "-a -f 7 -6 -r [2001:2::1]:0 -i --tun-type gre --tun-csum\n" +
    "-a -f 7 -6 -r [2001:2::2]:0 -i --tun-type gue --tun-port 1 --tun-remcsum\n" +
    "-a -f 7 -6 -r 198.19.0.3:0 -i\n" +
    "-A -t 198.18.0.1:0 -s rr -p -b flag-3\n" +
    "-A -t 198.18.0.2:0 -s sh -b flag-3 -p\n",
  );
  rules.services[1].pe = "sip"; // no PE exists in tslb, so set it by hand to see it printed
  assert.fixture(formatSave(rules, true), [
    "-A -t 198.18.0.1:0 -s rr -p 360 --pe sip -b flag-3",
    "-A -t 198.18.0.2:0 -s sh -p 360 -b ", // ipvsadm prints no name for flag-3 under sh
    "-A -f 7 -6 -s mh -p 60 -M 64 -b mh-fallback,mh-port",
    "-a -f 7 -6 -r 198.19.0.3:0 -i -w 1 --tun-type ipip",
    "-a -f 7 -6 -r [2001:2::1]:0 -i -w 1 --tun-type gre --tun-csum",
    "-a -f 7 -6 -r [2001:2::2]:0 -i -w 1 --tun-type gue --tun-port 1 --tun-remcsum",
    "",
  ].join("\n"));
});

save("an empty table saves as nothing", () => assert.is(formatSave(emptyRuleSet(), true), ""));

const FNAT = "-A -t 198.18.81.100:80 -s rr -p 60 --laddr 198.18.0.201,198.18.0.200\n" +
  "-a -t 198.18.81.100:80 -r 198.19.0.2:8080 --fullnat -w 2\n-a -t 198.18.81.100:80 -r 198.19.0.1:8080 --fullnat\n" +
  "-a -t 198.18.81.100:80 -r 198.19.0.3\n" +
  "-A -f 9 -6 --laddr [2001:2::C9],2001:2:0::ca\n-a -f 9 -6 -r 2001:2::b --fullnat -w 3\n" +
  "-A -u [2001:2::10]:53 -s sh -o --laddr 2001:2::c8\n-a -u [2001:2::10]:53 -r [2001:2::a]:5353 --fullnat\n";

save("full NAT: --fullnat where -m/-g/-i go; --laddr and --proxy-protocol after ipvsadm's -A options", async () => {
  const rules = restore(FNAT);
  rules.services[0].proxyProtocol = 2; // refused by the apply step for now: set by hand
  const want = await golden("tslb_fullnat_save.txt");
  assert.fixture(formatSave(rules, true), want);
  // Only the numeric form exists for local addresses: names change nothing.
  const names = makeNames("198.18.0.200 lb-a\n198.18.0.201 lb-b\n", "");
  assert.ok(formatSave(rules, false, names).includes(" --laddr 198.18.0.201,198.18.0.200 --proxy-protocol v2\n"));
  // -R reads the golden back: the same Commands, proxy-protocol included.
  const spec = ({ dests: _, ...svc }: Service) => svc;
  assert.equal(parseRestore(want, "ipvsadm", NO_NAMES), qsort(rules.services, (a, b) => cmpServices(a.key, b.key)).flatMap((s) => [
    { kind: "add-service", svc: spec(s) } as Command,
    ...qsort(s.dests, cmpDests).map((dest): Command => ({ kind: "add-dest", key: s.key, dest })),
  ]));
  // A service without the options prints nothing new.
  assert.is(formatSave(restore("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat\n"), true),
    "-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1:80 --fullnat -w 1\n");
});

save.run();

// ---
const trip = suite("save -> restore round trip");

trip("applyAll(empty, parseRestore(formatSave(r, -n))) equals r, 300 seeded RuleSets", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = noSctp(randomRules(seed));
    const text = formatSave(r, true);
    assert.equal(restore(text), r, `seed ${seed}:\n${text}`);
  }
});

trip("the same through names (/etc/hosts and /etc/services)", () => {
  for (let seed = 1000; seed < 1150; seed++) {
    const r = noSctp(randomRules(seed));
    const n = namesFor(r);
    const names = makeNames(n.hosts, n.services);
    const text = formatSave(r, false, names);
    const back = applyAll(emptyRuleSet(), parseRestore(text, "ipvsadm", names), TEST_SCHEDULERS);
    assert.equal(back, r, `seed ${seed}:\n${text}`);
  }
});

trip("parseRestore(formatSave(r)) gives back every service and destination as Commands, SCTP included", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = randomRules(seed);
    const spec = ({ dests: _, ...svc }: Service) => svc;
    const want: Command[] = r.services.flatMap((s) => [
      { kind: "add-service", svc: spec(s) } as Command,
      ...qsort(s.dests, cmpDests).map((dest): Command => ({ kind: "add-dest", key: s.key, dest })),
    ]);
    assert.equal(parseRestore(formatSave(r, true), "ipvsadm", NO_NAMES), want, `seed ${seed}`);
  }
});

trip("SCTP services are saved as ipvsadm saves them, and a restore of them stops at the first", () => {
  const r = randomRules(1);
  const key = { kind: "sctp" as const, af: 4 as const, addr: "198.18.0.7", port: 5060, fwmark: 0 };
  r.services.push({
    key, sched: "rr", schedFlags: 0, persistent: false, timeoutSec: 0, netmask: "255.255.255.255", pe: "", ops: false, laddrs: [], proxyProtocol: 0,
    dests: [{ af: 4, addr: "198.19.0.7", port: 5060, fwd: "masq", weight: 2, uThreshold: 0, lThreshold: 0, tunType: "ipip", tunPort: 0, tunCsum: "nocsum" }],
  });
  const text = formatSave(r, true);
  const lines = text.split("\n");
  const at = lines.indexOf("-A --sctp-service 198.18.0.7:5060 -s rr");
  assert.ok(at >= 0, text);
  assert.is(lines[at + 1], "-a --sctp-service 198.18.0.7:5060 -r 198.19.0.7:5060 -m -w 2");
  const first = lines.findIndex((l) => l.startsWith("-A --sctp-service"));
  const e = throwsIpvs(() => planRestore(emptyRuleSet(), text, TEST_SCHEDULERS, "ipvsadm", NO_NAMES), SCTP_MSG, 255, first + 1);
  assert.is(e.code, "EOPNOTSUPP");
});

trip("the generator covers what -S can express", () => {
  const all = Array.from({ length: 300 }, (_, k) => randomRules(k + 1)).flatMap((r) => r.services);
  const dests = all.flatMap((s) => s.dests);
  for (const kind of ["tcp", "udp", "sctp", "fwm"]) assert.ok(all.some((s) => s.key.kind === kind), kind);
  assert.ok(all.some((s) => s.key.af === 6) && all.some((s) => s.persistent && s.key.port === 0));
  assert.ok(all.some((s) => s.netmask !== "255.255.255.255" && s.netmask !== "128"));
  assert.ok(all.some((s) => s.ops) && all.some((s) => s.schedFlags !== 0));
  for (const t of ["ipip", "gue", "gre"]) assert.ok(dests.some((d) => d.fwd === "tunnel" && d.tunType === t), t);
  assert.ok(dests.some((d) => d.fwd === "masq") && dests.some((d) => d.fwd === "route"));
  assert.ok(all.some((s) => s.dests.some((d) => d.af !== s.key.af)), "mixed-family tunnel");
  assert.ok(dests.some((d) => d.fwd === "fullnat"), "fullnat");
  assert.ok(all.some((s) => s.laddrs.length > 1) && all.some((s) => s.key.af === 6 && s.laddrs.length), "laddrs");
  assert.ok(all.some((s) => s.key.kind === "fwm" && s.laddrs.length), "fwmark laddrs");
  for (const v of [1, 2]) assert.ok(all.some((s) => s.proxyProtocol === v), `proxy-protocol v${v}`);
});

trip.run();

// ---
const order = suite("ipvsadm's sort order");

const k = (addr: string, port = 80, o: Partial<ServiceKey> = {}): ServiceKey =>
  ({ kind: "tcp", af: addr.includes(":") ? 6 : 4, addr, port, fwmark: 0, ...o });

order("cmpU32 returns the difference as a 32-bit int", () => {
  assert.is(cmpU32(5, 3), 2);
  assert.ok(cmpU32(0x90000000, 0) < 0);          // the wrap: 2^31 or more apart
  assert.ok(cmpU32(0x7fffffff, 0) > 0);
  assert.ok(cmpU32(0xc6130001 | 0, 0xc6120001 | 0) > 0); // int32 inputs work the same
});

order("services: fwmark, family, protocol, address, port", () => {
  assert.ok(cmpServices(k("198.18.0.1"), k("", 0, { kind: "fwm", fwmark: 1 })) < 0);
  assert.ok(cmpServices(k("", 0, { kind: "fwm", fwmark: 3000000000 }), k("198.18.0.1")) < 0); // wraps
  assert.ok(cmpServices(k("", 0, { kind: "fwm", fwmark: 3000000000 }), k("", 0, { kind: "fwm", fwmark: 5 })) < 0);
  assert.ok(cmpServices(k("198.19.0.1"), k("2001:2::1")) < 0);
  assert.ok(cmpServices(k("198.19.0.1"), k("198.18.0.1", 80, { kind: "udp" })) < 0);
  assert.ok(cmpServices(k("198.18.0.1", 80, { kind: "udp" }), k("198.18.0.1", 80, { kind: "sctp" })) < 0);
  assert.ok(cmpServices(k("198.18.0.9"), k("198.18.0.10")) < 0);
  assert.ok(cmpServices(k("198.18.0.1", 443), k("198.18.0.1", 80)) > 0);
  assert.ok(cmpServices(k("2001:2::9000:0:0:1"), k("2001:2::1")) < 0); // the third word wraps
  assert.ok(cmpServices(k("2001:2::1:0:0:1"), k("2001:2::1")) > 0);
});

order("destinations compare in the first one's family", () => {
  const d = (addr: string, port = 80) => ({ af: (addr.includes(":") ? 6 : 4) as 4 | 6, addr, port });
  assert.ok(cmpDests(d("198.19.0.1"), d("198.19.0.2")) < 0);
  assert.ok(cmpDests(d("198.19.0.1", 81), d("198.19.0.1", 80)) > 0);
  assert.ok(cmpDests(d("198.19.0.1"), d("2001:2::1")) < 0); // 0xc613... - 0x20010002 wraps negative
  assert.ok(cmpDests(d("2001:2::1"), d("198.19.0.1")) > 0);
});

order("qsort is glibc's merge sort, also on a cyclic comparator", () => {
  // 0 < 0x50000000 < 0xa0000000 < 0 under the wrap-around difference.
  const A = 0, B = 0x50000000, C = 0xa0000000;
  // n=3 splits 1 | 2: [A] and sorted [B, C]; merge takes A first (A < B).
  assert.equal(qsort([A, B, C], cmpU32), [A, B, C]);
  // [C] and sorted [B, A] = [A, B]; merge: C < A, so C comes first.
  assert.equal(qsort([C, B, A], cmpU32), [C, A, B]);
  // [B] and sorted [C, A] -> C < A -> [C, A]; merge: B vs C: B < C -> [B, C, A].
  assert.equal(qsort([B, C, A], cmpU32), [B, C, A]);
});

order("qsort is stable and does not touch its input", () => {
  const xs = [{ k: 2, n: "a" }, { k: 1, n: "b" }, { k: 2, n: "c" }, { k: 1, n: "d" }];
  const copy = structuredClone(xs);
  assert.equal(qsort(xs, (a, b) => a.k - b.k).map((x) => x.n), ["b", "d", "a", "c"]);
  assert.equal(xs, copy);
  assert.equal(qsort([], cmpU32), []);
});

order.run();

// ---
const naming = suite("addrPortName and scheduler flag names");

naming("numeric and named forms", () => {
  const names = makeNames("198.18.0.1 web1\n2001:2::1 six\n", "http 80/tcp\n");
  assert.is(addrPortName(4, "198.18.0.1", 80, "tcp", true, names), "198.18.0.1:80");
  assert.is(addrPortName(4, "198.18.0.1", 80, "tcp", false, names), "web1:http");
  assert.is(addrPortName(4, "198.18.0.1", 80, "udp", false, names), "web1:80");
  assert.is(addrPortName(4, "198.18.0.1", 80, null, false, names), "web1:80");
  assert.is(addrPortName(6, "2001:2::1", 80, "tcp", false, names), "[six]:http");
  assert.is(addrPortName(6, "2001:2::2", 0, "tcp", true, names), "[2001:2::2]:0");
});

naming("ipvsadm's 60-byte buffer cuts long names to 59 characters", () => {
  const long = "a".repeat(70);
  const names = makeNames(`198.18.0.1 ${long}\n`, "");
  assert.is(addrPortName(4, "198.18.0.1", 80, "tcp", false, names), "a".repeat(59));
});

naming("schedFlagNames", () => {
  assert.equal(schedFlagNames("sh", 3), ["sh-fallback", "sh-port"]);
  assert.equal(schedFlagNames("sh", 4), []);
  assert.equal(schedFlagNames("mh", 2), ["mh-port"]);
  assert.equal(schedFlagNames("rr", 7), ["flag-1", "flag-2", "flag-3"]);
});

naming.run();


// ---
const fixed = suite("-S is a fixed point of -C; -R (the issue's property test, pure)");

fixed("formatSave(restore(formatSave(r))) === formatSave(r), numeric, 400 seeded RuleSets, from a non-empty table", () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = noSctp(randomRules(seed));
    const text = formatSave(r, true);
    // -C; -R over whatever the table held before.
    const current = noSctp(randomRules(seed + 100000));
    const { after } = planRestore(current, "-C\n" + text, TEST_SCHEDULERS, "ipvsadm", NO_NAMES);
    assert.fixture(formatSave(after, true), text, `seed ${seed}`);
    assert.fixture(formatSave(applyAll(emptyRuleSet(), parseRestore(text, "ipvsadm", NO_NAMES), TEST_SCHEDULERS), true), text);
  }
});

fixed("the same with names (-S without -n, read back through /etc/hosts and /etc/services)", () => {
  for (let seed = 2000; seed < 2200; seed++) {
    const r = noSctp(randomRules(seed));
    const n = namesFor(r);
    const names = makeNames(n.hosts, n.services);
    const text = formatSave(r, false, names);
    const { after } = planRestore(emptyRuleSet(), "-C\n" + text, TEST_SCHEDULERS, "ipvsadm", names);
    assert.fixture(formatSave(after, false, names), text, `seed ${seed}`);
    assert.fixture(formatSave(after, true), formatSave(r, true));
  }
});

fixed.run();

// ---
const bad = suite("one bad line anywhere: -R fails at that line and changes nothing");

const TRY_MSG = TRY;
const MISSING = "-t 198.19.255.254:65535"; // a service no test rule set has (checked below)

/** The bad lines, each with the error it must raise; `svc` is a service defined above the
 *  insertion point (for the kinds that need one): its -S name, family and -A line. */
function badLine(kind: number, svc: { name: string; v6: boolean; line: string } | null): [string, string, number] | null {
  switch (kind) {
    case 0: return ["-A -t 198.18.0.1:80 --bogus", "--bogus: unknown option", 255];
    case 1: return [`-a ${MISSING} -r 198.19.0.1 -w 70000`, "illegal weight specified", 2];
    case 2: return ["-A -t 198.18.0.1", "Zero port specified for non-persistent service", 2];
    case 3: return ["-L -n", TRY_MSG, 255];
    case 4: return [`-A ${MISSING} -s nosuch`, "Scheduler or persistence engine not found", 255];
    case 5: return [`-a ${MISSING} -r 198.19.0.1 -m`, "Service not defined", 255];
    case 6: return [`-D ${MISSING}`, "No such service", 255];
    case 7: return ["-A --sctp-service 198.18.0.1:5060 -s rr", SCTP_MSG, 255];
    case 8: return svc && [svc.line, "Service already exists", 255]; // the same -A twice
    case 9: return svc && [`-a ${svc.name} -r ${svc.v6 ? "2001:2::ffff" : "198.19.255.255"} -x 10 -y 20`, "Numerical result out of range", 255];
    case 10: return svc && [`ipvsadm -e ${svc.name} -r ${svc.v6 ? "[2001:2::ffff]:1" : "198.19.255.255:1"} -m`, "No such destination", 255];
    default: return ["-A -t 198.18.0.1:80 -s rr -o", "One-Packet Scheduling is only for UDP virtual services", 2];
  }
}
const BAD_KINDS = 12;

bad("every kind of bad line, inserted at a random position among comments and blank lines", () => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 600; seed++) {
    const r = noSctp(randomRules(seed));
    assert.not.ok(r.services.some((s) => s.key.kind === "tcp" && s.key.addr === "198.19.255.254" && s.key.port === 65535));
    const rand = rng(seed * 7919);
    const good = formatSave(r, true);
    const file: string[] = [];
    for (const l of good.split("\n").slice(0, -1)) {
      if (rand(4) === 0) file.push(rand(2) ? "# a comment line" : rand(2) ? "" : " \t ");
      file.push(l);
    }
    const pos = rand(file.length + 1);
    const above = file.slice(0, pos).filter((l) => l.startsWith("-A ")).map((l) => {
      const name = l.slice(3, l.indexOf(" -s "));
      return { name, v6: name.includes("[") || name.endsWith(" -6"), line: l };
    });
    const kind = seed % BAD_KINDS;
    const b = badLine(kind, above.length ? above[rand(above.length)] : null);
    if (!b) continue;
    seen.add(kind);
    const [line, msg, exit] = b;
    const text = [...file.slice(0, pos), line, ...file.slice(pos)].join("\n") + "\n";
    const ctx = `seed ${seed}, line ${pos + 1}:\n${text}`;

    // From an empty table ...
    try {
      planRestore(emptyRuleSet(), text, TEST_SCHEDULERS, "ipvsadm", NO_NAMES);
      assert.unreachable(ctx);
    } catch (e) {
      if (!(e instanceof IpvsError)) throw e;
      assert.equal([e.message, e.exit, e.line], [msg, exit, pos + 1], ctx);
    }
    // ... and as -C; -R over the same rules: the table is deep-equal to before and -S unchanged.
    const before = restore(good);
    const snapshot = structuredClone(before);
    throwsIpvs(() => planRestore(before, "-C\n" + text, TEST_SCHEDULERS, "ipvsadm", NO_NAMES), msg, exit, pos + 2);
    assert.equal(before, snapshot);
    assert.fixture(formatSave(before, true), good);
  }
  assert.is(seen.size, BAD_KINDS, "every kind was tried");
});

bad.run();

// ---
const corpus = suite("restore corpus: ipvsadm rule files as people keep them (test/fixtures/restore)");

const FIX = new URL("../fixtures/restore/", import.meta.url).pathname;
const fixture = (name: string) => readFileSync(FIX + name, "utf8");
const CORPUS_NAMES = makeNames(fixture("hosts.txt"), fixture("services.txt"));
const RULE_FILES = readdirSync(FIX).filter((f) => f.endsWith(".rules")).sort();

corpus("there is a corpus, and each file has its expected -S -n", () => {
  assert.ok(RULE_FILES.length >= 6, RULE_FILES.join(" "));
  for (const f of RULE_FILES) assert.ok(readdirSync(FIX).includes(f.replace(/\.rules$/, ".expected")), f);
});

for (const f of RULE_FILES) {
  corpus(`${f}: restores to the expected -S -n, which restores to itself`, () => {
    const { after } = planRestore(emptyRuleSet(), fixture(f), TEST_SCHEDULERS, "ipvsadm", CORPUS_NAMES);
    const want = fixture(f.replace(/\.rules$/, ".expected"));
    assert.fixture(formatSave(after, true), want);
    assert.fixture(formatSave(restore(want), true), want);
    // -S without -n, through the same names, restores to the same table.
    const named = formatSave(after, false, CORPUS_NAMES);
    assert.equal(planRestore(emptyRuleSet(), named, TEST_SCHEDULERS, "ipvsadm", CORPUS_NAMES).after, restore(want));
  });
}

corpus("the corpus has the kinds of lines the issue lists", () => {
  const all = RULE_FILES.map(fixture).join("\n");
  for (const re of [/:http\b/, /-p\s*$/m, /-r 198\.19\.1\.2\s*$/m, /--tun-type gue/, /--tun-type gre/, /-f 5 /, /-f 6 -6/,
    /^-At /m, /^-at /m, /^ipvsadm /m, /^#/m, /^\s*$/m, /\r$/m]) {
    assert.ok(re.test(all), String(re));
  }
  assert.not.ok(/\b(10\.\d+|172\.(1[6-9]|2\d|3[01])|192\.168)\.\d+\.\d+/.test(all), "only 198.18.0.0/15 and 2001:2::/48");
});

corpus("saved_names.rules is -S output without -n: it is its own -S", () => {
  const { after } = planRestore(emptyRuleSet(), fixture("saved_names.rules"), TEST_SCHEDULERS, "ipvsadm", CORPUS_NAMES);
  assert.fixture(formatSave(after, false, CORPUS_NAMES), fixture("saved_names.rules"));
});

corpus.run();
