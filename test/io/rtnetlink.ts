// RtNetlink in a throw-away namespace: routes in main and numbered tables (v4 and v6,
// unicast, gateway, blackhole, local, default), policy rules with ports and iif, proxy
// neighbours on a veth, source-address lookup, and deletion leaving nothing behind.
// The probe (test/helpers/io_rtnetlink_probe.ts) runs inside the namespace.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { GatedProbe, ipn, nsProbe, withNetns } from "../helpers/io_netns.ts";
import { addrBytes, addrText } from "../../src/io/rtnetlink.ts";

// Drops the kernel's own entries (local/broadcast/multicast/link-local) and tv0's prefixes.
function ours(routes: string): string[] {
  return routes.split("\n").map((l) => l.trim())
    .filter((l) => l && !/proto kernel|^multicast ff00::\/8/.test(l));
}

const rt = suite("rtnetlink");

rt("routes, rules and proxy neighbours: add, inspect with ip, delete", async () => {
  await withNetns("io-rtnl", async (ns) => {
    ipn(ns, "link", "add", "tv0", "type", "veth", "peer", "name", "tv1");
    ipn(ns, "link", "set", "tv0", "up");
    ipn(ns, "link", "set", "tv1", "up");
    // tv1 a port of bridge tvbr: link() names its master.
    ipn(ns, "link", "add", "tvbr", "type", "bridge");
    ipn(ns, "link", "set", "tv1", "master", "tvbr");
    ipn(ns, "addr", "add", "198.18.5.1/24", "dev", "tv0");
    ipn(ns, "addr", "add", "2001:2:0:5::1/64", "dev", "tv0", "nodad");
    const probe = new GatedProbe(ns, "io_rtnetlink_probe.ts");
    try {
      const r = await probe.next();
      const t = r.tun;
      assert.is(r.dupRoute, "RTM_NEWROUTE 198.18.21.0/24 table 4242: File exists (EEXIST)");
      assert.is(r.dupRule, "RTM_NEWRULE pref 1000 lookup 4242: File exists (EEXIST)");
      assert.match(r.badGateway, /^RTM_NEWROUTE 198\.18\.25\.0\/24 .*\(ENETUNREACH\)$/);
      assert.is(r.noLink, "RTM_GETLINK nope0: No such device (ENODEV)");
      assert.is(r.tv0Mac, /link\/ether ([0-9a-f:]{17})/.exec(ipn(ns, "link", "show", "tv0"))![1]);
      assert.is(r.tunMac, 0, "a TUN has no link-layer address");
      const index = (name: string) => Number(/^(\d+):/.exec(ipn(ns, "link", "show", name))![1]);
      assert.equal(r.masters, [0, index("tvbr")], "tv0 has no master; tv1's is the bridge");
      assert.equal(r.byIndex, [index("tv0"), r.tv0Mac], "a link found by its index");
      assert.is(r.src4, "198.18.5.1");
      assert.is(r.src6, "2001:2:0:5::1");
      assert.is(r.srcTun, "198.18.5.1", "no address on the TUN: the kernel picks tv0's");
      assert.is(r.srcNone, null, "no route: null");

      const v4 = ours(ipn(ns, "-4", "route", "show", "table", "all")).sort();
      assert.equal(v4, [
        `198.18.20.0/24 dev ${t} proto static scope link`,
        `198.18.21.0/24 dev ${t} table 4242 proto static scope link`,
        `198.18.24.0/24 via 198.18.20.1 dev ${t} table 4242 proto static`,
        `blackhole 198.18.22.0/24 table 4242 proto static`,
        `default dev ${t} table 4243 proto static scope link`,
        `local 198.18.23.1 dev lo table local proto static scope host`,
      ]);
      const v6 = ours(ipn(ns, "-6", "route", "show", "table", "all")).sort();
      assert.equal(v6, [
        `2001:2:0:20::/64 dev ${t} proto static metric 1024 pref medium`,
        `2001:2:0:21::/64 dev ${t} table 4242 proto static metric 1024 pref medium`,
      ]);
      const rules4 = ipn(ns, "-4", "rule");
      assert.match(rules4, /^1000:\s+from 198\.18\.1\.11 ipproto tcp sport 80 lookup 4242\s*$/m);
      assert.match(rules4, new RegExp(`^1001:\\s+from all iif ${t} lookup main\\s*$`, "m"));
      assert.match(ipn(ns, "-6", "rule"), /^1002:\s+from all to 2001:2::\/48 ipproto udp dport 443 lookup 4242\s*$/m);
      const proxies = ipn(ns, "neigh", "show", "proxy");
      assert.match(proxies, /^198\.18\.5\.77 dev tv0 proxy/m);
      assert.match(proxies, /^2001:2:0:5::77 dev tv0 proxy/m);

      probe.release();
      const d = await probe.next();
      assert.equal(d.first, { routes: Array(8).fill(true), rules: [true, true, true], proxies: [true, true] });
      assert.equal(d.second, { routes: Array(8).fill(false), rules: [false, false, false], proxies: [false, false] },
        "deleting what is not there returns false");
      assert.is(await probe.done(), 0);

      assert.equal(ours(ipn(ns, "route", "show", "table", "all")), []);
      assert.equal(ours(ipn(ns, "-6", "route", "show", "table", "all")), []);
      assert.not.match(ipn(ns, "-4", "rule"), /^100[0-2]:/m);
      assert.not.match(ipn(ns, "-6", "rule"), /^100[0-2]:/m);
      assert.is(ipn(ns, "neigh", "show", "proxy").trim(), "");
    } finally {
      await probe.done();
    }
  });
});

rt("batch: changes past one sendmsg, each with its own result, failures named as the single calls name them", async () => {
  await withNetns("io-rtnlb", (ns) => {
    const r = nsProbe(ns, "io_rtnetlink_batch_probe.ts");
    assert.is(r.n, 304);
    assert.equal(r.first, [
      [150, -17, "RTM_NEWROUTE 198.18.0.7/32: File exists (EEXIST)"],
      [200, -101, r.first[1][2]],
      [303, -3, "RTM_DELROUTE 198.18.3.231/32: No such process (ESRCH)"],
    ]);
    assert.match(r.first[1][2], /^RTM_NEWROUTE 198\.18\.200\.0\/24 .*\(ENETUNREACH\)$/);
    assert.is(r.again, 10, "all exist now");
    assert.equal(r.dels.map((x: unknown[]) => x[1]), [-3, -3], "the duplicate and the one never added");
    assert.match(ipn(ns, "-4", "rule"), /^1000:\s+from 198\.18\.1\.12\/31 ipproto tcp sport 80 lookup 4242\s*$/m);
    assert.equal(ours(ipn(ns, "route", "show", "table", "all")).filter((l) => l.includes("198.18.")), []);
  });
});

// ---

const addr = suite("rtnetlink address text");

addr("IPv4 and IPv6 text <-> bytes", () => {
  assert.equal([...addrBytes(4, "198.18.1.11")], [198, 18, 1, 11]);
  assert.equal([...addrBytes(6, "2001:2::1")], [0x20, 0x01, 0, 2, ...Array(11).fill(0), 1]);
  assert.equal([...addrBytes(6, "::ffff:198.18.0.1")], [...Array(10).fill(0), 0xff, 0xff, 198, 18, 0, 1]);
  for (const s of ["2001:2::1", "2001:2:0:5::77", "::", "::1", "2001:2::", "2001:0:0:1::1", "1:2:3:4:5:6:7:8"]) {
    assert.is(addrText(addrBytes(6, s)), s);
  }
  assert.is(addrText(addrBytes(6, "2001:0002:0000:0000:0000:0000:0000:0001")), "2001:2::1");
  assert.is(addrText(addrBytes(6, "2001:2:0:0:1:0:0:0")), "2001:2:0:0:1::", "longest zero run wins");
  assert.is(addrText(addrBytes(6, "2001:2:0:0:1:0:0:1")), "2001:2::1:0:0:1", "first run wins a tie");
  assert.is(addrText(addrBytes(6, "2001:2:0:1:2:3:4:5")), "2001:2:0:1:2:3:4:5", "a single zero word stays");
  for (const bad of ["198.18.1", "198.18.1.256", "198.18.01.1", "a.b.c.d"]) assert.throws(() => addrBytes(4, bad), RangeError);
  for (const bad of ["2001::2::1", "2001:2", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "g::1"]) {
    assert.throws(() => addrBytes(6, bad), RangeError, bad);
  }
});

rt.run();
addr.run();
