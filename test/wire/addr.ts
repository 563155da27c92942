import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  addrWords, canonicalAddr, formatIPv4, formatIPv6, ipv4InPrefix, ipv4MaskLen, ipv4PrefixMask,
  ipv6InPrefix, parseIPv4, parseIPv4Strict, parseIPv6,
} from "../../src/wire/addr.ts";

const hex = (n: number | null) => (n === null ? null : (n >>> 0).toString(16).padStart(8, "0"));

// ---
const ipv4 = suite("parseIPv4 (inet_aton)");

const V4_OK: [string, string][] = [
  ["198.18.0.1", "c6120001"],
  ["0.0.0.0", "00000000"],
  ["255.255.255.255", "ffffffff"],
  ["198.18.1", "c6120001"],          // a.b.c: c is 16 bits
  ["198.18.258", "c6120102"],
  ["198.1179649", "c6120001"],       // a.b: b is 24 bits
  ["3323068417", "c6120001"],        // a: 32 bits
  ["0xc6120001", "c6120001"],
  ["0XC6.0x12.0.1", "c6120001"],
  ["0306.022.0.01", "c6120001"],     // octal parts
  ["198.18.0.1 trailing words", "c6120001"], // glibc ignores what follows a blank
  ["198.18.0.1\tx", "c6120001"],
  ["4294967295", "ffffffff"],
];
for (const [text, want] of V4_OK) ipv4(`accepts ${JSON.stringify(text)}`, () => assert.is(hex(parseIPv4(text)), want));

const V4_BAD = ["", " 198.18.0.1", "+1.2.3.4", "198.18.0.256", "198.18.65536", "198.16777216", "4294967296",
  "1.2.3.4.5", "1..2.3", "1.2.3.", ".1.2.3", "08", "0x", "0xg", "198.18.0.1x", "198.18.0.1:80", "web1", "-1", "::1",
  "99999999999999999999"];
for (const text of V4_BAD) ipv4(`rejects ${JSON.stringify(text)}`, () => assert.is(parseIPv4(text), null));

ipv4("returns a signed int32", () => {
  assert.is(parseIPv4("198.18.0.1"), 0xc6120001 | 0);
  assert.ok(parseIPv4("198.18.0.1")! < 0);
});

ipv4("parseIPv4Strict is inet_pton: plain dotted quads only", () => {
  assert.is(hex(parseIPv4Strict("198.18.0.1")), "c6120001");
  for (const t of ["198.18.1", "0xc6120001", "198.018.0.1", "198.18.0.1 ", "198.18.0.256", "1.2.3.4.5"]) {
    assert.is(parseIPv4Strict(t), null, t);
  }
});

ipv4("formatIPv4", () => {
  assert.is(formatIPv4(0xc6120001 | 0), "198.18.0.1");
  assert.is(formatIPv4(0xc6130a0b), "198.19.10.11");
  assert.is(formatIPv4(0), "0.0.0.0");
  assert.is(formatIPv4(-1), "255.255.255.255");
});

ipv4.run();

// ---
const ipv6 = suite("parseIPv6 (inet_pton) / formatIPv6 (inet_ntop)");

const w = (x: number[] | null) => (x === null ? null : x.map((v) => (v >>> 0).toString(16)).join(","));

const V6_OK: [string, string][] = [
  ["2001:2::1", "20010002,0,0,1"],
  ["2001:0002:0000:0000:0000:0000:0000:0001", "20010002,0,0,1"],
  ["::", "0,0,0,0"],
  ["::1", "0,0,0,1"],
  ["2001:2::", "20010002,0,0,0"],
  ["2001:2:0:0:9000::1", "20010002,0,90000000,1"],
  ["::ffff:198.18.0.1", "0,0,ffff,c6120001"],
  ["2001:2::198.18.0.1", "20010002,0,0,c6120001"],
  ["2001:2:0:4:5:6:7:8", "20010002,4,50006,70008"],
  ["2001:2:0:4:5:6:7::", "20010002,4,50006,70000"],
  ["::2:3:4:5:6:7:8", "2,30004,50006,70008"],
  ["2001:2:ABCD::Ef", "20010002,abcd0000,0,ef"],
  ["2001:2:0:4:5:6:198.18.0.1", "20010002,4,50006,c6120001"],
];
for (const [text, want] of V6_OK) ipv6(`parses ${text}`, () => assert.is(w(parseIPv6(text)), want));

const V6_BAD = ["", ":", ":::", "1:::2", "2001:2::1::2", ":1::", "1:", "2001:2:0:4:5:6:7:8:9", "2001:2:0:4:5:6:7::8",
  "12345::", "[2001:2::1]", "2001:2::1%eth0", "2001:2::g", "198.18.0.1", "::198.18.0", "::198.18.0.01",
  "2001:2:0:4:5:6:7:198.18.0.1", "2001:2:0:4:5:6::198.18.0.1", "2001:2::1/64", " ::1"];
for (const text of V6_BAD) ipv6(`rejects ${JSON.stringify(text)}`, () => assert.is(parseIPv6(text), null));

const V6_FMT: [string, string][] = [
  ["2001:0002:0000:0000:0000:0000:0000:0001", "2001:2::1"],
  ["0:0:0:0:0:0:0:0", "::"],
  ["0:0:0:0:0:0:0:1", "::1"],
  ["2001:2:0:0:0:0:0:0", "2001:2::"],
  ["2001:2:0:1:0:0:0:1", "2001:2:0:1::1"],          // a single zero group is not compressed
  ["2001:2:0:0:1:0:0:1", "2001:2::1:0:0:1"],        // tie: the first run
  ["2001:2:0:0:1:0:0:0", "2001:2:0:0:1::"],         // the longest run wins
  ["2001:2:AB:0:0:0:0:CD", "2001:2:ab::cd"],
  ["0:0:0:0:0:ffff:c612:1", "::ffff:198.18.0.1"],   // v4-mapped
  ["0:0:0:0:0:0:c612:1", "::198.18.0.1"],           // v4-compatible
  ["0:0:0:0:0:ffff:0:0", "::ffff:0.0.0.0"],
  ["0:0:0:0:1:ffff:c612:1", "::1:ffff:c612:1"],
  ["2001:0:0:0:0:0:c612:1", "2001::c612:1"],
  ["2001:2:0:4:5:6:7:8", "2001:2:0:4:5:6:7:8"],
];
for (const [text, want] of V6_FMT) ipv6(`formats ${text} as ${want}`, () => assert.is(formatIPv6(parseIPv6(text)!), want));

ipv6("format -> parse round trip on seeded random addresses", () => {
  let seed = 0x5eed;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) | 0) >>> 8) & 0xffff;
  for (let n = 0; n < 2000; n++) {
    // Many zero groups, so that runs and ties are common.
    const g = Array.from({ length: 8 }, () => (rnd() % 3 === 0 ? rnd() : 0));
    const words = [0, 1, 2, 3].map((k) => ((g[2 * k] << 16) | g[2 * k + 1]) | 0);
    const text = formatIPv6(words);
    assert.equal(parseIPv6(text), words, text);
    assert.ok(!/:::/.test(text) && text === text.toLowerCase(), text);
  }
});

ipv6.run();

// ---
const helpers = suite("canonicalAddr, addrWords, prefixes");

helpers("canonicalAddr", () => {
  assert.is(canonicalAddr(4, "198.18.1"), "198.18.0.1");
  assert.is(canonicalAddr(4, "0xc6130001"), "198.19.0.1");
  assert.is(canonicalAddr(6, "2001:0002::0001"), "2001:2::1");
  assert.is(canonicalAddr(4, "2001:2::1"), null);
  assert.is(canonicalAddr(6, "198.18.0.1"), null);
});

helpers("addrWords puts IPv4 in the first word", () => {
  assert.equal(addrWords("198.18.0.1"), [0xc6120001 | 0, 0, 0, 0]);
  assert.equal(addrWords("2001:2::1"), [0x20010002, 0, 0, 1]);
});

helpers("IPv4 masks and prefixes", () => {
  assert.is(hex(ipv4PrefixMask(24)), "ffffff00");
  assert.is(hex(ipv4PrefixMask(32)), "ffffffff");
  assert.is(ipv4PrefixMask(0), 0);
  assert.is(ipv4MaskLen(parseIPv4("255.255.255.0")!), 24);
  assert.is(ipv4MaskLen(-1), 32);
  assert.is(ipv4MaskLen(0), 0);
  assert.is(ipv4MaskLen(parseIPv4("255.0.255.0")!), -1);
  assert.ok(ipv4InPrefix(parseIPv4("198.19.7.7")!, parseIPv4("198.18.0.0")!, 15));
  assert.not.ok(ipv4InPrefix(parseIPv4("198.19.7.7")!, parseIPv4("198.18.0.0")!, 16));
  assert.ok(ipv4InPrefix(parseIPv4("198.19.7.7")!, 0, 0));
});

helpers("IPv6 prefixes", () => {
  const net = parseIPv6("2001:2::")!;
  assert.ok(ipv6InPrefix(parseIPv6("2001:2:0:ffff::1")!, net, 48));
  assert.not.ok(ipv6InPrefix(parseIPv6("2001:2:0:ffff::1")!, net, 64));
  assert.ok(ipv6InPrefix(parseIPv6("2001:2:0:ffff::1")!, parseIPv6("2001:2:0:ff00::")!, 56));
  assert.not.ok(ipv6InPrefix(parseIPv6("2001:2::1")!, net, 128));
  assert.ok(ipv6InPrefix(parseIPv6("2001:2::")!, net, 128));
});

helpers.run();
