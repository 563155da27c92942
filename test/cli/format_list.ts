// Goldens in test/golden/ipvsadm_*.txt were written from ipvsadm's printf formats (run
// through the shell's printf), not from this formatter: they are an independent oracle.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatConns, formatList, formatNumber, formatTimeouts, helpText, versionText } from "../../src/cli/format_list.ts";
import { makeNames, NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import type { ListOptions } from "../../src/control/commands.ts";
import { emptyRuleSet, type RuleSet, type ServiceKey } from "../../src/control/model.ts";
import type { ConnView } from "../../src/control/protocol.ts";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";
import { type Extra, listReply, stats } from "../helpers/list_view.ts";

const golden = (name: string) => Bun.file(new URL(`../golden/${name}`, import.meta.url)).text();
const rules = (text: string): RuleSet =>
  applyAll(emptyRuleSet(), parseRestore(text, "ipvsadm", NO_NAMES), ["rr", "wlc", "sh", "mh"]);
const L: ListOptions = {
  numeric: true, connections: false, timeout: false, daemon: false, stats: false, rate: false,
  thresholds: false, persistentConn: false, tunInfo: false, exact: false, nosort: false,
};
const opts = (o: Partial<ListOptions> = {}): ListOptions => ({ ...L, ...o });
const list = (r: RuleSet, o: Partial<ListOptions> = {}, extra: Record<string, Extra> = {}) =>
  formatList(listReply(r, extra), opts(o), NO_NAMES);

const EX1 = rules("-A -t 198.18.81.100:80 -s rr\n-a -t 198.18.81.100:80 -r 198.19.0.2:8080 -m\n-a -t 198.18.81.100:80 -r 198.19.0.1:8080 -m -w 3\n");
const EX2 = rules("-A -f 5 -s wlc -M 255.255.255.0 -p\n-a -f 5 -r 198.19.1.1 -g -w 2 -x 100 -y 50\n-a -f 5 -r 198.19.1.2\n");
const EX3 = rules("-A -t 198.18.81.100:80 -s rr\n-a -t 198.18.81.100:80 -r 198.19.0.5:80 -i --tun-type gue --tun-port 6080 --tun-csum\n" +
  "-A -u [2001:2::10]:53 -s sh -b sh-port,sh-fallback -o\n-a -u [2001:2::10]:53 -r [2001:2::a]:53 -m\n");
const EX1_KEY: ServiceKey = { kind: "tcp", af: 4, addr: "198.18.81.100", port: 80, fwmark: 0 };

// ---
const ex = suite("reference §2.9 worked examples");

ex("example 1: -L -n", async () => assert.fixture(list(EX1), await golden("ipvsadm_ex1_list.txt")));

ex("example 1: -L -n --stats (OutBytes 123456789 shows as K)", async () => {
  const extra = {
    "tcp 198.18.81.100 80": { stats: stats(4, 40, 32, 2560, 123456789) },
    "198.19.0.1 8080": { stats: stats(3, 30, 24, 1920, 123453000) },
    "198.19.0.2 8080": { stats: stats(1, 10, 8, 640, 3000) },
  };
  assert.fixture(list(EX1, { stats: true }, extra), await golden("ipvsadm_ex1_stats.txt"));
  // --stats wins over every other format flag.
  assert.fixture(list(EX1, { stats: true, rate: true, thresholds: true, tunInfo: true }, extra), await golden("ipvsadm_ex1_stats.txt"));
});

ex("example 1: --rate (destination CPS/PPS never scaled, BPS scaled)", async () => {
  const extra = {
    "tcp 198.18.81.100 80": { rate: stats(12, 340, 290, 123456789, 2000000000) },
    "198.19.0.1 8080": { rate: stats(9, 300, 250, 99999999, 1999000000) },
    "198.19.0.2 8080": { rate: stats(3, 40, 40, 123456789012, 100000000000000) },
  };
  assert.fixture(list(EX1, { rate: true, thresholds: true }, extra), await golden("ipvsadm_ex1_rate.txt"));
});

ex("example 1: --stats --exact widths", async () => {
  const extra = {
    "tcp 198.18.81.100 80": { stats: stats(4, 123456789, 32, 12345678, 123456789012345) },
    "198.19.0.1 8080": { stats: stats(3, 123456789, 24, 99999999, 123456789012345) },
    "198.19.0.2 8080": { stats: stats(1, 0, 8, 100000000, 0) },
  };
  assert.fixture(list(EX1, { stats: true, exact: true }, extra), await golden("ipvsadm_ex1_stats_exact.txt"));
});

ex("example 1: -L -n -t <svc> has no version header", async () => {
  assert.fixture(list(EX1, { key: EX1_KEY }), await golden("ipvsadm_ex1_single.txt"));
});

const EX2_STATE = { "198.19.1.1 0": { activeConns: 1, persistConns: 1 } };

ex("example 2: -L -n (persistent fwmark with mask)", async () => {
  assert.fixture(list(EX2, {}, EX2_STATE), await golden("ipvsadm_ex2_list.txt"));
});

ex("example 2: --thresholds", async () => {
  assert.fixture(list(EX2, { thresholds: true, persistentConn: true }, EX2_STATE), await golden("ipvsadm_ex2_thresholds.txt"));
});

ex("example 2: --persistent-conn", async () => {
  assert.fixture(list(EX2, { persistentConn: true, tunInfo: true }, EX2_STATE), await golden("ipvsadm_ex2_persistent_conn.txt"));
});

ex("example 3: --tun-info", async () => assert.fixture(list(EX3, { tunInfo: true }), await golden("ipvsadm_ex3_tun_info.txt")));

ex.run();

// ---
const conns = suite("-c");

const CONNS: ConnView[] = [
  { proto: "IP", expireSec: 359, state: "NONE", caddr: "198.18.9.0", cport: 0, vaddr: "0.0.0.5", vport: 0, daddr: "198.19.1.1", dport: 0, af: 4 },
  { proto: "TCP", expireSec: 899, state: "ESTABLISHED", caddr: "198.18.9.9", cport: 40000, vaddr: "198.18.81.101", vport: 443, daddr: "198.19.1.1", dport: 443, af: 4 },
  { proto: "UDP", expireSec: 86400, state: "UDP", caddr: "2001:2::c", cport: 5353, vaddr: "2001:2::10", vport: 53, daddr: "2001:2::a", dport: 53, af: 6 },
];

conns("example 2: -L -n -c (template, minutes not capped, IPv6)", async () => {
  assert.fixture(formatConns(CONNS, opts(), NO_NAMES), await golden("ipvsadm_ex2_conns.txt"));
});

conns("--persistent-conn: PE columns only on entries with PE data", async () => {
  const pe: ConnView[] = [
    { proto: "UDP", expireSec: 7, state: "UDP", caddr: "198.18.9.9", cport: 5060, vaddr: "198.18.81.101", vport: 5060, daddr: "198.19.1.1", dport: 5060, af: 4, peName: "sip", peData: "call-1@198.18.9.9" },
    { proto: "TCP", expireSec: 59, state: "SYN_RECV", caddr: "198.18.9.9", cport: 40001, vaddr: "198.18.81.101", vport: 443, daddr: "198.19.1.2", dport: 443, af: 4 },
  ];
  assert.fixture(formatConns(pe, opts({ persistentConn: true }), NO_NAMES), await golden("ipvsadm_conns_pe.txt"));
  // Without --persistent-conn the PE data is not shown.
  assert.not.match(formatConns(pe, opts(), NO_NAMES), "sip");
});

conns("names without -n: ports by the entry's protocol, none for IP", () => {
  const names = makeNames("198.18.9.9 client\n198.19.1.1 rs1\n", "https 443/tcp\n");
  const out = formatConns([CONNS[0], CONNS[1]], opts({ numeric: false }), names);
  assert.fixture(out, [
    "IPVS connection entries",
    "pro expire state       source             virtual            destination",
    "IP  05:59  NONE        198.18.9.0:0       0.0.0.5:0          rs1:0",
    "TCP 14:59  ESTABLISHED client:40000       198.18.81.101:https rs1:https",
    "",
  ].join("\n"));
});

conns("an empty table prints the titles", () => {
  assert.is(formatConns([], opts(), NO_NAMES), "IPVS connection entries\npro expire state       source             virtual            destination\n");
});

conns.run();

// ---
const sort = suite("sorting");

const SORT_INPUT = [
  "-A -t 198.18.0.10:80",
  "-A -f 5",
  "-A -t [2001:2::1]:80 -s rr",
  "-A -u 198.18.0.9:53",
  "-A -f 3000000000 -s rr",
  "-a -f 3000000000 -r 198.19.2.1",
  "-A -t 198.18.0.9:80",
  "-a -t 198.18.0.9:80 -r 198.19.0.10",
  "-a -t 198.18.0.9:80 -r 198.19.1.0",
  "-a -t 198.18.0.9:80 -r 198.19.0.9",
  "-A -f 5 -6",
  "-a -f 5 -6 -r [2001:2::5]:0",
  "-A -t [2001:2::9000:0:0:1]:80 -s rr",
  "-a -t [2001:2::9000:0:0:1]:80 -r [2001:2::2]:80 -m",
  "-a -t [2001:2::9000:0:0:1]:80 -r [2001:2::1:0:0:2]:80 -m",
  "-a -t [2001:2::9000:0:0:1]:80 -r [2001:2::9000:0:0:2]:80 -m",
  "-A -f 6",
].join("\n");

sort("wrap-around: fwmark 3000000000 sorts first, IPv6 word 0x90000000 before 0", async () => {
  assert.fixture(list(rules(SORT_INPUT)), await golden("ipvsadm_sort.txt"));
});

sort("--nosort keeps kernel order: creation order, newest destination first", async () => {
  const r = rules("-A -t 198.18.81.100:80 -s rr\n-a -t 198.18.81.100:80 -r 198.19.0.2:8080 -m\n-a -t 198.18.81.100:80 -r 198.19.0.1:8080 -m -w 3\n" +
    "-A -t 198.18.0.1:80\n-a -t 198.18.0.1:80 -r 198.19.0.2\n-a -t 198.18.0.1:80 -r 198.19.0.1\n-a -t 198.18.0.1:80 -r 198.19.0.3\n");
  assert.fixture(list(r, { nosort: true }), await golden("ipvsadm_nosort.txt"));
  assert.fixture(list(r), await golden("ipvsadm_nosort_sorted.txt"));
});

sort.run();

// ---
const misc = suite("other -L cases");

misc("an empty table: header and title only", async () => assert.fixture(list(emptyRuleSet()), await golden("ipvsadm_empty.txt")));

misc("names without -n; IPv4 names cut to 33/28 columns, IPv6 names not", async () => {
  const names = makeNames(
    "198.18.0.1 www-frontend-vip.lab.example.test\n198.19.0.1 backend-number-one.lab.example.test\n" +
    "2001:2::53 v6-dns.lab.example.test\n2001:2::5 v6-backend-resolver.lab.example.test\n",
    "http 80/tcp\ndomain 53/udp\n",
  );
  const r = rules("-A -t 198.18.0.1:80\n-a -t 198.18.0.1:80 -r 198.19.0.2\n-a -t 198.18.0.1:80 -r 198.19.0.1\n" +
    "-A -u [2001:2::53]:53 -s rr\n-a -u [2001:2::53]:53 -r [2001:2::5]:53 -m\n");
  assert.fixture(formatList(listReply(r), opts({ numeric: false }), names), await golden("ipvsadm_names_list.txt"));
});

misc("a missing single service is ESRCH 'No such service', exit 1", () => {
  const e = throwsIpvs(() => list(EX1, { key: { ...EX1_KEY, port: 81 } }), "No such service", 1);
  assert.is(e.code, "ESRCH");
  throwsIpvs(() => list(EX1, { key: { ...EX1_KEY, kind: "udp" } }), "No such service", 1);
});

misc("--timeout and --daemon", () => {
  assert.is(list(rules("--set 10 20 30"), { timeout: true }), "Timeout (tcp tcpfin udp): 10 20 30\n");
  assert.is(formatTimeouts({ tcp: 900, tcpfin: 120, udp: 300 }), "Timeout (tcp tcpfin udp): 900 120 300\n");
  assert.is(list(EX1, { daemon: true }), "");
});

misc("-c is not a table listing", () => {
  assert.throws(() => list(EX1, { connections: true }));
});

misc("service-line details: sh flag-3 only, mh names, IPv6 mask, pe, ops", () => {
  const r = rules("-A -u [2001:2::1]:53 -s sh -b flag-3 -p 60 -M 64 -o\n-A -u 198.18.0.1:53 -s mh -b flag-1,flag-2,flag-3\n-A -f 9 -s rr -p 10 -M 255.255.255.255\n");
  r.services[2].pe = "sip";
  assert.fixture(list(r), [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    "UDP  198.18.0.1:53 mh (mh-fallback,mh-port)",
    "UDP  [2001:2::1]:53 sh () persistent 60 mask 64 ops",
    "FWM  9 rr persistent 10 pe sip",
    "",
  ].join("\n"));
});

misc("tunnel info for every type", () => {
  const r = rules("-A -t 198.18.0.1:80 -s rr\n" +
    "-a -t 198.18.0.1:80 -r 198.19.0.1 -i --tun-type gre --tun-csum\n" +
    "-a -t 198.18.0.1:80 -r 198.19.0.2 -i --tun-type gue --tun-port 65535 --tun-remcsum\n" +
    "-a -t 198.18.0.1:80 -r 198.19.0.3 -i --tun-type gre\n" +
    "-a -t 198.18.0.1:80 -r [2001:2::4]:80 -i\n");
  const lines = list(r, { tunInfo: true }).split("\n").slice(4, 8);
  // printf '  -> %-28s %-7s %-13s %-6d %-10u %-10u\n' ...
  assert.equal(lines, [
    "  -> 198.19.0.1:80                Tunnel  gre:+c        1      0          0         ",
    "  -> 198.19.0.2:80                Tunnel  gue:65535:r+c 1      0          0         ",
    "  -> 198.19.0.3:80                Tunnel  gre:-c        1      0          0         ",
    "  -> [2001:2::4]:80               Tunnel  ipip          1      0          0         ",
  ]);
});

misc.run();

// ---
const num = suite("number scaling (print_largenum)");

const SCALE: [number, string][] = [
  [0, "        0"],
  [99999999, " 99999999"],
  [100000000, "  100000K"],
  [999999999, "  999999K"],
  [1000000000, "    1000M"],
  [99999999999, "   99999M"],
  [100000000000, "     100G"],
  [99999999999999, "   99999G"],
  [100000000000000, "     100T"],
  [123456789012345678, "  123456T"],
];
for (const [n, want] of SCALE) num(`${n}`, () => assert.is(formatNumber(n, false), want));

const EXACT: [number, string][] = [
  [0, "        0"],
  [12345678, " 12345678"],
  [123456789, " 123456789"],
  [100000000000000, " 100000000000000"],
];
for (const [n, want] of EXACT) num(`--exact ${n}`, () => assert.is(formatNumber(n, true), want));

num.run();

// ---
const text = suite("-h and -v");

text("-v names tslb and the ipvsadm/IPVS versions", () => {
  assert.is(versionText(), "tslb v0.1.0 (ipvsadm v1.31 compatible, IPVS v1.2.1)\n");
});

text("-h has ipvsadm's sections and uses the program name", () => {
  const h = helpText("tslb");
  assert.ok(h.startsWith(versionText()));
  for (const section of ["Usage:\n", "\nCommands", "\nvirtual-service:\n", "\nOptions:\n", "\nDaemon Options:\n"]) {
    assert.ok(h.includes(section), section);
  }
  assert.ok(h.includes("  tslb -A|E virtual-service"));
  assert.ok(h.includes("rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh"));
  assert.ok(helpText("tslb", ["rr", "wlc"]).includes("one of rr|wlc,"));
  for (const opt of ["--tcp-service", "--persistent", "--tun-type", "--exact", "--nosort", "--sched-flags", "--mcast-ttl"]) {
    assert.ok(h.includes(opt), opt);
  }
});

text.run();

// ---
const fnat = suite("tslb's full NAT (--fullnat, --laddr, --proxy-protocol)");

/** Service settings are tslb's own and -L (ipvsadm's columns) does not show them; the
 *  destinations show FullNat in the Forward column. proxyProtocol is set by hand: the
 *  apply step refuses it until the data plane supports it. */
const FNAT = (() => {
  const r = rules(
    "-A -t 198.18.81.100:80 -s rr -p 60 --laddr 198.18.0.201,198.18.0.200\n" +
    "-a -t 198.18.81.100:80 -r 198.19.0.2:8080 --fullnat -w 2\n-a -t 198.18.81.100:80 -r 198.19.0.1:8080 --fullnat\n" +
    "-a -t 198.18.81.100:80 -r 198.19.0.3\n" +
    "-A -f 9 -6 --laddr [2001:2::C9],2001:2:0::ca\n-a -f 9 -6 -r 2001:2::b --fullnat -w 3\n" +
    "-A -u [2001:2::10]:53 -s sh -o --laddr 2001:2::c8\n-a -u [2001:2::10]:53 -r [2001:2::a]:5353 --fullnat\n",
  );
  r.services[0].proxyProtocol = 2;
  return r;
})();

fnat("-L -n: FullNat in the Forward column, service lines as ipvsadm's", async () => {
  assert.fixture(list(FNAT), await golden("tslb_fullnat_list.txt"));
});

fnat("--tun-info: a full-NAT destination has no tunnel (n/a)", () => {
  const out = list(FNAT, { tunInfo: true });
  assert.ok(out.includes("  -> 198.19.0.1:8080              FullNat n/a           1      0          0         \n"), out);
});

fnat("-h lists the full-NAT options", () => {
  const h = helpText("tslb");
  for (const opt of ["--fullnat", "--laddr", "--proxy-protocol v1|v2", "--fullnat-info"]) assert.ok(h.includes(opt), opt);
});

/** A full-NAT template (no local address), two full-NAT connections (IPv4, IPv6), one plain NAT. */
const FNAT_CONNS: ConnView[] = [
  { proto: "TCP", expireSec: 59, state: "NONE", caddr: "198.18.9.9", cport: 0, vaddr: "198.18.81.100", vport: 80, daddr: "198.19.0.1", dport: 8080, af: 4 },
  { proto: "TCP", expireSec: 899, state: "ESTABLISHED", caddr: "198.18.9.9", cport: 40000, vaddr: "198.18.81.100", vport: 80, daddr: "198.19.0.1", dport: 8080, af: 4, laddr: "198.18.0.201", lport: 61000 },
  { proto: "UDP", expireSec: 300, state: "UDP", caddr: "2001:2::c", cport: 5353, vaddr: "2001:2::10", vport: 53, daddr: "2001:2::a", dport: 5353, af: 6, laddr: "2001:2::c8", lport: 65534 },
  { proto: "TCP", expireSec: 120, state: "FIN_WAIT", caddr: "198.18.9.8", cport: 40001, vaddr: "198.18.81.101", vport: 443, daddr: "198.19.1.1", dport: 443, af: 4 },
];

fnat("-c --fullnat-info: -c's columns, the destination padded, then local (\"-\" when not full NAT)", async () => {
  assert.fixture(formatConns(FNAT_CONNS, opts({ fullnatInfo: true }), NO_NAMES), await golden("tslb_fullnat_conns.txt"));
});

fnat("-c --fullnat-info without -n: the local column resolves names as the others do", () => {
  const names = makeNames("198.18.0.201 lb-a\n198.19.0.1 rs1\n", "http 80/tcp\nalt 8080/tcp\nhigh 61000/tcp\n");
  const out = formatConns([FNAT_CONNS[1], FNAT_CONNS[3]], opts({ numeric: false, fullnatInfo: true }), names);
  assert.fixture(out, [
    "IPVS connection entries",
    "pro expire state       source             virtual            destination        local",
    "TCP 14:59  ESTABLISHED 198.18.9.9:40000   198.18.81.100:http rs1:alt            lb-a:high",
    "TCP 02:00  FIN_WAIT    198.18.9.8:40001   198.18.81.101:443  198.19.1.1:443     -",
    "",
  ].join("\n"));
});

fnat("plain -c stays ipvsadm's: no local column even for full-NAT entries", () => {
  const out = formatConns(FNAT_CONNS, opts(), NO_NAMES);
  assert.ok(out.startsWith("IPVS connection entries\npro expire state       source             virtual            destination\n"), out);
  assert.not.match(out, "local");
  assert.not.match(out, "61000");
  assert.ok(out.includes("TCP 14:59  ESTABLISHED 198.18.9.9:40000   198.18.81.100:80   198.19.0.1:8080\n"), out);
});

fnat("-c --fullnat-info on an empty table prints the titles", () => {
  assert.is(formatConns([], opts({ fullnatInfo: true }), NO_NAMES),
    "IPVS connection entries\npro expire state       source             virtual            destination        local\n");
});

fnat.run();
