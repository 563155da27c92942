// The UDP coalescer (dataplane/coalesce.ts): what it joins, what it refuses, and that the
// super-packet it writes is exactly what the kernel's UDP segmentation turns back into the
// original datagrams (headers, lengths, the partial checksum, the virtio header).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { COALESCE_SLOTS, COALESCE_SLOT_BYTES, UdpCoalescer } from "../../src/dataplane/coalesce.ts";
import { csumAdd, csumFold } from "../../src/wire/checksum.ts";
import { ipPseudoSum } from "../../src/wire/ip.ts";
import { VNET_F_NEEDS_CSUM, VNET_GSO_UDP_L4, vnetCsumOffset, vnetCsumStart, vnetFlags, vnetGsoSize, vnetGsoType } from "../../src/wire/vnet.ts";
import { buildIp4, buildIp6, checksumsValid } from "../fixtures/builder.ts";
import { CLIENT, CLIENT6, RS1, RS2, RS6 } from "../fixtures/snapshots.ts";

const AT = 70_000;

function setup() {
  const u8 = new Uint8Array(AT + COALESCE_SLOTS * COALESCE_SLOT_BYTES);
  const sent: Uint8Array[] = [];
  const merged = new Float64Array(1);
  const c = new UdpCoalescer(u8, AT, (off, len) => { sent.push(u8.slice(off, off + len)); return len; }, merged, 0);
  const add = (pkt: Uint8Array, partial = 0) => { u8.set(pkt, 0); return c.add(0, pkt.length, partial); };
  return { c, sent, merged, add };
}

const dgram = (i: number, size = 100, src = RS1) =>
  buildIp4({ src, dst: CLIENT, proto: "udp", sport: 53, dport: 40000, payload: new Uint8Array(size).fill(i) });

/** What the kernel's UDP GSO does with a super-packet: the datagrams, checksums filled in. */
function segment(frame: Uint8Array): Uint8Array[] {
  const ip = frame.subarray(10);
  const seg = vnetGsoSize(frame, 0);
  const l4 = vnetCsumStart(frame, 0);
  const payload = ip.subarray(l4 + 8);
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += seg) {
    const chunk = payload.subarray(off, Math.min(off + seg, payload.length));
    const d = new Uint8Array(l4 + 8 + chunk.length);
    d.set(ip.subarray(0, l4 + 8));
    d.set(chunk, l4 + 8);
    const dv = new DataView(d.buffer);
    dv.setUint16(2, d.length);
    dv.setUint16(4, dv.getUint16(4) + out.length);
    dv.setUint16(10, 0);
    dv.setUint16(10, ~csumFold(csumAdd(d, 0, 20, 0)) & 0xffff);
    dv.setUint16(l4 + 4, d.length - l4);
    dv.setUint16(l4 + 6, 0);
    dv.setUint16(l4 + 6, ~csumFold(csumAdd(d, l4, d.length - l4, ipPseudoSum(d, 0, 17, d.length - l4))) & 0xffff);
    out.push(d);
  }
  return out;
}

const s = suite("coalesce: UDP datagrams of a flow into one GSO write");

s("three full datagrams and a short last one become one super-packet that segments back into them", () => {
  const { c, sent, merged, add } = setup();
  const originals = [dgram(1), dgram(2), dgram(3), dgram(4, 40)];
  for (const d of originals) assert.ok(add(d));
  assert.is(sent.length, 0, "nothing written before the flush");
  c.flush();
  assert.is(sent.length, 1);
  const f = sent[0];
  assert.equal([vnetFlags(f, 0), vnetGsoType(f, 0), vnetGsoSize(f, 0), vnetCsumStart(f, 0), vnetCsumOffset(f, 0)], [VNET_F_NEEDS_CSUM, VNET_GSO_UDP_L4, 100, 20, 6]);
  const ip = f.subarray(10);
  assert.ok(csumFold(csumAdd(ip, 0, 20, 0)) === 0xffff, "IPv4 header checksum");
  assert.is(new DataView(ip.buffer, ip.byteOffset).getUint16(2), 28 + 340);
  const back = segment(f);
  assert.is(back.length, 4);
  back.forEach((d, i) => {
    assert.ok(checksumsValid(d), `datagram ${i}`);
    assert.equal(d.subarray(28), originals[i].subarray(28));
  });
  assert.is(merged[0], 1);
});

s("flows interleave in their own slots; each keeps its order; a lone datagram goes out as it came", () => {
  const { c, sent, add } = setup();
  add(dgram(1, 100, RS1)); add(dgram(2, 100, RS2)); add(dgram(3, 100, RS1));
  add(buildIp4({ src: RS1, dst: CLIENT, proto: "udp", sport: 53, dport: 40001, payload: "x" }), 1);
  c.flush();
  assert.is(sent.length, 3);
  const rs1 = sent.find((f) => vnetGsoType(f, 0) === VNET_GSO_UDP_L4)!;
  assert.equal(segment(rs1).map((d) => d[28]), [1, 3]);
  const lone = sent.filter((f) => vnetGsoType(f, 0) === 0);
  assert.is(lone.length, 2);
  assert.is(vnetFlags(lone.find((f) => f[10 + 23] === 0x41)!, 0), VNET_F_NEEDS_CSUM, "a partial one stays partial");
});

s("a larger datagram, a fragment, TCP and IPv4 options are not joined", () => {
  const { c, sent, add } = setup();
  add(dgram(1, 100)); add(dgram(2, 200));
  c.flush();
  assert.is(sent.length, 2, "a larger datagram starts a new super-packet");
  const frag = dgram(3); frag[6] = 0x20;
  assert.not.ok(add(frag));
  assert.not.ok(add(buildIp4({ src: RS1, dst: CLIENT, sport: 53, dport: 40000, flags: 0x10, payload: "t" })));
  const opt = new Uint8Array(dgram(4).length + 4); opt.set(dgram(4).subarray(0, 20)); opt[0] = 0x46;
  assert.not.ok(add(opt));
});

s("IPv6 datagrams join too", () => {
  const { c, sent, add } = setup();
  for (let i = 0; i < 3; i++) add(buildIp6({ src: RS6[0], dst: CLIENT6, proto: "udp", sport: 53, dport: 40000, payload: new Uint8Array(50).fill(i) }));
  c.flush();
  assert.is(sent.length, 1);
  assert.equal([vnetGsoType(sent[0], 0), vnetCsumStart(sent[0], 0), vnetGsoSize(sent[0], 0)], [VNET_GSO_UDP_L4, 40, 50]);
  assert.is(new DataView(sent[0].buffer).getUint16(10 + 4), 8 + 150, "payload length");
});

s.run();
