import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseArgs } from "../../src/cli/getopt.ts";
import { makeNames } from "../../src/cli/names.ts";
import type { Command, Invocation, ListOptions } from "../../src/control/commands.ts";
import type { Af, Dest, ServiceKey, ServiceSpec, SvcKind } from "../../src/control/model.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";

const ENV = makeNames(
  "198.18.0.10 web1 web1.lab.example.test\n198.18.0.20 rs1\n255.255.255.0 lanmask\n2001:2::20 rs6\n",
  "http 80/tcp www\nhttp 80/udp\ndomain 53/udp\ndomain 53/tcp\nsip 5060/sctp\nalt 8080/tcp\n",
);

const argvOf = (a: string | string[]) => (typeof a === "string" ? (a === "" ? [] : a.split(" ")) : a);
const parse = (a: string | string[], prog?: string) => parseArgs(argvOf(a), ENV, prog);

const key = (addr: string, port: number, kind: SvcKind = "tcp"): ServiceKey =>
  ({ kind, af: addr.includes(":") ? 6 : 4, addr, port, fwmark: 0 });
const fwm = (fwmark: number, af: Af = 4): ServiceKey => ({ kind: "fwm", af, addr: "", port: 0, fwmark });
const spec = (k: ServiceKey, o: Partial<ServiceSpec> = {}): ServiceSpec => ({
  key: k, sched: "wlc", schedFlags: 0, persistent: false, timeoutSec: 0,
  netmask: k.af === 6 ? "128" : "255.255.255.255", pe: "", ops: false, laddrs: [], proxyProtocol: 0, ...o,
});
const dest = (addr: string, port: number, o: Partial<Dest> = {}): Dest => ({
  af: addr.includes(":") ? 6 : 4, addr, port, fwd: "route", weight: 1, uThreshold: 0, lThreshold: 0,
  tunType: "ipip", tunPort: 0, tunCsum: "nocsum", ...o,
});
const apply = (...cmds: Command[]): Invocation => ({ kind: "apply", cmds });
const LIST0: ListOptions = {
  numeric: false, connections: false, timeout: false, daemon: false, stats: false, rate: false,
  thresholds: false, persistentConn: false, tunInfo: false, exact: false, nosort: false,
};
const list = (o: Partial<ListOptions> = {}): Invocation => ({ kind: "list", opts: { ...LIST0, ...o } });

const VIP = key("198.18.0.1", 80);
const addSvc = (k: ServiceKey, o: Partial<ServiceSpec> = {}) => apply({ kind: "add-service", svc: spec(k, o) });
const addDest = (k: ServiceKey, d: Dest) => apply({ kind: "add-dest", key: k, dest: d });

function table(name: string, cases: [string | string[], Invocation][]) {
  const s = suite(name);
  for (const [argv, want] of cases) s(JSON.stringify(argv), () => assert.equal(parse(argv), want));
  s.run();
}

function errors(name: string, cases: [string | string[], string, number][]) {
  const s = suite(name);
  for (const [argv, msg, exit] of cases) s(`${JSON.stringify(argv)} -> ${msg}`, () => { throwsIpvs(() => parse(argv), msg, exit); });
  s.run();
}

const TRY = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";

// ---
table("commands and defaults", [
  ["", list()],
  ["-h", { kind: "help" }],
  ["--help", { kind: "help" }],
  ["-h -A garbage", { kind: "help" }],
  ["-v", { kind: "version" }],
  ["--version", { kind: "version" }],
  ["-A -t 198.18.0.1:80", addSvc(VIP)],
  ["--add-service --tcp-service 198.18.0.1:80 --scheduler rr", addSvc(VIP, { sched: "rr" })],
  ["-A -u 198.18.0.1:53 -s sh -b sh-port,sh-fallback -o", addSvc(key("198.18.0.1", 53, "udp"), { sched: "sh", schedFlags: 3, ops: true })],
  ["-A --sctp-service 198.18.0.1:5060", addSvc(key("198.18.0.1", 5060, "sctp"))],
  ["-A -f 5 -s rr", addSvc(fwm(5), { sched: "rr" })],
  ["-A -f 4294967295", addSvc(fwm(4294967295))],
  ["-A -f 5 -6", addSvc(fwm(5, 6))],
  ["-A -f 5 -6 -M 64 -p", addSvc(fwm(5, 6), { netmask: "64", persistent: true, timeoutSec: 360 })],
  ["-A -f 5 -o", addSvc(fwm(5), { ops: true })],
  ["-E -t 198.18.0.1:80", apply({ kind: "edit-service", svc: spec(VIP) })], // -E without -s: wlc again
  ["-E -t 198.18.0.1:80 -p 1200", apply({ kind: "edit-service", svc: spec(VIP, { persistent: true, timeoutSec: 1200 }) })],
  ["-D -t 198.18.0.1:80", apply({ kind: "delete-service", key: VIP })],
  ["-C", apply({ kind: "clear" })],
  ["--clear", apply({ kind: "clear" })],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m -w 3", addDest(VIP, dest("198.19.0.1", 8080, { fwd: "masq", weight: 3 }))],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -m", addDest(VIP, dest("198.19.0.1", 80, { fwd: "masq" }))],
  ["-e -t 198.18.0.1:80 -r 198.19.0.1:80", apply({ kind: "edit-dest", key: VIP, dest: dest("198.19.0.1", 80) })],
  ["-e -t 198.18.0.1:80 -r 198.19.0.1:80 -w 10", apply({ kind: "edit-dest", key: VIP, dest: dest("198.19.0.1", 80, { weight: 10 }) })],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -x 100 -y 50 -w 0", addDest(VIP, dest("198.19.0.1", 80, { weight: 0, uThreshold: 100, lThreshold: 50 }))],
  ["-d -t 198.18.0.1:80 -r 198.19.0.1", apply({ kind: "delete-dest", key: VIP, addr: "198.19.0.1", port: 80 })],
  ["-d -t 198.18.0.1:80 -r 198.19.0.1:8080", apply({ kind: "delete-dest", key: VIP, addr: "198.19.0.1", port: 8080 })],
  ["--set 900 120 300", apply({ kind: "set-timeouts", timeouts: { tcp: 900, tcpfin: 120, udp: 300 } })],
  ["--set 0 0 2678400", apply({ kind: "set-timeouts", timeouts: { tcp: 0, tcpfin: 0, udp: 2678400 } })],
  ["10 --set 20 30", apply({ kind: "set-timeouts", timeouts: { tcp: 10, tcpfin: 20, udp: 30 } })], // popt collects leftovers anywhere
  ["--set -- 1 2 3", apply({ kind: "set-timeouts", timeouts: { tcp: 1, tcpfin: 2, udp: 3 } })],
  ["-R", { kind: "restore", dryRun: false }],
  ["--restore", { kind: "restore", dryRun: false }],
  ["-S", { kind: "save", numeric: false }],
  ["-S -n", { kind: "save", numeric: true }],
  ["-Sn", { kind: "save", numeric: true }],
  ["-Z", { kind: "zero" }],
  ["-Z -t 198.18.0.1:80", { kind: "zero", key: VIP }],
  ["-Z -f 7 -6", { kind: "zero", key: fwm(7, 6) }],
  ["--start-daemon master", { kind: "start-daemon", daemon: { state: "master", mcastIfn: "eth0", syncId: 0, mcastGroup: "", mcastPort: 0, mcastTtl: 0, syncMaxlen: 0 } }],
  ["--start-daemon backup --mcast-interface eth1 --syncid 9 --mcast-group 239.1.2.3 --mcast-port 8849 --mcast-ttl 2 --sync-maxlen 1400",
    { kind: "start-daemon", daemon: { state: "backup", mcastIfn: "eth1", syncId: 9, mcastGroup: "239.1.2.3", mcastPort: 8849, mcastTtl: 2, syncMaxlen: 1400 } }],
  ["--start-daemon master --mcast-group ff02::0081", { kind: "start-daemon", daemon: { state: "master", mcastIfn: "eth0", syncId: 0, mcastGroup: "ff02::81", mcastPort: 0, mcastTtl: 0, syncMaxlen: 0 } }],
  ["--stop-daemon backup --syncid 3", { kind: "stop-daemon", daemon: { state: "backup", mcastIfn: "", syncId: 3, mcastGroup: "", mcastPort: 0, mcastTtl: 0, syncMaxlen: 0 } }],
]);

// ---
table("list options", [
  ["-L", list()],
  ["-l", list()],
  ["--list", list()],
  ["-Ln", list({ numeric: true })],
  ["-L -n", list({ numeric: true })],
  ["-lnc", list({ numeric: true, connections: true })],
  ["-L -c --persistent-conn", list({ connections: true, persistentConn: true })],
  ["-L --timeout", list({ timeout: true })],
  ["-L --daemon", list({ daemon: true })],
  ["-L -n --stats --rate --exact", list({ numeric: true, stats: true, rate: true, exact: true })],
  ["-L -X --thresholds --persistent-conn --tun-info", list({ exact: true, thresholds: true, persistentConn: true, tunInfo: true })],
  ["-L --nosort --sort --sort", list({ nosort: true })],
  ["-L --syncid 1", list()], // ipvsadm's matrix allows it, and it changes nothing
  ["-Ln -t 198.18.0.1:80", list({ numeric: true, key: VIP })],
  ["-Lt 198.18.0.1", list({ key: key("198.18.0.1", 0) })],  // no zero-port rule for listing
  ["-L -f 5", list({ key: fwm(5) })],
  ["-L -f 5 -6", list({ key: fwm(5, 6) })],
]);

// ---
table("popt forms: bundles, optional and attached arguments", [
  ["-At 198.18.0.1:80", addSvc(VIP)],
  ["-At198.18.0.1:80", addSvc(VIP)],
  ["-At=198.18.0.1:80", addSvc(VIP)],
  ["-A --tcp-service=198.18.0.1:80 --scheduler=rr", addSvc(VIP, { sched: "rr" })],
  ["-at 198.18.0.1:80 -r 198.19.0.1 -mw 3", addDest(VIP, dest("198.19.0.1", 80, { fwd: "masq", weight: 3 }))],
  ["-A -t 198.18.0.1:80 -p", addSvc(VIP, { persistent: true, timeoutSec: 360 })],
  ["-A -t 198.18.0.1:80 -p 600", addSvc(VIP, { persistent: true, timeoutSec: 600 })],
  ["-A -t 198.18.0.1:80 -p600", addSvc(VIP, { persistent: true, timeoutSec: 600 })],
  ["-A -t 198.18.0.1:80 -p=600", addSvc(VIP, { persistent: true, timeoutSec: 600 })],
  ["-A -t 198.18.0.1:80 --persistent=600", addSvc(VIP, { persistent: true, timeoutSec: 600 })],
  ["-A -t 198.18.0.1:80 --persistent 600", addSvc(VIP, { persistent: true, timeoutSec: 600 })],
  ["-A -t 198.18.0.1:80 -p -s rr", addSvc(VIP, { persistent: true, timeoutSec: 360, sched: "rr" })], // "-s" not taken as the value
  ["-A -p -t 198.18.0.1:80", addSvc(VIP, { persistent: true, timeoutSec: 360 })],
  ["-A -t 198.18.0.1:80 -p 2678400", addSvc(VIP, { persistent: true, timeoutSec: 2678400 })],
  ["-A -t 198.18.0.1:80 -p +60", addSvc(VIP, { persistent: true, timeoutSec: 60 })], // strtol accepts a sign
  ["-A -t 198.18.0.1:80 -s abcdefghijklmnopq", addSvc(VIP, { sched: "abcdefghijklmno" })], // 15 characters kept
  ["-A -t 198.18.0.1:80 -s ''".split(" ").map((w) => (w === "''" ? "" : w)), addSvc(VIP)], // empty: the default
  ["-A -t 198.18.0.1:80 -b flag-1,flag-3", addSvc(VIP, { schedFlags: 5 })],
  ["-A -t 198.18.0.1:80 -s mh -b mh-port,,mh-fallback", addSvc(VIP, { sched: "mh", schedFlags: 3 })],
  ["-A -t 198.18.0.1:80 -b sh-port -s sh", addSvc(VIP, { sched: "sh", schedFlags: 2 })], // -b is read after all options
]);

// ---
table("address forms", [
  ["-A -t [2001:2::1]:80", addSvc(key("2001:2::1", 80))],
  ["-A -t [2001:0002:0:0::0001]:http", addSvc(key("2001:2::1", 80))],
  ["-A -t 2001:2::1 -p", addSvc(key("2001:2::1", 0), { persistent: true, timeoutSec: 360 })],
  ["-A -t 2001:2::1:80 -p", addSvc(key("2001:2::1:80", 0), { persistent: true, timeoutSec: 360 })], // a valid IPv6 literal: port 0
  ["-A -t 198.18.1:80", addSvc(key("198.18.0.1", 80))],
  ["-A -t 0xc6120001:80", addSvc(key("198.18.0.1", 80))],
  ["-A -t web1:http", addSvc(key("198.18.0.10", 80))],
  ["-A -t web1.lab.example.test:www", addSvc(key("198.18.0.10", 80))],
  ["-A -u web1:domain", addSvc(key("198.18.0.10", 53, "udp"))],
  ["-A --sctp-service web1:sip", addSvc(key("198.18.0.10", 5060, "sctp"))],
  ["-A -t 198.18.0.1:080", addSvc(VIP)],
  ["-A -t 198.18.0.1 -p", addSvc(key("198.18.0.1", 0), { persistent: true, timeoutSec: 360 })],
  ["-A -t 198.18.0.1:0 -p 10", addSvc(key("198.18.0.1", 0), { persistent: true, timeoutSec: 10 })],
  ["-A -t [198.18.0.1]:80 -p", addSvc(key("198.18.0.1", 0), { persistent: true, timeoutSec: 360 })], // ipvsadm drops a bracketed IPv4's port
  ["-a -t 198.18.0.1:80 -r rs1:alt -m", addDest(VIP, dest("198.18.0.20", 8080, { fwd: "masq" }))],
  ["-a -t [2001:2::1]:80 -r [2001:2::20]:8080 -m", addDest(key("2001:2::1", 80), dest("2001:2::20", 8080, { fwd: "masq" }))],
  ["-a -t [2001:2::1]:80 -r 2001:2::20 -m", addDest(key("2001:2::1", 80), dest("2001:2::20", 80, { fwd: "masq" }))],
  // -g and -i: the real-server port is forced to the service port.
  ["-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -g", addDest(VIP, dest("198.19.0.1", 80))],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1:8080", addDest(VIP, dest("198.19.0.1", 80))],
  ["-e -t 198.18.0.1:80 -r 198.19.0.1:8080 -i", apply({ kind: "edit-dest", key: VIP, dest: dest("198.19.0.1", 80, { fwd: "tunnel" }) })],
  // fwmark services: no forcing; no port = 0.
  ["-a -f 5 -r 198.19.0.1", addDest(fwm(5), dest("198.19.0.1", 0))],
  ["-a -f 5 -r 198.19.0.1:8080 -g", addDest(fwm(5), dest("198.19.0.1", 8080))],
  ["-a -f 5 -r 198.19.0.1:http -m", addDest(fwm(5), dest("198.19.0.1", 80, { fwd: "masq" }))],
  ["-a -f 5 -6 -r [2001:2::20]:0", addDest(fwm(5, 6), dest("2001:2::20", 0))],
  // -r before -t copies the service port known so far (none yet).
  ["-a -r 198.19.0.1 -t 198.18.0.1:80 -m", addDest(VIP, dest("198.19.0.1", 0, { fwd: "masq" }))],
  // Tunnelling may cross families.
  ["-a -t 198.18.0.1:80 -r [2001:2::20]:80 -i", addDest(VIP, dest("2001:2::20", 80, { fwd: "tunnel" }))],
  ["-a -t 198.18.0.1:80 -r 198.19.0.5 -i --tun-type gue --tun-port 6080 --tun-csum",
    addDest(VIP, dest("198.19.0.5", 80, { fwd: "tunnel", tunType: "gue", tunPort: 6080, tunCsum: "csum" }))],
  ["-a -t 198.18.0.1:80 -r 198.19.0.5 -i --tun-type gue --tun-port 6080",
    addDest(VIP, dest("198.19.0.5", 80, { fwd: "tunnel", tunType: "gue", tunPort: 6080 }))],
  ["-a -t 198.18.0.1:80 -r 198.19.0.5 -i --tun-type gue --tun-port 6080 --tun-remcsum",
    addDest(VIP, dest("198.19.0.5", 80, { fwd: "tunnel", tunType: "gue", tunPort: 6080, tunCsum: "remcsum" }))],
  ["-a -t 198.18.0.1:80 -r 198.19.0.5 -i --tun-type gre --tun-nocsum",
    addDest(VIP, dest("198.19.0.5", 80, { fwd: "tunnel", tunType: "gre" }))],
  ["-a -t 198.18.0.1:80 -r 198.19.0.5 -i --tun-type ipip", addDest(VIP, dest("198.19.0.5", 80, { fwd: "tunnel" }))],
  // Netmasks: the family known when -M is read decides how it is parsed.
  ["-A -t 198.18.0.1:80 -p -M 255.255.255.0", addSvc(VIP, { persistent: true, timeoutSec: 360, netmask: "255.255.255.0" })],
  ["-A -t 198.18.0.1:80 -M lanmask", addSvc(VIP, { netmask: "255.255.255.0" })],
  ["-A -t 198.18.0.1:80 -M 24", addSvc(VIP, { netmask: "0.0.0.24" })], // inet_aton, not a prefix length
  ["-A -t [2001:2::1]:80 -M 64", addSvc(key("2001:2::1", 80), { netmask: "64" })],
  ["-A -t [2001:2::1]:80 -M 64abc", addSvc(key("2001:2::1", 80), { netmask: "64" })], // atoi
  ["-A -M 255.255.255.0 -t [2001:2::1]:80", addSvc(key("2001:2::1", 80))], // the IPv6 service resets it to 128
  ["-A -f 5 -M 255.255.255.0 -6", addSvc(fwm(5, 6))],
]);

// ---
errors("first option, popt and repeats", [
  ["-t 198.18.0.1:80 -A", TRY, 255],
  ["foo", TRY, 255],
  ["-- -A", TRY, 255],
  ["--foo", TRY, 255],
  ["-q", TRY, 255],
  ["--start-daemon", TRY, 255],
  ["-n -L", TRY, 255],
  ["-A --foo", "--foo: unknown option", 255],
  ["-A --foo=bar", "--foo=bar: unknown option", 255],
  ["-Lq", "-Lq: unknown option", 255],
  ["-A -t", "-t: missing argument", 255],
  ["-A -t 198.18.0.1:80 --scheduler", "--scheduler: missing argument", 255],
  ["-L --numeric=1", "--numeric=1: option does not take an argument", 255],
  ["-A -t 198.18.0.1:80 -D", "invalid option `-D'", 2],
  ["-AD", "invalid option `-AD'", 2],
  ["-L -h", "invalid option `-h'", 2],
  ["-L -v", "invalid option `-v'", 2],
  ["-L --set", "invalid option `--set'", 2],
  ["-L --start-daemon master", "invalid option `master'", 2], // popt names the last word it read
  ["-A -t 198.18.0.1:80 -t 198.18.0.2:80", "multiple 'service-address' options specified", 2],
  ["-A -t 198.18.0.1:80 -f 5", "multiple 'service-address' options specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -g -m", "multiple 'forwarding-method' options specified", 2],
  ["-Lnn", "multiple 'numeric' options specified", 2],
  ["-A -t 198.18.0.1:80 -p -p", "multiple 'persistent' options specified", 2],
  ["-L --stats --stats", "multiple 'stats' options specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gue --tun-port 1 --tun-port 2", "multiple 'tun-port' options specified", 2],
  ["-L foo", "unexpected argument foo", 2],
  ["-A -t 198.18.0.1:80 - ", "unexpected argument -", 2],
  ["--set 1 2 3 4", "unexpected argument 4", 2],
  ["--set 1 2", "--set option requires 3 timeout values", 2],
  ["--set", "--set option requires 3 timeout values", 2],
  ["--set 1 x 3", "invalid timeout value `x' specified", 2],
  ["--set 1 2 2678401", "invalid timeout value `2678401' specified", 2],
  ["--set -1 2 3", "-1: unknown option", 255],
  ["--set -- -1 2 3", "invalid timeout value `-1' specified", 2],
]);

// ---
errors("values", [
  ["-A -f 0", "invalid fwmark value `0' specified", 2],
  ["-A -f 4294967296", "invalid fwmark value `4294967296' specified", 2],
  ["-A -f 5x", "invalid fwmark value `5x' specified", 2],
  ["-A -f -- -5", "invalid fwmark value `--' specified", 2],
  ["-A -6 -f 5", "-6 used before -f\n", 2],
  ["-A -t 198.18.0.1:80 -6", "-6 used before -f\n", 2],
  ["-A -t 198.18.0.1:80 -p 0", "invalid timeout value `0' specified", 2],
  ["-A -t 198.18.0.1:80 -p 2678401", "invalid timeout value `2678401' specified", 2],
  ["-A -t 198.18.0.1:80 -p x", "invalid timeout value `x' specified", 2],
  ["-A -t 198.18.0.1:80 -p600s", "invalid timeout value `600s' specified", 2],
  ["-A -t 198.18.0.1:80 --persistent=", "invalid timeout value `' specified", 2],
  ["-A -t 198.18.0.1:80 -p=", "invalid timeout value `' specified", 2],
  ["-A -t= -s rr", "illegal virtual server address[:port] specified", 2],
  ["-A -t 198.18.0.1:80 -M nosuchmask", "illegal virtual server persistent mask specified", 2],
  ["-A -t 198.18.0.1:80 -M 255.255.255.256", "illegal virtual server persistent mask specified", 2],
  ["-A -t [2001:2::1]:80 -M 129", "illegal ipv6 netmask specified", 2],
  ["-A -t [2001:2::1]:80 -M 0", "illegal ipv6 netmask specified", 2],
  ["-A -t [2001:2::1]:80 -M 255.255.255.0", "illegal ipv6 netmask specified", 2],
  ["-A -t 198.18.0.1:80 -b foo", "invalid scheduler flag `foo'", 2],
  ["-A -t 198.18.0.1:80 -b flag-1,foo", "invalid scheduler flag `foo'", 2],
  ["-A -t 198.18.0.1:80 -s rr -b sh-port", "incompatible scheduler flag `sh-port'", 2],
  ["-A -t 198.18.0.1:80 -b mh-fallback", "incompatible scheduler flag `mh-fallback'", 2], // default wlc
  ["-D -t 198.18.0.1:80 -b foo", "invalid scheduler flag `foo'", 2], // read before the matrix check
  ["-A -t 198.18.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services", 2],
  ["-A --sctp-service 198.18.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services", 2],
  ["-A -t 80", "illegal virtual server address[:port] specified", 2],
  ["-A -t ''".split(" ").map((w) => (w === "''" ? "" : w)), "illegal virtual server address[:port] specified", 2],
  ["-A -t [2001:2::1]", "illegal virtual server address[:port] specified", 2],
  ["-A -t [2001:2::1]80", "illegal virtual server address[:port] specified", 2],
  ["-A -t [2001:2::1:80", "illegal virtual server address[:port] specified", 2],
  ["-A -t [2001:2::1]:", "illegal virtual server address[:port] specified", 2],
  ["-A -t 198.18.0.1:65536", "illegal virtual server address[:port] specified", 2],
  ["-A -t 198.18.0.1:-1", "illegal virtual server address[:port] specified", 2],
  ["-A -t 198.18.0.1:nosuchport", "illegal virtual server address[:port] specified", 2],
  ["-A -u 198.18.0.1:alt", "illegal virtual server address[:port] specified", 2], // alt is tcp only
  ["-A -t nosuchhost:80", "illegal virtual server address[:port] specified", 2],
  ["-A -t :80", "illegal virtual server address[:port] specified", 2],
  ["-A -t rs6:80", "illegal virtual server address[:port] specified", 2], // IPv4-only lookups
  ["-a -t 198.18.0.1:80 -r 80", "illegal real server address[:port] specified", 2],
  ["-a -t 198.18.0.1:80 -r nosuchhost", "illegal real server address[:port] specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1:99999", "illegal real server address[:port] specified", 2],
  ["-a -r 198.19.0.1:http -t 198.18.0.1:80", "illegal real server address[:port] specified", 2], // no protocol yet
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -w 65536", "illegal weight specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -w -1", "illegal weight specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -w 1x", "illegal weight specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -x 2147483648", "illegal u_threshold specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -y x", "illegal l_threshold specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type vxlan", "illegal tunnel type specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gue --tun-port 0", "illegal tunnel port specified", 2],
  ["--start-daemon primary", "illegal start-daemon parameter specified", 2],
  ["--stop-daemon primary", "illegal start_daemon specified", 2],
  ["--start-daemon master --syncid 256", "illegal syncid specified", 2],
  ["--start-daemon master --mcast-port 0", "illegal mcast-port specified", 2],
  ["--start-daemon master --mcast-ttl 256", "illegal mcast-ttl specified", 2],
  ["--start-daemon master --sync-maxlen 65508", "illegal sync-maxlen specified", 2],
  ["--start-daemon master --mcast-group 198.18.0.1", "invalid IPv4 mcast-group `198.18.0.1'", 2],
  ["--start-daemon master --mcast-group 239.1", "invalid IPv4 mcast-group `239.1'", 2],
  ["--start-daemon master --mcast-group 2001:2::1", "invalid IPv6 mcast-group `2001:2::1'", 2],
]);

// ---
errors("command x option matrix", [
  ["-A", "You need to supply the 'service-address' option for the 'add-service' command", 2],
  ["-E -s rr", "You need to supply the 'service-address' option for the 'edit-service' command", 2],
  ["-D", "You need to supply the 'service-address' option for the 'delete-service' command", 2],
  ["-a -r 198.19.0.1", "You need to supply the 'service-address' option for the 'add-server' command", 2],
  ["-a -t 198.18.0.1:80", "You need to supply the 'real-server' option for the 'add-server' command", 2],
  ["-e -t 198.18.0.1:80", "You need to supply the 'real-server' option for the 'edit-server' command", 2],
  ["-d -t 198.18.0.1:80", "You need to supply the 'real-server' option for the 'delete-server' command", 2],
  ["-A -t 198.18.0.1:80 -n", "Illegal 'numeric' option with the 'add-service' command", 2],
  ["-A -t 198.18.0.1:80 -r 198.19.0.1", "Illegal 'real-server' option with the 'add-service' command", 2],
  ["-A -t 198.18.0.1:80 -m", "Illegal 'forwarding-method' option with the 'add-service' command", 2],
  ["-E -t 198.18.0.1:80 -w 1", "Illegal 'weight' option with the 'edit-service' command", 2],
  ["-D -t 198.18.0.1:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command", 2],
  ["-D -t 198.18.0.1:80 -o", "Illegal 'ops' option with the 'delete-service' command", 2],
  ["-C -t 198.18.0.1:80", "Illegal 'service-address' option with the 'flush' command", 2],
  ["-C -n", "Illegal 'numeric' option with the 'flush' command", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -s rr", "Illegal 'scheduler' option with the 'add-server' command", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -p", "Illegal 'persistent' option with the 'add-server' command", 2],
  ["-e -t 198.18.0.1:80 -r 198.19.0.1 --tun-info", "Illegal 'tun-info' option with the 'edit-server' command", 2],
  ["-d -t 198.18.0.1:80 -r 198.19.0.1 -m", "Illegal 'forwarding-method' option with the 'delete-server' command", 2],
  ["-d -t 198.18.0.1:80 -r 198.19.0.1 -w 1", "Illegal 'weight' option with the 'delete-server' command", 2],
  ["-L -s rr", "Illegal 'scheduler' option with the 'list' command", 2],
  ["-L -o", "Illegal 'ops' option with the 'list' command", 2],
  ["-L -c -t 198.18.0.1:80", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2],
  ["-L --timeout -c", "The option 'timeout' conflicts with the 'connection' option in the 'list' command", 2],
  ["-L --daemon --timeout", "The option 'daemon' conflicts with the 'timeout' option in the 'list' command", 2],
  ["-L --daemon -t 198.18.0.1:80", "The option 'daemon' conflicts with the 'service-address' option in the 'list' command", 2],
  ["--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command", 2],
  ["-R -n", "Illegal 'numeric' option with the 'restore' command", 2],
  ["-S -c", "Illegal 'connection' option with the 'save' command", 2],
  ["-S -t 198.18.0.1:80", "Illegal 'service-address' option with the 'save' command", 2],
  ["-Z -n", "Illegal 'numeric' option with the 'zero' command", 2],
  ["--start-daemon master -n", "Illegal 'numeric' option with the 'start-daemon' command", 2],
  ["--start-daemon master --tun-info", "Illegal 'tun-info' option with the 'start-daemon' command", 2],
  ["--stop-daemon master --mcast-interface eth0", "Illegal 'mcast-interface' option with the 'stop-daemon' command", 2],
  ["-L -c --stats", "options conflicts in the list command", 2],
  ["-L --timeout --rate", "options conflicts in the list command", 2],
  ["-L --daemon --thresholds", "options conflicts in the list command", 2],
  ["-L --timeout --persistent-conn", "options conflicts in the list command", 2],
  ["-L --daemon --persistent-conn", "options conflicts in the list command", 2],
]);

// ---
errors("service and server checks", [
  ["-A -t 198.18.0.1", "Zero port specified for non-persistent service", 2],
  ["-A -t 198.18.0.1:0", "Zero port specified for non-persistent service", 2],
  ["-E -t 2001:2::1", "Zero port specified for non-persistent service", 2],
  ["-A -t [198.18.0.1]:80", "Zero port specified for non-persistent service", 2],
  ["-a -t 198.18.0.1:80 -r [2001:2::20]:80", "Different address family is allowed only for tunneling servers", 2],
  ["-a -t 198.18.0.1:80 -r [2001:2::20]:80 -m", "Different address family is allowed only for tunneling servers", 2],
  ["-a -f 5 -6 -r 198.19.0.1", "Different address family is allowed only for tunneling servers", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --tun-type ipip", "Tunnel options conflict with forward method", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -m --tun-nocsum", "Tunnel options conflict with forward method", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-port 6080", "Illegal 'tun-port' option with the 'ipip' tunnel type", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-csum", "Illegal 'tun-csum' option with the 'ipip' tunnel type", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gue", "You need to supply the 'tun-port' option for the 'gue' tunnel type", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum",
    "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type", 2],
  ["-e -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gue --tun-port 1 --tun-remcsum --tun-csum",
    "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gre --tun-port 1", "Illegal 'tun-port' option with the 'gre' tunnel type", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gre --tun-remcsum", "Illegal 'tun-remcsum' option with the 'gre' tunnel type", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gre --tun-csum --tun-nocsum",
    "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type", 2],
]);

// ---
table("-R --dry-run (tslb's own option)", [
  ["-R --dry-run", { kind: "restore", dryRun: true }],
  ["--restore --dry-run", { kind: "restore", dryRun: true }],
  ["-R --sort --dry-run", { kind: "restore", dryRun: true }], // --sort sets no option column
]);

errors("--dry-run with any other command, as ipvsadm words an illegal option", [
  ["-A -t 198.18.0.1:80 --dry-run", "Illegal 'dry-run' option with the 'add-service' command", 2],
  ["-E -t 198.18.0.1:80 --dry-run", "Illegal 'dry-run' option with the 'edit-service' command", 2],
  ["-D -t 198.18.0.1:80 --dry-run", "Illegal 'dry-run' option with the 'delete-service' command", 2],
  ["-C --dry-run", "Illegal 'dry-run' option with the 'flush' command", 2],
  ["-L --dry-run", "Illegal 'dry-run' option with the 'list' command", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --dry-run", "Illegal 'dry-run' option with the 'add-server' command", 2],
  ["-e -t 198.18.0.1:80 -r 198.19.0.1 --dry-run", "Illegal 'dry-run' option with the 'edit-server' command", 2],
  ["-d -t 198.18.0.1:80 -r 198.19.0.1 --dry-run", "Illegal 'dry-run' option with the 'delete-server' command", 2],
  ["--set 1 2 3 --dry-run", "Illegal 'dry-run' option with the 'set' command", 2],
  ["--start-daemon master --dry-run", "Illegal 'dry-run' option with the 'start-daemon' command", 2],
  ["--stop-daemon master --dry-run", "Illegal 'dry-run' option with the 'stop-daemon' command", 2],
  ["-S --dry-run", "Illegal 'dry-run' option with the 'save' command", 2],
  ["-Z --dry-run", "Illegal 'dry-run' option with the 'zero' command", 2],
  // ipvsadm's own columns come first, so their complaints win.
  ["-A -t 198.18.0.1:80 --dry-run -n", "Illegal 'numeric' option with the 'add-service' command", 2],
  ["-R -n --dry-run", "Illegal 'numeric' option with the 'restore' command", 2],
  ["-R --dry-run --dry-run", "multiple 'dry-run' options specified", 2],
  ["-R --dry-run=yes", "--dry-run=yes: option does not take an argument", 255],
  ["-R --dry", "--dry: unknown option", 255], // popt takes no abbreviations
  ["-R --dry-run now", "unexpected argument now", 2],
  ["-R -- --dry-run", "unexpected argument --dry-run", 2],
  ["--dry-run -R", TRY, 255], // the first option must be a command
]);

table("full NAT (tslb's own): --fullnat, --laddr, --proxy-protocol", [
  ["-a -t 198.18.0.1:80 -r 198.19.0.1:8080 --fullnat", addDest(VIP, dest("198.19.0.1", 8080, { fwd: "fullnat" }))],
  // Ports map as with -m: only -g and -i force the service's port.
  ["-e -t 198.18.0.1:80 -r 198.19.0.1 --fullnat -w 3", apply({ kind: "edit-dest", key: VIP, dest: dest("198.19.0.1", 80, { fwd: "fullnat", weight: 3 }) })],
  ["-a -f 5 -6 -r [2001:2::20]:0 --fullnat", addDest(fwm(5, 6), dest("2001:2::20", 0, { fwd: "fullnat" }))],
  // Full NAT translates between the families (NAT46/NAT64), like a tunnel may cross them.
  ["-a -t 198.18.0.1:80 -r [2001:2::20]:8080 --fullnat", addDest(VIP, dest("2001:2::20", 8080, { fwd: "fullnat", af: 6 }))],
  ["-A -t 198.18.0.1:80 --laddr 198.18.0.200", addSvc(VIP, { laddrs: ["198.18.0.200"] })],
  ["-A -t 198.18.0.1:80 --laddr=198.18.0.201,198.18.0.200 -s rr", addSvc(VIP, { sched: "rr", laddrs: ["198.18.0.201", "198.18.0.200"] })],
  // inet_aton forms, as -t/-r take them, come out canonical.
  ["-A -t 198.18.0.1:80 --laddr 198.18.200", addSvc(VIP, { laddrs: ["198.18.0.200"] })],
  // IPv6 bare or in brackets, canonical text; the option may come before the service.
  ["-A --laddr [2001:2::C8],2001:2:0:0::c9 -t [2001:2::1]:80", addSvc(key("2001:2::1", 80), { laddrs: ["2001:2::c8", "2001:2::c9"] })],
  // A fwmark service takes the family its -6 says.
  ["-A -f 5 --laddr 198.18.0.200", addSvc(fwm(5), { laddrs: ["198.18.0.200"] })],
  ["-A -f 5 -6 --laddr 2001:2::c8", addSvc(fwm(5, 6), { laddrs: ["2001:2::c8"] })],
  ["-A -t 198.18.0.1:80 --proxy-protocol v1", addSvc(VIP, { proxyProtocol: 1 })],
  ["-E -t 198.18.0.1:80 --proxy-protocol=v2 --laddr 198.18.0.200", apply({ kind: "edit-service", svc: spec(VIP, { proxyProtocol: 2, laddrs: ["198.18.0.200"] }) })],
  // -E replaces every setting: without the options, they are reset.
  ["-E -t 198.18.0.1:80 -s rr", apply({ kind: "edit-service", svc: spec(VIP, { sched: "rr" }) })],
]);

errors("full NAT: bad values, conflicts and illegal commands", [
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 -m --fullnat", "multiple 'forwarding-method' options specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat -g", "multiple 'forwarding-method' options specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat --fullnat", "multiple 'forwarding-method' options specified", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat --tun-type gue", "Tunnel options conflict with forward method", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat --check tcp --check-via-vip", "Check option 'check-via-vip' conflicts with forward method", 2],
  ["-A -t 198.18.0.1:80 --fullnat", "Illegal 'forwarding-method' option with the 'add-service' command", 2],
  ["-d -t 198.18.0.1:80 -r 198.19.0.1 --fullnat", "Illegal 'forwarding-method' option with the 'delete-server' command", 2],
  ["-L --fullnat", "Illegal 'forwarding-method' option with the 'list' command", 2],
  ["-A -t 198.18.0.1:80 --fullnat=1", "--fullnat=1: option does not take an argument", 255],
  ["-A -t 198.18.0.1:80 --laddr 198.18.0.300", "illegal local address `198.18.0.300' specified", 2],
  ["-A -t 198.18.0.1:80 --laddr lb-host", "illegal local address `lb-host' specified", 2],
  ["-A -t 198.18.0.1:80 --laddr 198.18.0.200,", "illegal local address `' specified", 2],
  ["-A -t 198.18.0.1:80 --laddr 198.18.0.200,198.18.0.200", "illegal local address `198.18.0.200' specified", 2],
  ["-A -t 198.18.0.1:80 --laddr 2001:2::c8", "illegal local address `2001:2::c8' specified", 2],
  ["-A -t 198.18.0.1:80 --laddr [198.18.0.200]", "illegal local address `[198.18.0.200]' specified", 2],
  ["-A -t [2001:2::1]:80 --laddr 198.18.0.200", "illegal local address `198.18.0.200' specified", 2],
  ["-A -f 5 --laddr 2001:2::c8", "illegal local address `2001:2::c8' specified", 2],
  ["-A -f 5 -6 --laddr 198.18.0.200", "illegal local address `198.18.0.200' specified", 2],
  ["-A -t 198.18.0.1:80 --laddr", "--laddr: missing argument", 255],
  ["-A -t 198.18.0.1:80 --laddr 198.18.0.200 --laddr 198.18.0.201", "multiple 'laddr' options specified", 2],
  ["-A -t 198.18.0.1:80 --proxy-protocol v3", "illegal proxy-protocol version `v3' specified (v1 or v2)", 2],
  ["-A -t 198.18.0.1:80 --proxy-protocol 2", "illegal proxy-protocol version `2' specified (v1 or v2)", 2],
  ["-A -t 198.18.0.1:80 --proxy-protocol V1", "illegal proxy-protocol version `V1' specified (v1 or v2)", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat --laddr 198.18.0.200", "Illegal 'laddr' option with the 'add-server' command", 2],
  ["-e -t 198.18.0.1:80 -r 198.19.0.1 --proxy-protocol v1", "Illegal 'proxy-protocol' option with the 'edit-server' command", 2],
  ["-D -t 198.18.0.1:80 --laddr 198.18.0.200", "Illegal 'laddr' option with the 'delete-service' command", 2],
  // With -L, --laddr is a flag (the local-address listing): a value is a stray argument.
  ["-L --laddr 198.18.0.200", "unexpected argument 198.18.0.200", 2],
  ["-S --proxy-protocol v2", "Illegal 'proxy-protocol' option with the 'save' command", 2],
  ["-R --laddr 198.18.0.200", "Illegal 'laddr' option with the 'restore' command", 2],
  ["-C --proxy-protocol v2", "Illegal 'proxy-protocol' option with the 'flush' command", 2],
  // ipvsadm's own checks come first.
  ["-A -t 198.18.0.1 --laddr 198.18.0.300", "Zero port specified for non-persistent service", 2],
]);

table("full NAT listings (tslb's own): -L -c --fullnat-info, -L --laddr", [
  ["-L -n -c --fullnat-info", list({ numeric: true, connections: true, fullnatInfo: true })],
  ["-l --fullnat-info --connection", list({ connections: true, fullnatInfo: true })],
  // -c --json always carries the local address; --fullnat-info adds nothing to it.
  ["-L -c --json --fullnat-info", list({ connections: true, json: true, fullnatInfo: true })],
  ["-L -n --laddr", list({ numeric: true, laddr: true })],
  ["-L --laddr -n", list({ numeric: true, laddr: true })],
  ["-L --laddr", list({ laddr: true })],
  ["-L -n --laddr --nosort", list({ numeric: true, laddr: true, nosort: true })],
  ["-L -n -t 198.18.0.1:80 --laddr", list({ numeric: true, laddr: true, key: VIP })],
  // Elsewhere --laddr still takes its addresses.
  ["-A -t 198.18.0.1:80 --laddr 198.18.0.200", addSvc(VIP, { laddrs: ["198.18.0.200"] })],
]);

errors("full NAT listings: illegal uses", [
  ["-L -n --fullnat-info", "You need to supply the 'connection' option with the 'fullnat-info' option", 2],
  ["-L --stats --fullnat-info", "You need to supply the 'connection' option with the 'fullnat-info' option", 2],
  ["-L -c --persistent-conn --fullnat-info", "options conflicts in the list command", 2],
  ["-L -c --fullnat-info --fullnat-info", "multiple 'fullnat-info' options specified", 2],
  ["-L -c --fullnat-info=1", "--fullnat-info=1: option does not take an argument", 255],
  ["-S --fullnat-info", "Illegal 'fullnat-info' option with the 'save' command", 2],
  ["-a -t 198.18.0.1:80 -r 198.19.0.1 --fullnat --fullnat-info", "Illegal 'fullnat-info' option with the 'add-server' command", 2],
  ["-L -n -c --laddr", "options conflicts in the list command", 2],
  ["-L -c --fullnat-info --laddr", "options conflicts in the list command", 2],
  ["-L --laddr --stats", "options conflicts in the list command", 2],
  ["-L --laddr --timeout", "options conflicts in the list command", 2],
  ["-L --laddr --json", "options conflicts in the list command", 2],
  ["-L --laddr --health", "options conflicts in the list command", 2],
  ["-L --laddr=198.18.0.200", "--laddr=198.18.0.200: option does not take an argument", 255],
  ["-L --laddr --laddr", "multiple 'laddr' options specified", 2],
]);

// ---
const misc = suite("program name and error details");

misc("the Try message names the given program", () => {
  throwsIpvs(() => parse("-t 198.18.0.1:80", "tslb"), "Try `tslb -h' or 'tslb --help' for more information.", 255);
  throwsIpvs(() => parse("-t 198.18.0.1:80", "/usr/sbin/ipvsadm"), "Try `/usr/sbin/ipvsadm -h' or '/usr/sbin/ipvsadm --help' for more information.", 255);
});

misc("errors are reported in command-line order", () => {
  // The bad weight comes before the bad address on the line, and wins.
  throwsIpvs(() => parse("-a -t 198.18.0.1:80 -w x -r 80"), "illegal weight specified", 2);
  throwsIpvs(() => parse("-a -t 198.18.0.1:80 -r 80 -w x"), "illegal real server address[:port] specified", 2);
  // A value error before a popt error: options are handed over one at a time.
  throwsIpvs(() => parse("-A -t 198.18.0.1:80 -p x --foo"), "invalid timeout value `x' specified", 2);
  // Matrix columns, not command-line order, pick the first complaint.
  throwsIpvs(() => parse("-A -t 198.18.0.1:80 -w 1 -n"), "Illegal 'numeric' option with the 'add-service' command", 2);
});

misc("the default environment resolves without network access", () => {
  const inv = parseArgs(["-A", "-t", "198.18.0.1:80"]);
  assert.is(inv.kind, "apply");
});

misc("Commands are plain JSON values", () => {
  const inv = parse("-a -t [2001:2::1]:80 -r [2001:2::20]:8080 -m -w 2 -x 10 -y 5");
  assert.equal(JSON.parse(JSON.stringify(inv)), inv);
});

misc.run();
