import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseArgs } from "../../src/cli/getopt.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { applyAll, applyLines } from "../../src/control/apply.ts";
import type { Command } from "../../src/control/commands.ts";
import { type Dest, emptyRuleSet, type RuleSet, type ServiceKey } from "../../src/control/model.ts";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { IpvsError } from "../../src/control/errors.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";

const SCHEDS = ["rr", "wrr", "lc", "wlc", "sh"];
const cmds = (text: string): Command[] => parseRestore(text, "ipvsadm", NO_NAMES);
const run = (text: string, from: RuleSet = emptyRuleSet()) => applyAll(from, cmds(text), SCHEDS);
const VIP: ServiceKey = { kind: "tcp", af: 4, addr: "198.18.0.1", port: 80, fwmark: 0 };
const BASE = "-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1 -m\n";
const addrs = (r: RuleSet, i = 0) => r.services[i].dests.map((d) => `${d.addr}:${d.port}`);

// ---
const errs = suite("kernel errors (reference §1.7), exit 255");

const ERRORS: [string, string, string][] = [
  ["add existing service", BASE + "-A -t 198.18.0.1:80", "Service already exists"],
  ["add existing service, other settings", BASE + "-A -t 198.18.0.1:80 -s wlc -p", "Service already exists"],
  ["unknown scheduler on add", "-A -t 198.18.0.1:80 -s nosuch", "Scheduler or persistence engine not found"],
  ["unknown scheduler on edit", BASE + "-E -t 198.18.0.1:80 -s nosuch", "Scheduler or persistence engine not found"],
  ["default scheduler missing", "-A -t 198.18.0.1:80", "Scheduler or persistence engine not found"], // run with ["rr"] only
  ["unknown persistence engine", "-A -t 198.18.0.1:80 -s rr -p --pe foo", "Scheduler or persistence engine not found"],
  ["unknown persistence engine on edit", BASE + "-E -t 198.18.0.1:80 -s rr -p --pe sipx", "Scheduler or persistence engine not found"],
  ["unknown scheduler before a known engine", "-A -t 198.18.0.1:80 -s nosuch -p --pe sip", "Scheduler or persistence engine not found"],
  ["edit missing service", "-E -t 198.18.0.1:80 -s rr", "No such service"],
  ["delete missing service", BASE + "-D -t 198.18.0.1:81", "No such service"],
  ["add dest, missing service", "-a -t 198.18.0.1:80 -r 198.19.0.1", "Service not defined"],
  ["edit dest, missing service", "-e -t 198.18.0.1:80 -r 198.19.0.1", "Service not defined"],
  ["delete dest, missing service", "-d -t 198.18.0.1:80 -r 198.19.0.1", "Service not defined"],
  ["add existing dest", BASE + "-a -t 198.18.0.1:80 -r 198.19.0.1 -g -w 5", "Destination already exists"],
  ["edit missing dest", BASE + "-e -t 198.18.0.1:80 -r 198.19.0.2 -m", "No such destination"],
  ["edit dest on another port", BASE + "-e -t 198.18.0.1:80 -r 198.19.0.1:81 -m", "No such destination"],
  ["delete missing dest", BASE + "-d -t 198.18.0.1:80 -r 198.19.0.2", "No such destination"],
  ["l_threshold > u_threshold", BASE + "-a -t 198.18.0.1:80 -r 198.19.0.2 -x 10 -y 20", "Numerical result out of range"],
  ["-y without -x", BASE + "-a -t 198.18.0.1:80 -r 198.19.0.2 -y 10", "Numerical result out of range"],
  ["-y without -x on edit", BASE + "-e -t 198.18.0.1:80 -r 198.19.0.1 -m -y 1", "Numerical result out of range"],
  ["multicast real server", BASE + "-a -t 198.18.0.1:80 -r 224.0.0.1", "Invalid operation.  Possibly wrong module version, address not unicast, ..."],
  ["broadcast real server", BASE + "-a -t 198.18.0.1:80 -r 255.255.255.255", "Invalid operation.  Possibly wrong module version, address not unicast, ..."],
  ["zero-net real server", BASE + "-a -t 198.18.0.1:80 -r 0.0.0.1", "Invalid operation.  Possibly wrong module version, address not unicast, ..."],
  ["IPv6 link-local real server", "-A -t [2001:2::1]:80 -s rr\n-a -t [2001:2::1]:80 -r [fe80::1]:80", "Invalid operation.  Possibly wrong module version, address not unicast, ..."],
  ["IPv6 multicast real server", "-A -t [2001:2::1]:80 -s rr\n-a -t [2001:2::1]:80 -r [ff02::1]:80", "Invalid operation.  Possibly wrong module version, address not unicast, ..."],
];
const CODES: Record<string, string> = {
  "Service already exists": "EEXIST", "Scheduler or persistence engine not found": "ENOENT",
  "No such service": "ESRCH", "Service not defined": "ESRCH", "Destination already exists": "EEXIST",
  "No such destination": "ENOENT", "Numerical result out of range": "ERANGE",
  "Invalid operation.  Possibly wrong module version, address not unicast, ...": "EINVAL",
};
for (const [name, text, msg] of ERRORS) {
  errs(name, () => {
    const scheds = name === "default scheduler missing" ? ["rr"] : SCHEDS;
    const e = throwsIpvs(() => applyAll(emptyRuleSet(), cmds(text), scheds), msg, 255);
    assert.is(e.code, CODES[msg]);
  });
}

errs("the service is looked up before the dest is checked", () => {
  throwsIpvs(() => run("-a -t 198.18.0.1:80 -r 198.19.0.1 -y 5"), "Service not defined", 255);
  throwsIpvs(() => run(BASE + "-a -t 198.18.0.1:80 -r 198.19.0.1 -y 5"), "Numerical result out of range", 255);
});

errs("a mixed-family dest that is not a tunnel is refused (Commands not from the CLI)", () => {
  const dest: Dest = { af: 6, addr: "2001:2::1", port: 80, fwd: "masq", weight: 1, uThreshold: 0, lThreshold: 0, tunType: "ipip", tunPort: 0, tunCsum: "nocsum" };
  throwsIpvs(() => applyAll(run(BASE), [{ kind: "add-dest", key: VIP, dest }], SCHEDS), "Invalid operation.  Possibly wrong module version, address not unicast, ...", 255);
  assert.is(applyAll(run(BASE), [{ kind: "add-dest", key: VIP, dest: { ...dest, fwd: "tunnel" } }], SCHEDS).services[0].dests.length, 2);
});

errs.run();

// ---
const unsupported = suite("accepted by ipvsadm, not forwarded by tslb yet: EOPNOTSUPP, exit 255");

const SCTP_MSG = "SCTP services are not supported by tslb's data plane yet";
const SIP_MSG = "persistence engine 'sip' is not supported by tslb yet";

unsupported("an SCTP service is refused on add and on edit", () => {
  assert.is(throwsIpvs(() => run("-A --sctp-service 198.18.0.1:5060 -s rr"), SCTP_MSG, 255).code, "EOPNOTSUPP");
  assert.is(throwsIpvs(() => run("-A --sctp-service [2001:2::1]:5060 -s wlc -p"), SCTP_MSG, 255).code, "EOPNOTSUPP");
  // Said before the lookup: no SCTP service can exist, so "No such service" would mislead.
  assert.is(throwsIpvs(() => run("-E --sctp-service 198.18.0.1:5060 -s rr"), SCTP_MSG, 255).code, "EOPNOTSUPP");
  // ... and before the scheduler is looked up.
  throwsIpvs(() => run("-A --sctp-service 198.18.0.1:5060 -s nosuch"), SCTP_MSG, 255);
});

unsupported("other commands on an SCTP service find no service, as IPVS would", () => {
  throwsIpvs(() => run("-a --sctp-service 198.18.0.1:5060 -r 198.19.0.1"), "Service not defined", 255);
  throwsIpvs(() => run("-D --sctp-service 198.18.0.1:5060"), "No such service", 255);
});

unsupported("--pe sip is refused on add and on edit; the edit leaves the service as it was", () => {
  assert.is(throwsIpvs(() => run("-A -t 198.18.0.1:80 -s rr -p --pe sip"), SIP_MSG, 255).code, "EOPNOTSUPP");
  assert.is(throwsIpvs(() => run("-A -u 198.18.0.1:5060 -s rr --pe sip"), SIP_MSG, 255).code, "EOPNOTSUPP");
  const before = run(BASE);
  const snapshot = structuredClone(before);
  throwsIpvs(() => run("-E -t 198.18.0.1:80 -s wlc -p --pe sip", before), SIP_MSG, 255);
  assert.equal(before, snapshot);
});

unsupported("--pe sip on a service that exists already: EEXIST comes first, as in the kernel", () => {
  throwsIpvs(() => run(BASE + "-A -t 198.18.0.1:80 -s rr -p --pe sip"), "Service already exists", 255);
  throwsIpvs(() => run("-E -t 198.18.0.9:80 -s rr -p --pe sip"), "No such service", 255);
});

unsupported.run();

// ---
const lines = suite("applyLines (-R input, one batch per line)");

const batches = (text: string) =>
  text.split("\n").map((l, i) => ({ line: i + 1, cmds: l.trim() === "" ? [] : cmds(l) }));

lines("applies in order, like applyAll over the concatenation", () => {
  const text = BASE + "-a -t 198.18.0.1:80 -r 198.19.0.2 -m -w 4\n\n-E -t 198.18.0.1:80 -s wrr";
  assert.equal(applyLines(emptyRuleSet(), batches(text), SCHEDS), run(text));
});

lines("the first failing line is named; the input RuleSet is untouched", () => {
  const before = run(BASE);
  const snapshot = structuredClone(before);
  const text = "-a -t 198.18.0.1:80 -r 198.19.0.2\n\n-a -t 198.18.0.1:80 -r 198.19.0.2 -w 3\n-A -t 198.18.0.1:80 -s rr";
  const e = throwsIpvs(() => applyLines(before, batches(text), SCHEDS), "Destination already exists", 255, 3);
  assert.is(e.code, "EEXIST");
  assert.equal(before, snapshot);
});

lines("a lazily parsed batch that throws stops the run at its own line", () => {
  function* gen() {
    yield { line: 1, cmds: cmds("-A -t 198.18.0.1:80 -s rr") };
    throw Object.assign(new IpvsError("USAGE", "illegal weight specified", 2), { line: 7 });
  }
  throwsIpvs(() => applyLines(emptyRuleSet(), gen(), SCHEDS), "illegal weight specified", 2, 7);
  // A kernel error on an earlier line wins over a later line that would not parse.
  function* gen2() {
    yield { line: 2, cmds: cmds("-D -t 198.18.0.1:80") };
    throw new Error("not reached");
  }
  throwsIpvs(() => applyLines(emptyRuleSet(), gen2(), SCHEDS), "No such service", 255, 2);
});

lines("no batches: an equal copy", () => {
  const before = run(BASE);
  const after = applyLines(before, [], SCHEDS);
  assert.equal(after, before);
  assert.is.not(after, before);
});

lines.run();

// ---
const pure = suite("purity");

pure("the input RuleSet is unchanged after a failing batch", () => {
  const before = run(BASE);
  const snapshot = structuredClone(before);
  throwsIpvs(() => applyAll(before, cmds("-a -t 198.18.0.1:80 -r 198.19.0.2\n-e -t 198.18.0.1:80 -r 198.19.0.1 -w 9\n-C\n--set 1 1 1\n-D -t 198.18.0.9:80"), SCHEDS), "No such service", 255);
  assert.equal(before, snapshot);
});

pure("the input RuleSet is unchanged after a successful batch, and shares nothing with the result", () => {
  const before = run(BASE);
  const snapshot = structuredClone(before);
  const after = run("-e -t 198.18.0.1:80 -r 198.19.0.1 -w 9\n-a -t 198.18.0.1:80 -r 198.19.0.2", before);
  assert.equal(before, snapshot);
  after.services[0].dests[0].weight = 77;
  after.services[0].sched = "x";
  assert.equal(before, snapshot);
});

pure("the Commands are not aliased into the result", () => {
  const c = cmds(BASE);
  const r = applyAll(emptyRuleSet(), c, SCHEDS);
  r.services[0].dests[0].weight = 42;
  r.services[0].key.port = 1;
  assert.equal(c, cmds(BASE));
});

pure("an empty batch returns an equal copy", () => {
  const before = run(BASE);
  const after = applyAll(before, [], SCHEDS);
  assert.equal(after, before);
  assert.is.not(after, before);
});

pure.run();

// ---
const sem = suite("semantics");

sem("new destinations go to the head (newest first); edit keeps the position", () => {
  const r = run(BASE + "-a -t 198.18.0.1:80 -r 198.19.0.2 -m\n-a -t 198.18.0.1:80 -r 198.19.0.3 -m\n-e -t 198.18.0.1:80 -r 198.19.0.2 -m -w 7");
  assert.equal(addrs(r), ["198.19.0.3:80", "198.19.0.2:80", "198.19.0.1:80"]);
  assert.is(r.services[0].dests[1].weight, 7);
});

sem("delete dest and service", () => {
  const r = run(BASE + "-a -t 198.18.0.1:80 -r 198.19.0.2 -m\n-d -t 198.18.0.1:80 -r 198.19.0.1\n-A -u 198.18.0.1:53 -s rr");
  assert.equal(addrs(r), ["198.19.0.2:80"]);
  const r2 = run("-D -t 198.18.0.1:80", r);
  assert.equal(r2.services.map((s) => s.key.kind), ["udp"]);
});

sem("services keep creation order", () => {
  const r = run("-A -t 198.18.0.9:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-A -f 3 -s rr\n-A -f 3 -6 -s rr");
  assert.equal(r.services.map((s) => s.key.addr || `fwm${s.key.fwmark}/${s.key.af}`), ["198.18.0.9", "198.18.0.1", "fwm3/4", "fwm3/6"]);
});

sem("the same address in another protocol or family is another service", () => {
  const r = run("-A -t 198.18.0.1:80 -s rr\n-A -u 198.18.0.1:80 -s rr\n-A -f 80 -s rr\n-A -f 80 -6 -s rr");
  assert.is(r.services.length, 4);
});

sem("edit-service replaces everything and keeps the destinations (autotest case)", () => {
  const svc = run("-A -t 198.18.0.1:80 -s rr -p 600 -M 255.255.0.0 -b flag-1\n-a -t 198.18.0.1:80 -r 198.19.0.1 -m\n-E -t 198.18.0.1:80 -p 1200").services[0];
  assert.is(svc.sched, "wlc");
  assert.is(svc.persistent, true);
  assert.is(svc.timeoutSec, 1200);
  assert.is(svc.netmask, "255.255.255.255");
  assert.is(svc.schedFlags, 0);
  assert.equal(svc.dests.map((d) => d.addr), ["198.19.0.1"]);
  const off = run("-A -u 198.18.0.1:53 -s rr -p -o\n-E -u 198.18.0.1:53 -s rr").services[0];
  assert.equal([off.persistent, off.timeoutSec, off.ops], [false, 0, false]);
});

sem("edit-dest replaces everything (autotest case: -m becomes -g with -w 10)", () => {
  const d = run("-A -u 198.18.0.1:69 -s rr\n-a -u 198.18.0.1:69 -r 198.19.0.4:69 -m -w 3 -x 50 -y 5\n-e -u 198.18.0.1:69 -r 198.19.0.4:69 -w 10").services[0].dests[0];
  assert.equal([d.fwd, d.weight, d.uThreshold, d.lThreshold], ["route", 10, 0, 0]);
  const t = run("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.5 -i --tun-type gue --tun-port 6080 --tun-csum\n-e -t 198.18.0.1:80 -r 198.19.0.5 -i").services[0].dests[0];
  assert.equal([t.fwd, t.tunType, t.tunPort, t.tunCsum], ["tunnel", "ipip", 0, "nocsum"]);
});

sem("clear empties the services and keeps the timeouts", () => {
  const r = run(BASE + "--set 100 0 0\n-C");
  assert.equal(r.services, []);
  assert.equal(r.timeouts, { tcp: 100, tcpfin: 120, udp: 300 });
});

sem("set-timeouts: 0 leaves a value unchanged", () => {
  assert.equal(run("--set 0 0 0").timeouts, { tcp: 900, tcpfin: 120, udp: 300 });
  assert.equal(run("--set 10 0 30\n--set 0 20 0").timeouts, { tcp: 10, tcpfin: 20, udp: 30 });
});

sem("a later command sees the earlier ones of the same batch", () => {
  const r = run("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1\n-D -t 198.18.0.1:80\n-A -t 198.18.0.1:80 -s wlc");
  assert.equal(r.services.map((s) => [s.sched, s.dests.length]), [["wlc", 0]]);
});

sem("the command that failed is named by the error, not hidden by later ones", () => {
  throwsIpvs(() => run("-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-E -t 198.18.0.2:80 -s rr"), "Service already exists", 255);
});

sem.run();

// ---
const fnat = suite("full NAT (tslb's --fullnat, --laddr, --proxy-protocol)");

const PROXY_UDP_MSG = "--proxy-protocol v1 has no UDP form: use v2 for UDP services";
const PROXY_FWD_MSG = "--proxy-protocol needs NAT (-m) or full-NAT (--fullnat) real servers: tslb never sees the replies of -g and -i servers";
const VIA_VIP_MSG = "--check-via-vip is for direct-routing and tunnel servers only (give the check again, without it)";
const EINVAL_MSG = "Invalid operation.  Possibly wrong module version, address not unicast, ...";

fnat("full-NAT destinations and local addresses are stored as given", () => {
  const r = run("-A -t 198.18.0.1:80 -s rr --laddr 198.18.0.201,198.18.0.200\n-a -t 198.18.0.1:80 -r 198.19.0.1:8080 --fullnat -w 2");
  const svc = r.services[0];
  assert.equal([svc.laddrs, svc.proxyProtocol], [["198.18.0.201", "198.18.0.200"], 0]);
  assert.equal([svc.dests[0].fwd, svc.dests[0].port, svc.dests[0].weight], ["fullnat", 8080, 2]);
  // Without the options a service has the defaults: no local addresses, no PROXY header.
  assert.equal([run(BASE).services[0].laddrs, run(BASE).services[0].proxyProtocol], [[], 0]);
});

fnat("--proxy-protocol: NAT or full-NAT servers only, v2 only for UDP; a refused edit changes nothing", () => {
  const ok = run("-A -t 198.18.0.1:80 -s rr --proxy-protocol v2\n-a -t 198.18.0.1:80 -r 198.19.0.1:8080 --fullnat\n-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -m");
  assert.is(ok.services[0].proxyProtocol, 2);
  assert.is(run("-A -f 5 -s rr --proxy-protocol v1").services[0].proxyProtocol, 1);
  assert.is(throwsIpvs(() => run("-A -u 198.18.0.1:53 -s rr --proxy-protocol v1"), PROXY_UDP_MSG, 255).code, "EINVAL");
  assert.is(run("-A -u 198.18.0.1:53 -s rr --proxy-protocol v2").services[0].proxyProtocol, 2);
  // A DR or tunnel server cannot join such a service, and such a service cannot turn it on.
  assert.is(throwsIpvs(() => run("-a -t 198.18.0.1:80 -r 198.19.0.3:80 -g", ok), PROXY_FWD_MSG, 255).code, "EINVAL");
  throwsIpvs(() => run("-e -t 198.18.0.1:80 -r 198.19.0.2:8080 -i", ok), PROXY_FWD_MSG, 255);
  const before = run(BASE + "-E -t 198.18.0.1:80 -s rr --laddr 198.18.0.200\n-a -t 198.18.0.1:80 -r 198.19.0.5 -g");
  const snapshot = structuredClone(before);
  throwsIpvs(() => run("-E -t 198.18.0.1:80 -s rr --proxy-protocol v2", before), PROXY_FWD_MSG, 255);
  assert.equal(before, snapshot);
  // The kernel's own answers come first: EEXIST, ESRCH, an unknown scheduler.
  throwsIpvs(() => run(BASE + "-A -t 198.18.0.1:80 -s rr --proxy-protocol v2"), "Service already exists", 255);
  throwsIpvs(() => run("-E -t 198.18.0.9:80 -s rr --proxy-protocol v2"), "No such service", 255);
  throwsIpvs(() => run("-A -t 198.18.0.1:80 -s nosuch --proxy-protocol v2"), "Scheduler or persistence engine not found", 255);
});

fnat("-E replaces every setting: without --laddr the local addresses go back to the default", () => {
  const r = run("-A -t 198.18.0.1:80 -s rr --laddr 198.18.0.200,198.18.0.201\n-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat");
  const edited = run("-E -t 198.18.0.1:80 -s wlc", r);
  assert.equal(edited.services[0].laddrs, []);
  assert.equal(edited.services[0].dests.map((d) => d.fwd), ["fullnat"], "the destinations stay");
  assert.equal(run("-E -t 198.18.0.1:80 -s rr --laddr 198.18.0.202", r).services[0].laddrs, ["198.18.0.202"]);
  assert.equal(r.services[0].laddrs, ["198.18.0.200", "198.18.0.201"], "input untouched");
});

fnat("local addresses must be unicast, as real servers must (EINVAL)", () => {
  for (const bad of ["0.0.0.1", "224.0.0.1", "255.255.255.255"]) {
    assert.is(throwsIpvs(() => run(`-A -t 198.18.0.1:80 -s rr --laddr 198.18.0.200,${bad}`), EINVAL_MSG, 255).code, "EINVAL", bad);
  }
  for (const bad of ["::", "ff02::1", "fe80::1"]) {
    throwsIpvs(() => run(`-A -t [2001:2::1]:80 -s rr --laddr ${bad}`), EINVAL_MSG, 255);
  }
  throwsIpvs(() => run(`-A -f 5 -6 -s rr --laddr ff02::2`), EINVAL_MSG, 255);
});

fnat("a full-NAT destination may be of the other family (NAT46), a NAT one may not (EINVAL)", () => {
  const v6: Dest = { af: 6, addr: "2001:2::20", port: 80, fwd: "fullnat", weight: 1, uThreshold: 0, lThreshold: 0, tunType: "ipip", tunPort: 0, tunCsum: "nocsum" };
  const r = run(BASE);
  assert.is(applyAll(r, [{ kind: "add-dest", key: VIP, dest: v6 }], SCHEDS).services[0].dests[0].af, 6);
  throwsIpvs(() => applyAll(r, [{ kind: "add-dest", key: VIP, dest: { ...v6, fwd: "masq" } }], SCHEDS), EINVAL_MSG, 255);
});

fnat("--check-via-vip: refused when an edit makes the server full NAT", () => {
  const r = run("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1 -g --check tcp --check-via-vip");
  assert.is(throwsIpvs(() => run("-e -t 198.18.0.1:80 -r 198.19.0.1 --fullnat", r), VIA_VIP_MSG, 255).code, "EINVAL");
  const ok = run("-e -t 198.18.0.1:80 -r 198.19.0.1 --fullnat --check tcp", r);
  assert.equal([ok.services[0].dests[0].fwd, ok.services[0].dests[0].check?.viaVip], ["fullnat", false]);
});

fnat.run();

// ---
const cli = suite("with parseArgs");

cli("an argv Invocation applies directly", () => {
  const inv = parseArgs(["-A", "-t", "[2001:2::1]:443", "-s", "sh", "-b", "sh-port"], NO_NAMES);
  assert.is(inv.kind, "apply");
  if (inv.kind !== "apply") return;
  const r = applyAll(emptyRuleSet(), inv.cmds, SCHEDS);
  assert.equal(r.services[0].key, { kind: "tcp", af: 6, addr: "2001:2::1", port: 443, fwmark: 0 });
  assert.is(r.services[0].schedFlags, 2);
});

cli.run();
