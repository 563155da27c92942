import { suite } from "uvu";
import * as assert from "uvu/assert";
import { makeNames, NO_NAMES, parseHosts, parseServices, systemNames } from "../../src/cli/names.ts";
import { parseIPv4 } from "../../src/wire/addr.ts";

const HOSTS = `# static table
198.18.0.10	web1 web1.lab.example.test   # the first web server
198.18.0.11   web2
198.18.0.12   Web1          # a second line for an existing name: never reached
2001:2::10    web1-v6 web1
2001:0002::0011 six
198.018.0.13  octal-looking  # not a plain dotted quad: glibc's inet_pton skips it
198.18.0.14
garbage line
`;

const SERVICES = `# /etc/services
http\t\t80/tcp\t\twww www-http  # WorldWideWeb HTTP
http\t\t80/udp
domain\t\t53/tcp
domain\t\t53/udp
sip\t\t5060/sctp
sip\t\t5060/udp
www-alt\t\t80/tcp
broken\t\t99999/tcp
noport\t\tx/tcp
`;

// ---
const parse = suite("parseHosts / parseServices");

parse("parseHosts keeps address lines with names, in canonical text", () => {
  assert.equal(parseHosts(HOSTS), [
    { af: 4, addr: "198.18.0.10", names: ["web1", "web1.lab.example.test"] },
    { af: 4, addr: "198.18.0.11", names: ["web2"] },
    { af: 4, addr: "198.18.0.12", names: ["Web1"] },
    { af: 6, addr: "2001:2::10", names: ["web1-v6", "web1"] },
    { af: 6, addr: "2001:2::11", names: ["six"] },
  ]);
});

parse("parseServices reads name port/proto aliases, drops bad lines", () => {
  const s = parseServices(SERVICES);
  assert.is(s.length, 7);
  assert.equal(s[0], { name: "http", aliases: ["www", "www-http"], port: 80, proto: "tcp" });
  assert.equal(s[4], { name: "sip", aliases: [], port: 5060, proto: "sctp" });
});

parse.run();

// ---
const lookup = suite("makeNames lookups");
const names = makeNames(HOSTS, SERVICES);

lookup("resolveHost: IPv4 only, first matching line, case-insensitive", () => {
  assert.is(names.resolveHost("web1"), parseIPv4("198.18.0.10"));
  assert.is(names.resolveHost("WEB1"), parseIPv4("198.18.0.10"));
  assert.is(names.resolveHost("web1.lab.example.test"), parseIPv4("198.18.0.10"));
  assert.is(names.resolveHost("web2"), parseIPv4("198.18.0.11"));
  assert.is(names.resolveHost("six"), null);       // IPv6-only name
  assert.is(names.resolveHost("octal-looking"), null);
  assert.is(names.resolveHost("nosuchhost"), null);
  assert.is(names.resolveHost(""), null);
});

lookup("hostName: the official name of the first line with the address", () => {
  assert.is(names.hostName(4, "198.18.0.10"), "web1");
  assert.is(names.hostName(4, "198.18.0.12"), "Web1");
  assert.is(names.hostName(6, "2001:2::10"), "web1-v6");
  assert.is(names.hostName(6, "2001:2::11"), "six");
  assert.is(names.hostName(4, "198.18.0.99"), null);
  assert.is(names.hostName(4, "198.18.0.14"), null); // a line without names
});

lookup("resolveService: name or alias, by protocol", () => {
  assert.is(names.resolveService("http", "tcp"), 80);
  assert.is(names.resolveService("www", "tcp"), 80);
  assert.is(names.resolveService("www", "udp"), null);
  assert.is(names.resolveService("domain", "udp"), 53);
  assert.is(names.resolveService("sip", "sctp"), 5060);
  assert.is(names.resolveService("sip", "tcp"), null);
  assert.is(names.resolveService("broken", "tcp"), null);
  assert.is(names.resolveService("HTTP", "tcp"), null); // service names are case-sensitive
});

lookup("serviceName: the first entry for port and protocol", () => {
  assert.is(names.serviceName(80, "tcp"), "http");
  assert.is(names.serviceName(53, "udp"), "domain");
  assert.is(names.serviceName(5060, "sctp"), "sip");
  assert.is(names.serviceName(8080, "tcp"), null);
});

lookup("NO_NAMES finds nothing", () => {
  assert.is(NO_NAMES.resolveHost("localhost"), null);
  assert.is(NO_NAMES.serviceName(80, "tcp"), null);
});

lookup("systemNames loads once and keeps the same instance", () => {
  assert.is(systemNames(), systemNames());
});

lookup.run();
