// tslb's health-check options of -a/-e: parsing (defaults, what differs from them is
// kept), ipvsadm-style messages for misuse, -S writing them back after the ipvsadm options
// only when set, -R reading -S back, apply's edit rules (-e keeps a check, --check none
// removes it), and --json/--health being list-only.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseArgs } from "../../src/cli/getopt.ts";
import { makeNames } from "../../src/cli/names.ts";
import { checkOptions, formatSave, parseRestore } from "../../src/cli/rules_text.ts";
import { diffRules } from "../../src/cli/dry_run.ts";
import { applyAll } from "../../src/control/apply.ts";
import type { Command } from "../../src/control/commands.ts";
import { CHECK_DEFAULTS, emptyRuleSet, type HealthCheck } from "../../src/control/model.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";

const ENV = makeNames("", "");
const parse = (a: string) => parseArgs(a.split(" "), ENV);
const cmd = (a: string): Command => {
  const inv = parse(a);
  if (inv.kind !== "apply") throw new Error(`not an apply: ${a}`);
  return inv.cmds[0];
};
const checkOf = (a: string) => (cmd(a) as Extract<Command, { kind: "add-dest" }>).dest.check;
const SCHEDS = ["rr", "wlc"];
const SVC = "-t 198.18.0.100:80";

// ---
const p = suite("parsing --check options");

p("--check alone takes every default; the others override one each", () => {
  assert.equal(checkOf(`-a ${SVC} -r 198.18.1.11:8080 -m --check tcp`), { kind: "tcp", ...CHECK_DEFAULTS });
  assert.equal(checkOf(`-a ${SVC} -r 198.18.1.11:8080 -m --check http --check-port 8081 --check-path /healthz?full=1 --check-status 204 --check-interval 0.5 --check-timeout 0.25 --check-rise 1 --check-fall 5`), {
    kind: "http", port: 8081, path: "/healthz?full=1", status: 204, intervalMs: 500, timeoutMs: 250, rise: 1, fall: 5, viaVip: false,
  });
  assert.equal(checkOf(`-e ${SVC} -r 198.18.1.11 -g --check=udp --check-via-vip`)?.viaVip, true);
  assert.is(checkOf(`-a ${SVC} -r 198.18.1.11:8080 -m`), undefined, "no options: no check field at all");
  assert.equal(checkOf(`-e ${SVC} -r 198.18.1.11:8080 -m --check none`)?.kind, "none");
});

p("--check-port equal to the destination's port is the default (0); a port-less server needs one", () => {
  assert.is(checkOf(`-a ${SVC} -r 198.18.1.11:8080 -m --check tcp --check-port 8080`)!.port, 0);
  assert.is(checkOf(`-a ${SVC} -r 198.18.1.11 -g --check tcp --check-port 80`)!.port, 0, "DR: the service port");
  assert.is(checkOf("-a -f 5 -r 198.18.1.11 -m --check tcp --check-port 80")!.port, 80);
  throwsIpvs(() => parse("-a -f 5 -r 198.18.1.11 -m --check tcp"), "You need to supply the 'check-port' option for a server without a port", 2);
});

p("misuse gets ipvsadm-style messages, exit 2", () => {
  const bad: [string, string][] = [
    [`-a ${SVC} -r 198.18.1.11:8080 --check-port 81`, "You need to supply the 'check' option with the 'check-port' option"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check icmp`, "illegal check type specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check-path /x`, "Illegal 'check-path' option with the 'tcp' check type"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check udp --check-status 200`, "Illegal 'check-status' option with the 'udp' check type"],
    [`-e ${SVC} -r 198.18.1.11:8080 --check none --check-rise 3`, "Illegal 'check-rise' option with the 'none' check type"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check-port 0`, "illegal check port specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check http --check-path healthz`, "illegal check path specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check http --check-status 99`, "illegal check status specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check-interval 0`, "illegal check interval specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check-timeout 1.0005`, "illegal check timeout specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check-interval 3601`, "illegal check interval specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check-rise 0`, "illegal check rise specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check-fall x`, "illegal check fall specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 --check tcp --check tcp`, "multiple 'check' options specified"],
    [`-a ${SVC} -r 198.18.1.11:8080 -m --check tcp --check-via-vip`, "Check option 'check-via-vip' conflicts with forward method"],
    [`-A ${SVC} --check tcp`, "Illegal 'check' option with the 'add-service' command"],
    [`-d ${SVC} -r 198.18.1.11:8080 --check-fall 2`, "Illegal 'check-fall' option with the 'delete-server' command"],
    ["-L --check tcp", "Illegal 'check' option with the 'list' command"],
    ["-S --json", "Illegal 'json' option with the 'save' command"],
    [`-a ${SVC} -r 198.18.1.11:8080 --health`, "Illegal 'health' option with the 'add-server' command"],
    ["-L -c --health", "options conflicts in the list command"],
    ["-L --stats --health", "options conflicts in the list command"],
    ["-L --timeout --json", "options conflicts in the list command"],
  ];
  for (const [argv, msg] of bad) throwsIpvs(() => parse(argv), msg, 2);
});

p("--json and --health are list options, set only when given", () => {
  const l = (a: string) => { const inv = parse(a); return inv.kind === "list" ? inv.opts : null; };
  assert.equal([l("-L -n --json")!.json, l("-L -n --json")!.health], [true, undefined]);
  assert.is(l("-L -n -c --json")!.connections, true);
  assert.is(l(`-L -n --health ${SVC}`)!.health, true);
  assert.is("json" in l("-L -n")!, false);
});

p.run();

// ---
const save = suite("-S and -R with checks");

const RULES = `-A ${SVC} -s rr
-a ${SVC} -r 198.18.1.11:8080 -m -w 1 --check http --check-path /healthz --check-interval 0.5 --check-fall 2
-a ${SVC} -r 198.18.1.12:8080 -m -w 3 --check tcp
-a ${SVC} -r 198.18.1.13:8080 -m -w 1
-A -t 198.18.0.101:80 -s wlc
-a -t 198.18.0.101:80 -r 198.18.1.11:80 -g -w 1 --check tcp --check-port 8081 --check-via-vip
`;

save("-S prints the check options after the ipvsadm ones, only the ones that differ; -R reads them back", () => {
  const rules = applyAll(emptyRuleSet(), parseRestore(RULES, "ipvsadm", ENV), SCHEDS);
  assert.is(formatSave(rules, true), RULES);
  assert.equal(applyAll(emptyRuleSet(), parseRestore(formatSave(rules, true), "ipvsadm", ENV), SCHEDS), rules);
});

save("checkOptions", () => {
  const c: HealthCheck = { kind: "udp", ...CHECK_DEFAULTS };
  assert.is(checkOptions(c), "--check udp");
  assert.is(checkOptions({ ...c, kind: "http", status: 301, timeoutMs: 1500, rise: 3 }), "--check http --check-status 301 --check-timeout 1.5 --check-rise 3");
});

save("the state file form (full) keeps thresholds and timeouts; plain -S does not", () => {
  const rules = applyAll(emptyRuleSet(), parseRestore(`--set 600 60 0\n-A ${SVC} -s rr\n-a ${SVC} -r 198.18.1.11:8080 -m -x 50 -y 10 --check tcp\n`, "ipvsadm", ENV), SCHEDS);
  assert.is(formatSave(rules, true, undefined, true), `--set 600 60 300\n-A ${SVC} -s rr\n-a ${SVC} -r 198.18.1.11:8080 -m -w 1 -x 50 -y 10 --check tcp\n`);
  assert.is(formatSave(rules, true), `-A ${SVC} -s rr\n-a ${SVC} -r 198.18.1.11:8080 -m -w 1 --check tcp\n`);
  assert.equal(applyAll(emptyRuleSet(), parseRestore(formatSave(rules, true, undefined, true), "ipvsadm", ENV), SCHEDS), rules);
});

save("-R --dry-run names a changed check", () => {
  const before = applyAll(emptyRuleSet(), parseRestore(RULES, "ipvsadm", ENV), SCHEDS);
  const after = applyAll(before, [cmd(`-e ${SVC} -r 198.18.1.12:8080 -m -w 3 --check http`)], SCHEDS);
  assert.match(diffRules(before, after), "~ -a -t 198.18.0.100:80 -r 198.18.1.12:8080 -m -w 3 --check http   (check --check tcp -> --check http)\n");
});

save.run();

// ---
const ap = suite("apply: checks on edit");

ap("-e without check options keeps the check; --check none removes it; a new --check replaces it", () => {
  let r = applyAll(emptyRuleSet(), parseRestore(RULES, "ipvsadm", ENV), SCHEDS);
  const check = () => r.services[0].dests.find((d) => d.addr === "198.18.1.11")!.check;
  const was = check();
  r = applyAll(r, [cmd(`-e ${SVC} -r 198.18.1.11:8080 -m -w 0`)], SCHEDS);
  assert.equal(check(), was);
  r = applyAll(r, [cmd(`-e ${SVC} -r 198.18.1.11:8080 -m --check udp`)], SCHEDS);
  assert.equal(check(), { kind: "udp", ...CHECK_DEFAULTS });
  r = applyAll(r, [cmd(`-e ${SVC} -r 198.18.1.11:8080 -m --check none`)], SCHEDS);
  assert.is("check" in r.services[0].dests.find((d) => d.addr === "198.18.1.11")!, false);
  r = applyAll(r, [cmd(`-a ${SVC} -r 198.18.1.14:8080 -m --check none`)], SCHEDS);
  assert.is("check" in r.services[0].dests[0], false, "--check none on -a: no check");
});

ap("--check-via-vip: refused when an edit makes the server NAT and for fwmark services; accepted for tunnels", () => {
  const r = applyAll(emptyRuleSet(), parseRestore(RULES + "-A -f 7 -s rr\n", "ipvsadm", ENV), SCHEDS);
  throwsIpvs(() => applyAll(r, [cmd("-e -t 198.18.0.101:80 -r 198.18.1.11:80 -m")], SCHEDS),
    "--check-via-vip is for direct-routing and tunnel servers only (give the check again, without it)", 255);
  throwsIpvs(() => applyAll(r, [cmd("-a -f 7 -r 198.18.1.11 -g --check tcp --check-port 80 --check-via-vip")], SCHEDS),
    "--check-via-vip needs a virtual address: a firewall-mark service has none", 255);
  const t = applyAll(r, [cmd("-a -t 198.18.0.101:80 -r 198.18.1.12 -i --check tcp --check-via-vip")], SCHEDS);
  assert.ok(t.services.some((s) => s.dests.some((d) => d.fwd === "tunnel" && d.check?.viaVip)));
});

ap.run();
