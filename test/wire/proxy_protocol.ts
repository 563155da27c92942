// PROXY protocol encoders: golden lines and bytes written by hand from haproxy's
// proxy-protocol.txt, RFC 5952 text forms, and a differential check against addr.ts.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatIPv6, parseIPv6 } from "../../src/wire/addr.ts";
import { Frame } from "../../src/wire/frame.ts";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "../../src/wire/ipv4.ts";
import { Pkt, parseIp } from "../../src/wire/pkt.ts";
import {
  PROXY_V1, PROXY_V1_MAX_LEN, PROXY_V1_MAX_LEN4, PROXY_V1_MAX_LEN6, PROXY_V2, PROXY_V2_LEN4, PROXY_V2_LEN6, PROXY_V2_SIG,
  proxyHeaderLength, proxyV1Write, proxyV2Write, proxyWrite, proxyWriteFromIp, proxyWriteFromPkt,
} from "../../src/wire/proxy_protocol.ts";
import { buildIp4, buildIp6, ip4, ip6, rng } from "../fixtures/builder.ts";

const POISON = 0xa5;
const text = (u8: Uint8Array, o: number, n: number) => String.fromCharCode(...u8.subarray(o, o + n));

/** v1 line for text addresses, written at offset 3 of a poisoned buffer; checks the bytes around it. */
function v1(af: 4 | 6, src: string, dst: string, sport: number, dport: number): string {
  const out = new Uint8Array(3 + 120).fill(POISON);
  const s = af === 4 ? [ip4(src), 0, 0, 0] : ip6(src);
  const d = af === 4 ? [ip4(dst), 0, 0, 0] : ip6(dst);
  const n = proxyV1Write(out, 3, af, s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], sport, dport);
  assert.ok(n > 0 && n <= proxyHeaderLength(1, af), `length ${n}`);
  for (let i = 0; i < 3; i++) assert.is(out[i], POISON, "byte before the line");
  for (let i = 3 + n; i < out.length; i++) assert.is(out[i], POISON, "byte after the line");
  return text(out, 3, n);
}
/** The RFC 5952 text this encoder writes for `addr` (as the source of a v1 line). */
function canon(addr: string): string {
  const line = v1(6, addr, "::", 1, 2);
  const m = /^PROXY TCP6 (\S+) :: 1 2\r\n$/.exec(line);
  assert.ok(m, line);
  return m![1];
}
function hex(u8: Uint8Array): string {
  return Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

// ---
const one = suite("proxy protocol v1");
one("TCP4 golden lines", () => {
  assert.is(v1(4, "192.0.2.1", "198.51.100.2", 56324, 443), "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
  assert.is(v1(4, "0.0.0.0", "0.0.0.0", 0, 0), "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
  assert.is(v1(4, "198.19.100.9", "198.18.10.1", 9, 10), "PROXY TCP4 198.19.100.9 198.18.10.1 9 10\r\n");
  assert.is(v1(4, "1.20.100.255", "99.9.0.10", 99, 100), "PROXY TCP4 1.20.100.255 99.9.0.10 99 100\r\n");
  assert.is(v1(4, "198.18.0.2", "198.18.0.100", 999, 1000), "PROXY TCP4 198.18.0.2 198.18.0.100 999 1000\r\n");
  assert.is(v1(4, "128.0.0.1", "127.0.0.1", 9999, 10000), "PROXY TCP4 128.0.0.1 127.0.0.1 9999 10000\r\n");
  const max = v1(4, "255.255.255.255", "255.255.255.255", 65535, 65535);
  assert.is(max, "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
  assert.is(max.length, PROXY_V1_MAX_LEN4);
});
one("TCP6 golden lines", () => {
  assert.is(v1(6, "2001:db8::1", "2001:db8::2", 40000, 443), "PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n");
  const f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const max = v1(6, f, f, 65535, 65535);
  assert.is(max, `PROXY TCP6 ${f} ${f} 65535 65535\r\n`);
  assert.is(max.length, PROXY_V1_MAX_LEN6);
  assert.ok(PROXY_V1_MAX_LEN6 <= PROXY_V1_MAX_LEN);
});
one("IPv6 text is RFC 5952 canonical", () => {
  const cases: [string, string][] = [
    ["::1", "::1"],
    ["::", "::"],
    ["2001:2::1", "2001:2::1"],
    ["2001:2:0:0:1:0:0:1", "2001:2::1:0:0:1"], // tie: the first run is compressed
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // RFC 5952 §4.2.3
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run wins
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"], // full 8 groups
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // RFC 5952 §4.2.2: one zero group stays
    ["2001:0DB8:00AA:000F:0:0:0:0100", "2001:db8:aa:f::100"], // lowercase, no leading zeros
    ["2001:db8::", "2001:db8::"], // run at the end
    ["1::", "1::"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"], // a single leading zero group
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"], // a single trailing zero group
    ["0:1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"],
    ["fe80::1:2", "fe80::1:2"],
    ["::1:2", "::1:2"], // not the deprecated "::0.1.0.2"
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"], // IPv4-mapped: mixed notation (§5)
    ["::ffff:0:0", "::ffff:0.0.0.0"],
    ["abcd:ef01:2345:6789:abcd:ef01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"],
  ];
  for (const [input, want] of cases) assert.is(canon(input), want, input);
});
one("IPv6 text agrees with inet_ntop (addr.ts) on 20 000 random addresses and parses back", () => {
  const r = rng(5952);
  for (let n = 0; n < 20000; n++) {
    const g: number[] = [];
    for (let k = 0; k < 8; k++) {
      const x = r();
      g.push(x < 0.5 ? 0 : x < 0.6 ? 0xffff : x < 0.8 ? Math.floor(r() * 16) : Math.floor(r() * 65536));
    }
    const w = [0, 1, 2, 3].map((k) => ((g[2 * k] << 16) | g[2 * k + 1]) | 0);
    const got = canon(formatIPv6(w));
    const back = parseIPv6(got);
    assert.equal(back, w, got);
    // glibc prints the deprecated IPv4-compatible form (::a.b.c.d) where RFC 5952 uses hex.
    const compat = g.slice(0, 6).every((x) => x === 0) && g[6] !== 0;
    if (!compat) assert.is(got, formatIPv6(w));
  }
});
one("no room, wrong family: 0 and nothing written", () => {
  const out = new Uint8Array(PROXY_V1_MAX_LEN4 - 1).fill(POISON);
  assert.is(proxyV1Write(out, 0, 4, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0);
  const big = new Uint8Array(200).fill(POISON);
  assert.is(proxyV1Write(big, 200 - PROXY_V1_MAX_LEN6 + 1, 6, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0);
  assert.is(proxyV1Write(big, 0, 5, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0);
  assert.is(proxyV1Write(big, -1, 4, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0);
  assert.ok(out.every((b) => b === POISON) && big.every((b) => b === POISON));
});
one.run();

// ---
const two = suite("proxy protocol v2");
two("TCP/IPv4 golden bytes", () => {
  const out = new Uint8Array(5 + 40).fill(POISON);
  const n = proxyV2Write(out, 5, 4, IPPROTO_TCP, ip4("192.0.2.1"), 0, 0, 0, ip4("198.51.100.2"), 0, 0, 0, 56324, 443);
  assert.is(n, 28);
  assert.is(n, PROXY_V2_LEN4);
  const want = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature "\r\n\r\n\0\r\nQUIT\n"
    0x21, // version 2, command PROXY
    0x11, // AF_INET, STREAM
    0x00, 0x0c, // 12 bytes of addresses follow
    0xc0, 0x00, 0x02, 0x01, // src 192.0.2.1
    0xc6, 0x33, 0x64, 0x02, // dst 198.51.100.2
    0xdc, 0x04, // sport 56324
    0x01, 0xbb, // dport 443
  ];
  assert.is(hex(out.subarray(5, 5 + n)), hex(new Uint8Array(want)));
  assert.ok(out.subarray(0, 5).every((b) => b === POISON) && out.subarray(5 + n).every((b) => b === POISON));
});
two("UDP/IPv4 and TCP/UDP IPv6 golden bytes", () => {
  const out = new Uint8Array(64).fill(POISON);
  assert.is(proxyV2Write(out, 0, 4, IPPROTO_UDP, ip4("198.18.2.3"), 0, 0, 0, ip4("198.19.5.6"), 0, 0, 0, 53, 5353), 28);
  assert.is(hex(out.subarray(0, 28)), hex(new Uint8Array([
    ...PROXY_V2_SIG, 0x21, 0x12, 0x00, 0x0c, 198, 18, 2, 3, 198, 19, 5, 6, 0x00, 0x35, 0x14, 0xe9,
  ])));
  const s = ip6("2001:db8::1"), d = ip6("2001:db8:1:2:3:4:5:6");
  const addrs = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src 2001:db8::1
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, // dst 2001:db8:1:2:3:4:5:6
    0x9c, 0x40, 0x00, 0x50, // ports 40000, 80
  ];
  out.fill(POISON);
  assert.is(proxyV2Write(out, 0, 6, IPPROTO_TCP, s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], 40000, 80), PROXY_V2_LEN6);
  assert.is(hex(out.subarray(0, 52)), hex(new Uint8Array([
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 0x24, ...addrs,
  ])));
  assert.ok(out.subarray(52).every((b) => b === POISON));
  assert.is(proxyV2Write(out, 0, 6, IPPROTO_UDP, s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], 40000, 80), 52);
  assert.is(out[13], 0x22);
});
two("lengths; refusals write nothing", () => {
  assert.is(proxyHeaderLength(2, 4), 28);
  assert.is(proxyHeaderLength(2, 6), 52);
  assert.is(proxyHeaderLength(1, 4), 56);
  assert.is(proxyHeaderLength(1, 6), 104);
  assert.is(proxyHeaderLength(3, 4), 0);
  assert.is(proxyHeaderLength(2, 5), 0);
  const out = new Uint8Array(60).fill(POISON);
  assert.is(proxyV2Write(out, 0, 4, IPPROTO_ICMP, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0);
  assert.is(proxyV2Write(out, 33, 4, IPPROTO_TCP, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0); // 33 + 28 > 60
  assert.is(proxyV2Write(out, 9, 6, IPPROTO_TCP, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0);
  assert.is(proxyWrite(out, 0, PROXY_V1, 4, IPPROTO_UDP, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0); // v1 has no UDP
  assert.is(proxyWrite(out, 0, 0, 4, IPPROTO_TCP, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 0);
  assert.ok(out.every((b) => b === POISON));
  assert.is(proxyWrite(out, 32, PROXY_V2, 4, IPPROTO_TCP, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4), 28);
});
two.run();

// ---
const from = suite("proxy protocol from a packet");
from("from IP bytes and from Pkt: the client's tuple, both versions, both families", () => {
  const f = Frame.alloc(512);
  const p = new Pkt();
  const out = new Uint8Array(128);
  const pkts: [Uint8Array, string, string][] = [
    [buildIp4({ src: "198.18.0.2", dst: "198.18.0.100", sport: 40000, dport: 80, flags: 0x18, payload: "GET /" }),
      "PROXY TCP4 198.18.0.2 198.18.0.100 40000 80\r\n",
      "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a 21 11 00 0c c6 12 00 02 c6 12 00 64 9c 40 00 50"],
    [buildIp6({ src: "2001:2::2", dst: "2001:2::100", sport: 40001, dport: 443, flags: 0x18, payload: "x", ext: 8 }),
      "PROXY TCP6 2001:2::2 2001:2::100 40001 443\r\n",
      "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a 21 21 00 24 " +
      "20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02 20 01 00 02 00 00 00 00 00 00 00 00 00 00 01 00 9c 41 01 bb"],
  ];
  for (const [b, line, bytes] of pkts) {
    f.u8.set(b, 64);
    assert.is(parseIp(p, f, 64, b.length), 0);
    let n = proxyWriteFromIp(out, 0, PROXY_V1, p.proto, f.u8, p.l3, p.l4);
    assert.is(text(out, 0, n), line);
    n = proxyWriteFromPkt(out, 0, PROXY_V1, p);
    assert.is(text(out, 0, n), line);
    n = proxyWriteFromIp(out, 0, PROXY_V2, p.proto, f.u8, p.l3, p.l4);
    assert.is(hex(out.subarray(0, n)), bytes);
    out.fill(0);
    n = proxyWriteFromPkt(out, 0, PROXY_V2, p);
    assert.is(hex(out.subarray(0, n)), bytes);
  }
  const udp = buildIp4({ src: "198.18.0.2", dst: "198.18.0.100", proto: "udp", sport: 5000, dport: 53, payload: "q" });
  f.u8.set(udp, 64);
  assert.is(parseIp(p, f, 64, udp.length), 0);
  assert.is(proxyWriteFromPkt(out, 0, PROXY_V1, p), 0);
  assert.is(proxyWriteFromPkt(out, 0, PROXY_V2, p), 28);
  assert.is(out[13], 0x12);
  f.u8[64] = 0x55; // IP version 5
  assert.is(proxyWriteFromIp(out, 0, PROXY_V2, IPPROTO_UDP, f.u8, 64, 84), 0);
});
from("reused output buffer: 10 000 calls give the same bytes as fresh buffers", () => {
  const r = rng(11);
  const shared = new Uint8Array(PROXY_V1_MAX_LEN + 8);
  for (let k = 0; k < 10000; k++) {
    const af = r() < 0.5 ? 4 : 6;
    const w = Array.from({ length: 8 }, () => (r() * 2 ** 32) | 0);
    if (r() < 0.3) { w[1] = 0; w[2] = 0; w[5] = 0; w[6] = 0; }
    const ver = r() < 0.5 ? PROXY_V1 : PROXY_V2;
    const sp = Math.floor(r() * 65536), dp = Math.floor(r() * 65536);
    const n1 = proxyWrite(shared, 8, ver, af, IPPROTO_TCP, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], sp, dp);
    const fresh = new Uint8Array(PROXY_V1_MAX_LEN);
    const n2 = proxyWrite(fresh, 0, ver, af, IPPROTO_TCP, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], sp, dp);
    assert.is(n1, n2);
    assert.is(hex(shared.subarray(8, 8 + n1)), hex(fresh.subarray(0, n2)));
    if (ver === PROXY_V1) {
      const s = text(fresh, 0, n2);
      const m = /^PROXY TCP([46]) (\S+) (\S+) (\d+) (\d+)\r\n$/.exec(s);
      assert.ok(m, s);
      assert.is(m![4], String(sp));
      assert.is(m![5], String(dp));
      if (af === 6) assert.equal(parseIPv6(m![2]), w.slice(0, 4));
    }
  }
});
from.run();
