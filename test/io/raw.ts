// Raw IP and UDP sockets (src/io/raw.ts) in a throw-away namespace: an IPIP packet sent to
// ourselves through IPPROTO_RAW and read back with its outer IPv4 header, the same over
// IPv6 (payload only), a dual-stack UDP listener, EAGAIN -> 0, range checks, no allocation
// in recv/sendTo; and the sockaddr layouts, byte for byte.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ipn, nsProbe, withNetns } from "../helpers/io_netns.ts";
import { sockaddrIn, sockaddrIn6 } from "../../src/io/raw.ts";
import { ip4 } from "../fixtures/builder.ts";
import { ip6 } from "../fixtures/ipv6.ts";

const ALLOC_SLACK = 8;
const raw = suite("io/raw");

raw("sockaddr_in / sockaddr_in6 layouts", () => {
  assert.equal(Array.from(sockaddrIn(ip4("198.18.8.1"), 6080)), [2, 0, 0x17, 0xc0, 198, 18, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const a6 = sockaddrIn6(ip6("2001:2:8::1"), 53);
  assert.is(a6.length, 28);
  assert.equal(Array.from(a6.subarray(0, 8)), [10, 0, 0, 53, 0, 0, 0, 0]);
  assert.equal(Array.from(a6.subarray(8, 24)), [0x20, 0x01, 0, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal(Array.from(a6.subarray(24)), [0, 0, 0, 0]);
});

raw("raw IPIP over IPv4 and IPv6, dual-stack UDP, no allocation", async () => {
  await withNetns("io-raw", (ns) => {
    ipn(ns, "addr", "add", "198.18.8.1/32", "dev", "lo");
    ipn(ns, "addr", "add", "2001:2:8::1/128", "dev", "lo", "nodad");
    const r = nsProbe(ns, "io_raw_probe.ts");
    assert.is(r.empty, 0, "nothing queued: 0");
    assert.is(r.sent4, 20 + 31);
    assert.is(r.ready4, 1);
    assert.is(r.n4, 51, "the whole datagram, outer header included");
    assert.equal(r.outer4, [0x45, 4, 0x45]);
    assert.ok(r.innerBack);
    assert.is(r.sent6, 40 + 31);
    assert.is(r.ready6, 1);
    assert.is(r.n6, 31, "IPv6 raw sockets return the payload only");
    assert.ok(r.payload6Back);
    assert.equal(r.udpAf, [6, 4]);
    assert.is(r.udpSent, 4);
    assert.is(r.udpReady, 1);
    assert.is(r.udpN, 4);
    assert.is(r.badRange, -22);
    assert.is(r.rebind, "bind udp ipv6 port 47001: Address already in use (EADDRINUSE)");
    assert.is(r.recvSum, 0);
    assert.ok(r.recvAlloc <= ALLOC_SLACK, `recv allocated ${r.recvAlloc}`);
    assert.is(r.sendOk, 20_000);
    assert.ok(r.sendAlloc <= ALLOC_SLACK, `sendTo allocated ${r.sendAlloc}`);
  });
});

raw.run();
