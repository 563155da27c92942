// -L --laddr (tslb only): full NAT's pool, then per full-NAT destination its local
// addresses and the ports each holds; -L's order and addr:port column.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatLaddrs, laddrPoolLine } from "../../src/cli/format_laddr.ts";
import { makeNames, NO_NAMES } from "../../src/cli/names.ts";
import type { ListOptions } from "../../src/control/commands.ts";
import type { ServiceKey } from "../../src/control/model.ts";
import type { LaddrReply } from "../../src/control/protocol.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";

type O = Pick<ListOptions, "numeric" | "nosort" | "key">;
const N: O = { numeric: true, nosort: false };
const golden = (name: string) => Bun.file(new URL(`../golden/${name}`, import.meta.url)).text();
const tcp = (addr: string, port: number): ServiceKey => ({ kind: "tcp", af: addr.includes(":") ? 6 : 4, addr, port, fwmark: 0 });
const l = (addr: string, inUse: number, configured = true) => ({ addr, inUse, configured });

/** Kernel order (newest first): the formatter sorts as -L does. */
const REPLY: LaddrReply = {
  ports: [61000, 65534],
  services: [
    { key: tcp("2001:2::100", 80), dests: [{ af: 6, addr: "2001:2:0:1::11", port: 8080, laddrs: [l("2001:2:0:1::1", 2)] }] },
    // A service without full-NAT destinations is left out (unless asked for with -t).
    { key: tcp("198.18.0.100", 443), dests: [] },
    { key: { kind: "fwm", af: 4, addr: "", port: 0, fwmark: 5 }, dests: [{ af: 4, addr: "198.18.1.13", port: 0, laddrs: [] }] },
    {
      key: tcp("198.18.0.100", 80),
      dests: [
        { af: 4, addr: "198.18.1.12", port: 8080, laddrs: [l("198.18.0.200", 0), l("198.18.0.201", 4535), l("198.18.1.1", 1, false)] },
        { af: 4, addr: "198.18.1.11", port: 8080, laddrs: [l("198.18.0.200", 3), l("198.18.0.201", 0)] },
      ],
    },
  ],
};

const t = suite("-L --laddr");

t("the pool line: its range and how many ports each (address, server) pair gets", () => {
  assert.is(laddrPoolLine([61000, 65534]), "FullNat local addresses (ports 61000-65534, 4535 per address and real server)\n");
  assert.is(laddrPoolLine([61000, 61001]), "FullNat local addresses (ports 61000-61001, 2 per address and real server)\n");
});

t("-L -n --laddr: sorted as -L, one line per (destination, local address), IPv6 widens the column", async () => {
  assert.fixture(formatLaddrs(REPLY, N, NO_NAMES), await golden("tslb_fullnat_laddrs.txt"));
});

t("IPv4 only: the column fits any IPv4 address", () => {
  const out = formatLaddrs({ ports: [61000, 65534], services: [REPLY.services[3]] }, N, NO_NAMES);
  assert.fixture(out, [
    "FullNat local addresses (ports 61000-65534, 4535 per address and real server)",
    "Prot LocalAddress:Port",
    "  -> RemoteAddress:Port           LocalAddress    InUse",
    "TCP  198.18.0.100:80",
    "  -> 198.18.1.11:8080             198.18.0.200    3",
    "  -> 198.18.1.11:8080             198.18.0.201    0",
    "  -> 198.18.1.12:8080             198.18.0.200    0",
    "  -> 198.18.1.12:8080             198.18.0.201    4535",
    "  -> 198.18.1.12:8080             198.18.1.1      1 (not configured)",
    "",
  ].join("\n"));
});

t("--nosort keeps kernel order", () => {
  const out = formatLaddrs({ ports: [61000, 65534], services: [REPLY.services[3]] }, { ...N, nosort: true }, NO_NAMES);
  assert.match(out, /198\.18\.1\.12:8080 .*\n(.*\n){2}.*198\.18\.1\.11:8080/);
});

t("without -n: names for the services, servers and local addresses", () => {
  const names = makeNames("198.18.0.100 vip\n198.18.1.11 rs1\n198.18.0.200 lb-a\n", "http 80/tcp\nalt 8080/tcp\n");
  const out = formatLaddrs({ ports: [61000, 65534], services: [REPLY.services[3]] }, { numeric: false, nosort: false }, names);
  assert.ok(out.includes("TCP  vip:http\n"), out);
  assert.ok(out.includes("  -> rs1:alt                      lb-a            3\n"), out);
  assert.ok(out.includes("  -> 198.18.1.12:alt              198.18.0.201    4535\n"), out);
});

t("-t SERVICE: that service only, even without full-NAT destinations; a missing one is an error", () => {
  assert.is(formatLaddrs(REPLY, { ...N, key: tcp("198.18.0.100", 443) }, NO_NAMES).split("\n").slice(3).join("\n"), "TCP  198.18.0.100:443\n");
  const one = formatLaddrs(REPLY, { ...N, key: tcp("198.18.0.100", 80) }, NO_NAMES);
  assert.not.match(one, "2001:2");
  assert.match(one, "198.18.1.12:8080");
  throwsIpvs(() => formatLaddrs(REPLY, { ...N, key: tcp("198.18.0.100", 81) }, NO_NAMES), "No such service", 1);
});

t("no daemon / no full NAT: the pool line and the titles", () => {
  assert.is(formatLaddrs({ ports: [61000, 65534], services: [] }, N, NO_NAMES),
    "FullNat local addresses (ports 61000-65534, 4535 per address and real server)\nProt LocalAddress:Port\n" +
    "  -> RemoteAddress:Port           LocalAddress    InUse\n");
});

t.run();
