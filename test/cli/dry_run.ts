import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diffRules, planRestore, restoreBatches } from "../../src/cli/dry_run.ts";
import { makeNames, NO_NAMES } from "../../src/cli/names.ts";
import { formatSave, parseRestore } from "../../src/cli/rules_text.ts";
import { applyAll } from "../../src/control/apply.ts";
import { emptyRuleSet, type RuleSet } from "../../src/control/model.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";
import { randomRules, TEST_SCHEDULERS, tslbAccepts } from "../helpers/random_rules.ts";

const restore = (text: string, from: RuleSet = emptyRuleSet()) =>
  applyAll(from, parseRestore(text, "ipvsadm", NO_NAMES), TEST_SCHEDULERS);
const plan = (from: RuleSet, text: string) => planRestore(from, text, TEST_SCHEDULERS, "ipvsadm", NO_NAMES);
const report = (from: RuleSet, text: string) => diffRules(from, plan(from, text).after);
const noSctp = tslbAccepts; // tslb refuses SCTP services and --proxy-protocol

const WEB = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.19.0.1:8080 -m\n-a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 2\n";

// ---
const diff = suite("diffRules");

diff("identical rule sets: no changes", () => {
  assert.is(diffRules(emptyRuleSet(), emptyRuleSet()), "no changes\n");
  const r = restore(WEB);
  assert.is(diffRules(r, structuredClone(r)), "no changes\n");
});

diff("-C; -R of a table's own -S changes nothing (300 seeded tables)", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = noSctp(randomRules(seed));
    assert.is(report(r, "-C\n" + formatSave(r, true)), "no changes\n", `seed ${seed}`);
  }
});

diff("services and destinations added, in -S syntax and -S order", () => {
  const text = "ipvsadm -A -u 198.18.0.53:53 -s sh -o\n" + WEB +
    "-A -f 5 -6 -s wlc -p -M 64\n-a -f 5 -6 -r 2001:2::9 -w 3 -x 100 -y 10\n" +
    "-a -t 198.18.0.100:80 -r 198.19.0.3 -i --tun-type gue --tun-port 6080 --tun-csum\n";
  assert.fixture(report(emptyRuleSet(), text), [
    "+ -A -t 198.18.0.100:80 -s rr",
    "+ -a -t 198.18.0.100:80 -r 198.19.0.1:8080 -m -w 1",
    "+ -a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 2",
    "+ -a -t 198.18.0.100:80 -r 198.19.0.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
    "+ -A -u 198.18.0.53:53 -s sh -o",
    "+ -A -f 5 -6 -s wlc -p 360 -M 64",
    "+ -a -f 5 -6 -r [2001:2::9]:0 -g -w 3 -x 100 -y 10", // thresholds shown: -S would drop them
    "3 services added, 4 destinations added",
    "",
  ].join("\n"));
});

diff("a removed service takes its destinations with it", () => {
  const before = restore(WEB + "-A -t 198.18.0.101:443 -s wlc -p 600\n-a -t 198.18.0.101:443 -r 198.19.0.9\n");
  assert.fixture(report(before, "-D -t 198.18.0.100:80\n"), [
    "- -A -t 198.18.0.100:80 -s rr",
    "- -a -t 198.18.0.100:80 -r 198.19.0.1:8080 -m -w 1",
    "- -a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 2",
    "1 service removed, 2 destinations removed",
    "",
  ].join("\n"));
  assert.fixture(report(before, "-C"), [
    "- -A -t 198.18.0.100:80 -s rr",
    "- -a -t 198.18.0.100:80 -r 198.19.0.1:8080 -m -w 1",
    "- -a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 2",
    "- -A -t 198.18.0.101:443 -s wlc -p 600",
    "- -a -t 198.18.0.101:443 -r 198.19.0.9:443 -g -w 1",
    "2 services removed, 3 destinations removed",
    "",
  ].join("\n"));
});

diff("service edits name each setting that changed", () => {
  const before = restore(WEB + "-A -u 198.18.0.53:53 -s sh -b sh-port -o\n-A -f 7 -s wlc -p 300 -M 255.255.255.0\n");
  const text = "-E -t 198.18.0.100:80 -s wlc\n" +       // scheduler only
    "-E -u 198.18.0.53:53 -s sh -b sh-fallback\n" +       // flags and ops
    "-E -f 7 -s wlc\n";                                   // persistence (and its mask) off
  assert.fixture(report(before, text), [
    "~ -A -t 198.18.0.100:80 -s wlc   (scheduler rr -> wlc)",
    "~ -A -u 198.18.0.53:53 -s sh -b sh-fallback   (sched-flags sh-port -> sh-fallback, ops on -> off)",
    "~ -A -f 7 -s wlc   (persistent 300 -> off, netmask 255.255.255.0 -> 255.255.255.255)",
    "3 services edited",
    "",
  ].join("\n"));
  const after = restore("-E -f 7 -s wlc -p 600", before);
  assert.match(diffRules(before, after), "(persistent 300 -> 600, netmask 255.255.255.0 -> 255.255.255.255)");
  const withPe = structuredClone(after);
  withPe.services[2].pe = "sip"; // no PE can be applied in tslb yet: set it by hand
  assert.is(diffRules(after, withPe), "~ -A -f 7 -s wlc -p 600 --pe sip   (pe none -> sip)\n1 service edited\n");
});

diff("destination edits: weight, forwarding, thresholds, tunnel", () => {
  const before = restore(WEB + "-a -t 198.18.0.100:80 -r 198.19.0.3 -i --tun-type gue --tun-port 6080\n" +
    "-a -t 198.18.0.100:80 -r 198.19.0.4:8080 -m -x 50\n-a -t 198.18.0.100:80 -r 198.19.0.5\n");
  const text = "-e -t 198.18.0.100:80 -r 198.19.0.1:8080 -m -w 3\n" +
    "-e -t 198.18.0.100:80 -r 198.19.0.3 -i --tun-type gre --tun-csum\n" +
    "-e -t 198.18.0.100:80 -r 198.19.0.4:8080 -m -x 100 -y 20\n" +
    "-e -t 198.18.0.100:80 -r 198.19.0.5:80 -m -w 2\n";
  assert.fixture(report(before, text), [
    "~ -a -t 198.18.0.100:80 -r 198.19.0.1:8080 -m -w 3   (weight 1 -> 3)",
    "~ -a -t 198.18.0.100:80 -r 198.19.0.3:80 -i -w 1 --tun-type gre --tun-csum   (tunnel gue:6080:-c -> gre:+c)",
    "~ -a -t 198.18.0.100:80 -r 198.19.0.4:8080 -m -w 1 -x 100 -y 20   (u-threshold 50 -> 100, l-threshold 0 -> 20)",
    "~ -a -t 198.18.0.100:80 -r 198.19.0.5:80 -m -w 2   (forward Route -> Masq, weight 1 -> 2)",
    "4 destinations edited",
    "",
  ].join("\n"));
});

diff("a destination replaced by another on a new port; a tunnel that used to be NAT", () => {
  const before = restore(WEB);
  const after = restore("-d -t 198.18.0.100:80 -r 198.19.0.2:8080\n-a -t 198.18.0.100:80 -r 198.19.0.2\n", before);
  assert.fixture(diffRules(before, after), [
    "+ -a -t 198.18.0.100:80 -r 198.19.0.2:80 -g -w 1",
    "- -a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 2",
    "1 destination added, 1 destination removed",
    "",
  ].join("\n"));
  const after2 = structuredClone(before);
  after2.services[0].dests[1].fwd = "tunnel"; // 198.19.0.1:8080 (newest-first order); -e would force port 80
  assert.is(diffRules(before, after2).split("\n")[0], "~ -a -t 198.18.0.100:80 -r 198.19.0.1:8080 -i -w 1 --tun-type ipip   (forward Masq -> Tunnel)");
});

diff("full NAT: FullNat destinations, --laddr and --proxy-protocol changes", () => {
  const before = restore(WEB + "-A -u 198.18.0.53:53 -s rr --laddr 198.18.0.200\n");
  const text = "-e -t 198.18.0.100:80 -r 198.19.0.1:8080 --fullnat\n" +
    "-a -t 198.18.0.100:80 -r 198.19.0.3:8080 --fullnat -w 4\n" +
    "-E -t 198.18.0.100:80 -s rr --laddr 198.18.0.201,198.18.0.202\n" +
    "-E -u 198.18.0.53:53 -s rr\n";                     // -E without --laddr: back to the default
  assert.fixture(report(before, text), [
    "~ -A -t 198.18.0.100:80 -s rr --laddr 198.18.0.201,198.18.0.202   (laddr default -> 198.18.0.201,198.18.0.202)",
    "~ -a -t 198.18.0.100:80 -r 198.19.0.1:8080 --fullnat -w 1   (forward Masq -> FullNat)",
    "+ -a -t 198.18.0.100:80 -r 198.19.0.3:8080 --fullnat -w 4",
    "~ -A -u 198.18.0.53:53 -s rr   (laddr 198.18.0.200 -> default)",
    "2 services edited, 1 destination added, 1 destination edited",
    "",
  ].join("\n"));
  const withProxy = structuredClone(before);
  withProxy.services[1].proxyProtocol = 1; // refused by the apply step for now: set by hand
  assert.is(diffRules(before, withProxy),
    "~ -A -u 198.18.0.53:53 -s rr --laddr 198.18.0.200 --proxy-protocol v1   (proxy-protocol off -> v1)\n1 service edited\n");
});

diff("timeouts", () => {
  assert.is(report(emptyRuleSet(), "--set 1000 0 60"), "~ --set 1000 120 60   (tcp 900 -> 1000, udp 300 -> 60)\ntimeouts changed\n");
});

diff("additions, removals and edits interleave in -S order; counts are summed", () => {
  const before = restore("-A -t 198.18.0.3:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-A -f 9 -s rr\n-a -f 9 -r 198.19.0.1\n");
  const text = "-C\n-A -f 9 -s wrr\n-a -f 9 -r 198.19.0.1 -w 4\n-A -t 198.18.0.2:80 -s rr\n-A -t 198.18.0.3:80 -s rr\n-A -u 198.18.0.1:80 -s rr\n";
  assert.fixture(report(before, text), [
    "- -A -t 198.18.0.1:80 -s rr",
    "+ -A -t 198.18.0.2:80 -s rr",
    "+ -A -u 198.18.0.1:80 -s rr",
    "~ -A -f 9 -s wrr   (scheduler rr -> wrr)",
    "~ -a -f 9 -r 198.19.0.1:0 -g -w 4   (weight 1 -> 4)",
    "2 services added, 1 service removed, 1 service edited, 1 destination edited",
    "",
  ].join("\n"));
});

diff("with names, as -S without -n prints them", () => {
  const names = makeNames("198.18.0.100 www-vip\n198.19.0.1 web1\n", "http 80/tcp\nhttp-alt 8080/tcp\n");
  assert.fixture(diffRules(emptyRuleSet(), restore(WEB), names), [
    "+ -A -t www-vip:http -s rr",
    "+ -a -t www-vip:http -r web1:http-alt -m -w 1",
    "+ -a -t www-vip:http -r 198.19.0.2:http-alt -m -w 2",
    "1 service added, 2 destinations added",
    "",
  ].join("\n"));
});

diff("pure: its inputs are not modified", () => {
  const before = restore(WEB);
  const after = restore("-e -t 198.18.0.100:80 -r 198.19.0.1:8080 -m -w 9\n-A -f 3 -s rr", before);
  const [b, a] = [structuredClone(before), structuredClone(after)];
  diffRules(before, after);
  assert.equal([before, after], [b, a]);
});

diff.run();

// ---
const planning = suite("planRestore");

planning("returns every Command and the table after them", () => {
  const before = restore(WEB);
  const text = "# comment\n\n-a -t 198.18.0.100:80 -r 198.19.0.3:8080 -m\n-D -t 198.18.0.100:80\n";
  const p = plan(before, text);
  assert.equal(p.cmds.map((c) => c.kind), ["add-dest", "delete-service"]);
  assert.equal(p.after, restore(text, before));
});

planning("the first failing line in input order is named, whatever the kind of failure", () => {
  const before = restore(WEB);
  const snapshot = structuredClone(before);
  // A kernel refusal on line 2 comes before a syntax error on line 4 ...
  throwsIpvs(() => plan(before, "-A -t 198.18.0.7:80 -s rr\n-A -t 198.18.0.100:80 -s rr\n\n-A -t 198.18.0.8:80 --foo\n"),
    "Service already exists", 255, 2);
  // ... and a syntax error on line 2 before a kernel refusal on line 3.
  throwsIpvs(() => plan(before, "-C\n-a -t 198.18.0.100:80 -r 198.19.0.9 -w x\n-D -t 198.18.0.100:80\n"),
    "illegal weight specified", 2, 2);
  throwsIpvs(() => plan(before, "-D -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r 198.19.0.9\n"), "Service not defined", 255, 2);
  throwsIpvs(() => plan(before, "\n\n# x\n-L -n\n"), "Try `ipvsadm -h' or 'ipvsadm --help' for more information.", 255, 4);
  assert.equal(before, snapshot);
});

planning("each line parses exactly as parseRestore parses it", () => {
  const text = "ipvsadm # not a comment\n";
  throwsIpvs(() => [...restoreBatches(text, "ipvsadm", NO_NAMES)], "Try `ipvsadm -h' or 'ipvsadm --help' for more information.", 255, 1);
  throwsIpvs(() => parseRestore(text, "ipvsadm", NO_NAMES), "Try `ipvsadm -h' or 'ipvsadm --help' for more information.", 255, 1);
  const ok = "-A\t-t 198.18.0.1:80 -s rr\r\n\r\n  ipvsadm -a -t 198.18.0.1:80 -r 198.19.0.1\r\n";
  assert.equal([...restoreBatches(ok, "ipvsadm", NO_NAMES)].map((b) => b.line), [1, 3]);
  assert.equal([...restoreBatches(ok, "ipvsadm", NO_NAMES)].flatMap((b) => b.cmds), parseRestore(ok, "ipvsadm", NO_NAMES));
});

planning("empty input: nothing to do", () => {
  const before = restore(WEB);
  const p = plan(before, "\n# nothing\n");
  assert.equal(p.cmds, []);
  assert.equal(p.after, before);
});

planning.run();

// ---
const cli = suite("tslb -R [--dry-run] with no daemon running (the CLI role)");

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const SOCK_DIR = mkdtempSync(join(tmpdir(), "tslb-dry-run-"));
const SOCKET = join(SOCK_DIR, "none", "tslb.sock");

function tslb(args: string[], stdin: string) {
  const r = Bun.spawnSync([process.execPath, MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TSLB_SOCKET: SOCKET },
    stdin: new TextEncoder().encode(stdin),
  });
  return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exitCode };
}

cli("--dry-run prints the report against the empty table and starts nothing", () => {
  const r = tslb(["-R", "--dry-run"], "# web\nipvsadm -A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.19.0.1:8080 -m\n");
  assert.equal(r, { out: "+ -A -t 198.18.0.100:80 -s rr\n+ -a -t 198.18.0.100:80 -r 198.19.0.1:8080 -m -w 1\n1 service added, 1 destination added\n", err: "", code: 0 });
  assert.not.ok(existsSync(SOCKET));
});

cli("--dry-run fails as a real restore would: message, the line, the status", () => {
  const r = tslb(["-R", "--dry-run"], "-A -t 198.18.0.100:80 -s rr\n\n-A -t 198.18.0.100:80 -s wlc\n");
  assert.equal(r, { out: "", err: "Service already exists\ntslb: restore stopped at line 3; nothing was changed\n", code: 255 });
  const s = tslb(["-R", "--dry-run"], "-A --sctp-service 198.18.0.100:5060 -s rr\n");
  assert.equal(s, { out: "", err: "SCTP services are not supported by tslb's data plane yet\ntslb: restore stopped at line 1; nothing was changed\n", code: 255 });
  const w = tslb(["-R", "--dry-run"], "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.19.0.1 -w 99999\n");
  assert.equal(w, { out: "", err: "illegal weight specified\ntslb: restore stopped at line 2; nothing was changed\n", code: 2 });
});

cli("a real -R names the line a kernel check refuses, and starts no daemon for it", () => {
  const r = tslb(["-R"], "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.19.0.1 -x 1 -y 2\n");
  assert.equal(r, { out: "", err: "Numerical result out of range\ntslb: restore stopped at line 2; nothing was changed\n", code: 255 });
  assert.not.ok(existsSync(SOCKET));
});

cli("--dry-run with another command is refused by the grammar", () => {
  assert.equal(tslb(["-S", "--dry-run"], ""), { out: "", err: "Illegal 'dry-run' option with the 'save' command\n", code: 2 });
});

cli.run();
