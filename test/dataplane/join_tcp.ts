// The TCP joiner (dataplane/join_tcp.ts): which back-to-back segments of a flow become
// one, that the joined segment is exactly the byte stream with valid checksums (full and
// partial, IPv4 and IPv6, odd lengths), that a damaged segment stays detectably damaged,
// and that nothing overtakes a staged segment of its flow.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { TCP_JOIN_SLOTS, TCP_JOIN_SLOT_BYTES, TcpJoiner } from "../../src/dataplane/join_tcp.ts";
import { csumAdd, csumFold } from "../../src/wire/checksum.ts";
import { ipPseudoSum } from "../../src/wire/ip.ts";
import { VNET_F_NEEDS_CSUM, vnetCsumOffset, vnetCsumStart, vnetFlags, vnetGsoType } from "../../src/wire/vnet.ts";
import { buildIp4, buildIp6, checksumsValid, checksumsValid6, fillL4Csum, l4Csum6 } from "../fixtures/builder.ts";
import { CLIENT, CLIENT6, RS1, RS2, RS6 } from "../fixtures/snapshots.ts";

const AT = 4096;
const PSH_ACK = 0x18;
const ACK = 0x10;

function setup(vnet = false) {
  const u8 = new Uint8Array(AT + TCP_JOIN_SLOTS * TCP_JOIN_SLOT_BYTES);
  const sent: Uint8Array[] = [];
  const joined = new Float64Array(1);
  const devs: number[] = [];
  const j = new TcpJoiner(u8, AT, vnet, (dev, off, len) => { sent.push(u8.slice(off, off + len)); devs.push(dev); return len; }, joined, 0);
  // As the worker does: a refused packet is written at once, after what add() flushed.
  const add = (pkt: Uint8Array, partial = 0, joinable = true) => {
    u8.set(pkt, 0);
    const took = j.add(0, 0, 0, pkt.length, partial, joinable);
    if (!took) { sent.push(pkt.slice()); devs.push(0); }
    return took;
  };
  /** An Ethernet frame for the TAP (device 1), link header in front. */
  const addFrame = (pkt: Uint8Array) => {
    const f = new Uint8Array(14 + pkt.length);
    f.set([2, 0, 0, 0, 0, 0x0b, 2, 0x66, 0x11, 0x22, 0x33, 0x44, 0x08, 0x00]);
    f.set(pkt, 14);
    u8.set(f, 0);
    const took = j.add(1, 0, 14, f.length, 0, true);
    if (!took) { sent.push(f); devs.push(1); }
    return took;
  };
  return { j, sent, joined, add, addFrame, devs };
}

const text = (n: number, from = 0) => new Uint8Array(n).map((_, i) => 97 + ((from + i) % 26));

/** A server→client segment whose payload starts `off` bytes into the stream (seq 1000 + off). */
function seg4(off: number, payload: Uint8Array, flags = PSH_ACK, src = RS1, sport = 80): Uint8Array {
  const p = buildIp4({ src, dst: CLIENT, sport, dport: 40000, flags, payload });
  new DataView(p.buffer).setUint32(24, 1000 + off);
  fillL4Csum(p);
  return p;
}
function seg6(off: number, payload: Uint8Array, flags = PSH_ACK): Uint8Array {
  const p = buildIp6({ src: RS6[0], dst: CLIENT6, sport: 80, dport: 40000, flags, payload });
  const dv = new DataView(p.buffer);
  dv.setUint32(44, 1000 + off);
  dv.setUint32(48, 2000);
  dv.setUint16(56, 0);
  dv.setUint16(56, l4Csum6(p, 40, 6));
  return p;
}
const payloadOf = (p: Uint8Array, l4 = 20) => p.subarray(l4 + ((p[l4 + 12] >> 4) << 2));

const s = suite("join_tcp: back-to-back TCP segments of a flow into one");

s("a response's header and body segments (PSH both) become one segment: the stream, PSH, valid checksums", () => {
  const { j, sent, joined, add } = setup();
  const head = text(236);
  const body = text(24, 236);
  assert.ok(add(seg4(0, head)));
  assert.ok(add(seg4(236, body)));
  assert.is(sent.length, 0, "nothing written before the flush");
  j.flush();
  assert.is(sent.length, 1);
  const p = sent[0];
  assert.is(p.length, 40 + 260);
  assert.is(new DataView(p.buffer).getUint16(2), 300, "IPv4 total length");
  assert.is(new DataView(p.buffer).getUint32(24), 1000, "the first segment's sequence number");
  assert.is(p[33], PSH_ACK);
  assert.ok(checksumsValid(p), "IPv4 header and TCP checksums");
  assert.equal(payloadOf(p), text(260));
  assert.is(joined[0], 1, "one segment went out inside another");
});

s("odd lengths: bytes that land at an odd offset still sum right; three segments join", () => {
  const { j, sent, add } = setup();
  assert.ok(add(seg4(0, text(235), ACK)));
  assert.ok(add(seg4(235, text(17, 235), ACK)));
  assert.ok(add(seg4(252, text(9, 252))));
  j.flush();
  assert.is(sent.length, 1);
  assert.ok(checksumsValid(sent[0]));
  assert.equal(payloadOf(sent[0]), text(261));
  assert.is(sent[0][33], PSH_ACK, "PSH from the last segment");
});

s("IPv6: joined within 1 280 bytes, checksum valid", () => {
  const { j, sent, add } = setup();
  assert.ok(add(seg6(0, text(701))));
  assert.ok(add(seg6(701, text(500, 701))));
  j.flush();
  assert.is(sent.length, 1);
  assert.is(new DataView(sent[0].buffer).getUint16(4), 20 + 1201, "payload length");
  assert.ok(checksumsValid6(sent[0]));
  assert.equal(payloadOf(sent[0], 40), text(1201));
});

s("a segment damaged before tslb gives a joined segment whose checksum fails", () => {
  const { j, sent, add } = setup();
  const bad = seg4(236, text(24, 236));
  bad[50] ^= 0x20; // a payload byte flipped, checksum left as it was
  assert.ok(add(seg4(0, text(236))));
  assert.ok(add(bad));
  j.flush();
  assert.is(sent.length, 1);
  assert.not.ok(checksumsValid(sent[0]));
});

s("partial checksums (offloading TUN) stay partial: pseudo-header sum over the new length, NEEDS_CSUM", () => {
  const { j, sent, add } = setup(true);
  const partial = (p: Uint8Array) => {
    const dv = new DataView(p.buffer);
    dv.setUint16(36, csumFold(ipPseudoSum(p, 0, 6, p.length - 20)));
    return p;
  };
  assert.ok(add(partial(seg4(0, text(236))), 1));
  assert.ok(add(partial(seg4(236, text(24, 236))), 1));
  j.flush();
  assert.is(sent.length, 1);
  const f = sent[0];
  assert.equal([vnetFlags(f, 0), vnetGsoType(f, 0), vnetCsumStart(f, 0), vnetCsumOffset(f, 0)], [VNET_F_NEEDS_CSUM, 0, 20, 16]);
  const ip = f.subarray(10);
  assert.is(new DataView(ip.buffer, ip.byteOffset).getUint16(36), csumFold(ipPseudoSum(ip, 0, 6, 280)));
  assert.equal(payloadOf(ip), text(260));
});

s("a FIN joins as the last segment, with data or alone; nothing joins after it", () => {
  const { j, sent, add } = setup();
  assert.ok(add(seg4(0, text(236))));
  assert.ok(add(seg4(236, text(24, 236))));
  assert.ok(add(seg4(260, new Uint8Array(0), 0x11)), "the server's FIN");
  assert.ok(add(seg4(260, text(5, 260))), "a (bogus) segment after the FIN is staged apart");
  j.flush();
  assert.is(sent.length, 2);
  assert.is(sent[0].length, 40 + 260);
  assert.is(sent[0][33], 0x19, "ACK|PSH|FIN");
  assert.ok(checksumsValid(sent[0]));
  const { j: j2, sent: sent2, add: add2 } = setup();
  add2(seg4(0, text(100)));
  add2(seg4(100, text(20, 100), 0x19));
  j2.flush();
  assert.is(sent2.length, 1);
  assert.is(sent2[0][33], 0x19);
  assert.equal(payloadOf(sent2[0]), text(120));
  assert.ok(checksumsValid(sent2[0]));
});

s("what does not join: a gap, another ACK number, RST, too big, full with partial; each written in order", () => {
  const cases: [string, Uint8Array, number][] = [
    ["gap in the sequence", seg4(237, text(24)), 0],
    ["RST", seg4(236, new Uint8Array(0), 0x14), 0],
    ["past 576 bytes", seg4(236, text(301)), 0],
    ["partial after full", seg4(236, text(24)), 1],
  ];
  const ackMoved = seg4(236, text(24));
  new DataView(ackMoved.buffer).setUint32(28, 2001);
  fillL4Csum(ackMoved);
  cases.push(["another ACK number", ackMoved, 0]);
  for (const [what, second, partial] of cases) {
    const { j, sent, joined, add } = setup();
    add(seg4(0, text(236)));
    add(second, partial);
    j.flush();
    assert.is(sent.length, 2, what);
    assert.is(new DataView(sent[0].buffer).getUint32(24), 1000, `${what}: the first segment goes first`);
    assert.is(joined[0], 0, what);
  }
});

s("a packet of the flow that cannot join goes out after the staged segment: a super-packet at once, a pure ACK held", () => {
  const sp = setup();
  assert.ok(sp.add(seg4(0, text(236))));
  assert.not.ok(sp.add(seg4(236, text(24)), 0, false), "a super-packet is refused");
  assert.equal(sp.sent.map((p) => p.length), [40 + 236, 40 + 24], "written right away, after the staged segment");
  const pa = setup();
  assert.ok(pa.add(seg4(0, text(236))));
  assert.ok(pa.add(seg4(236, new Uint8Array(0), ACK)), "a pure ACK is held in turn");
  assert.equal(pa.sent.map((p) => p.length), [40 + 236], "the staged segment went first");
  pa.j.flush();
  assert.equal(pa.sent.map((p) => p.length), [40 + 236, 40]);
});

/** A client→server segment (the other direction), seq 5000 + off, ACK 7000, with optional TCP options. */
function cseg(off: number, payload: Uint8Array, flags = PSH_ACK, opts: number[] = [], ack = 7000): Uint8Array {
  const p0 = buildIp4({ src: CLIENT, dst: RS1, sport: 40000, dport: 80, flags, payload });
  const p = new Uint8Array(p0.length + opts.length);
  p.set(p0.subarray(0, 40));
  p.set(opts, 40);
  p.set(p0.subarray(40), 40 + opts.length);
  const dv = new DataView(p.buffer);
  dv.setUint16(2, p.length);
  dv.setUint16(10, 0);
  dv.setUint16(10, ~csumFold(csumAdd(p, 0, 20, 0)) & 0xffff);
  dv.setUint32(24, 5000 + off);
  dv.setUint32(28, ack);
  p[32] = (5 + opts.length / 4) << 4;
  fillL4Csum(p);
  return p;
}
const TS = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
const SACK = [1, 1, 5, 10, 0, 0, 0x1b, 0x58, 0, 0, 0x1f, 0x40];

s("a pure ACK followed by the flow's request with the same ACK, window and options goes out inside it", () => {
  const { j, sent, joined, add } = setup();
  assert.ok(add(cseg(0, new Uint8Array(0), ACK, TS)), "the ACK waits");
  assert.ok(add(cseg(0, text(38), PSH_ACK, TS)), "the request takes its place");
  j.flush();
  assert.is(sent.length, 1);
  assert.is(sent[0].length, 40 + 12 + 38);
  assert.ok(checksumsValid(sent[0]));
  assert.is(joined[0], 1);
  // The handshake's ACK and a FIN: the FIN goes at once, the ACK inside it.
  const b = setup();
  b.add(cseg(0, new Uint8Array(0), ACK, TS));
  assert.not.ok(b.add(cseg(0, new Uint8Array(0), 0x11, TS)), "a FIN is not held");
  assert.is(b.sent.length, 1, "only the FIN");
  assert.is(b.sent[0][33], 0x11);
});

s("pure ACKs that must stay: a SACK, another ACK number or options, another pure ACK (duplicate ACKs count)", () => {
  const cases: [string, Uint8Array, Uint8Array][] = [
    ["SACK", cseg(0, new Uint8Array(0), ACK, SACK), cseg(0, text(38), PSH_ACK, SACK)],
    ["ACK number moved", cseg(0, new Uint8Array(0), ACK, TS), cseg(0, text(38), PSH_ACK, TS, 7100)],
    ["timestamp moved", cseg(0, new Uint8Array(0), ACK, TS), cseg(0, text(38), PSH_ACK, [...TS.slice(0, 7), 2, ...TS.slice(8)])],
    ["duplicate ACK", cseg(0, new Uint8Array(0), ACK, TS), cseg(0, new Uint8Array(0), ACK, TS)],
  ];
  for (const [what, first, second] of cases) {
    const { j, sent, joined, add } = setup();
    add(first);
    add(second);
    j.flush();
    assert.is(sent.length, 2, what);
    assert.is(sent[0].length, first.length, `${what}: the ACK first`);
    assert.is(joined[0], 0, what);
  }
});

s("Ethernet frames for the TAP join the same way, link header kept, and never with the TUN's packets", () => {
  const { j, sent, devs, add, addFrame } = setup();
  assert.ok(addFrame(cseg(0, text(100))));
  assert.ok(addFrame(cseg(100, text(20, 100))));
  assert.ok(add(cseg(120, text(10, 120))), "the same flow on the TUN: a slot of its own");
  j.flush();
  assert.equal(devs, [1, 0]);
  assert.is(sent[0].length, 14 + 40 + 120);
  assert.equal([...sent[0].subarray(0, 14)], [2, 0, 0, 0, 0, 0x0b, 2, 0x66, 0x11, 0x22, 0x33, 0x44, 0x08, 0x00]);
  assert.ok(checksumsValid(sent[0].subarray(14)));
  assert.equal(payloadOf(sent[0].subarray(14)), text(120));
});

s("flows interleave in their own slots; a lone segment goes out unchanged", () => {
  const { j, sent, add } = setup();
  const lone = seg4(0, text(50), PSH_ACK, RS2);
  add(seg4(0, text(236)));
  add(lone);
  add(seg4(236, text(24, 236)));
  j.flush();
  assert.is(sent.length, 2);
  const byLen = sent.map((p) => p.length).sort((a, b) => a - b);
  assert.equal(byLen, [90, 300]);
  assert.equal(sent.find((p) => p.length === 90), lone);
});

s("more flows than slots: the oldest slot is written to make room, nothing is lost", () => {
  const { j, sent, add } = setup();
  for (let i = 0; i < TCP_JOIN_SLOTS + 3; i++) assert.ok(add(seg4(0, text(10), PSH_ACK, RS1, 1000 + i)));
  assert.is(sent.length, 3);
  j.flush();
  assert.is(sent.length, TCP_JOIN_SLOTS + 3);
  assert.is(new Set(sent.map((p) => new DataView(p.buffer).getUint16(20))).size, TCP_JOIN_SLOTS + 3);
});

s("what is not plain TCP is refused untouched: UDP, IPv4 options, truncated", () => {
  const { sent, add } = setup();
  assert.not.ok(add(buildIp4({ src: RS1, dst: CLIENT, proto: "udp", sport: 53, dport: 40000, payload: "x" })));
  const opt = new Uint8Array(64);
  opt[0] = 0x46;
  opt[9] = 6;
  assert.not.ok(add(opt));
  assert.not.ok(add(seg4(0, text(10)).subarray(0, 30)));
  assert.is(sent.length, 3, "each written as it came, nothing staged");
});

s.run();
