// The TCP joiner (dataplane/join_tcp.ts): which back-to-back segments of a flow become
// one, that the joined segment is exactly the byte stream with valid checksums (full and
// partial, IPv4 and IPv6, odd lengths), that a damaged segment stays detectably damaged,
// and that nothing overtakes a staged segment of its flow.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { TCP_JOIN_SLOTS, TCP_JOIN_SLOT_BYTES, TcpJoiner } from "../../src/dataplane/join_tcp.ts";
import { csumFold } from "../../src/wire/checksum.ts";
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
  const j = new TcpJoiner(u8, AT, vnet, (off, len) => { sent.push(u8.slice(off, off + len)); return len; }, joined, 0);
  // As the worker does: a refused packet is written at once, after what add() flushed.
  const add = (pkt: Uint8Array, partial = 0, joinable = true) => {
    u8.set(pkt, 0);
    const took = j.add(0, pkt.length, partial, joinable);
    if (!took) sent.push(pkt.slice());
    return took;
  };
  return { j, sent, joined, add };
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
  assert.is(joined[0], 1);
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

s("a packet of a staged flow that cannot wait (a pure ACK, a super-packet) goes out after the staged segment", () => {
  for (const [what, pkt, joinable] of [["pure ACK", seg4(236, new Uint8Array(0), ACK), true], ["super-packet", seg4(236, text(24)), false]] as const) {
    const { j, sent, add } = setup();
    assert.ok(add(seg4(0, text(236))));
    assert.not.ok(add(pkt, 0, joinable), `${what} is refused`);
    assert.is(sent.length, 2, `${what}: written right away`);
    assert.is(sent[0].length, 40 + 236, `${what}: after the staged segment`);
    j.flush();
    assert.is(sent.length, 2);
  }
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
