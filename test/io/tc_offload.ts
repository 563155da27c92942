// The bulk offload's tc program (io/tc_offload.ts), run by the kernel on built frames
// (BPF_PROG_TEST_RUN): a frame of an offloaded connection comes out with the entry's
// addresses and ports and checksums that a full recomputation agrees with, IPv4 and
// IPv6, both directions, and is counted (IP bytes); SYN, FIN and RST frames, frames of
// other connections and fragments come out as they went in. (A test run's socket buffer
// carries a complete checksum; the partial one of a super-packet is the e2e test's, where
// the balancer finishes it in software and the receiver checks it.)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadProgram, updateElem } from "../../src/io/bpf.ts";
import { bpf, bufPtr, close } from "../../src/io/libc.ts";
import {
  BPF_PROG_TYPE_SCHED_CLS, OFFLOAD6_BYTES_AT, OFFLOAD6_PACKETS_AT, OFFLOAD_BYTES_AT, OFFLOAD_PACKETS_AT, OFFLOAD_VALUE6_BYTES,
  OFFLOAD_VALUE_BYTES, type OffloadMaps, TCX_NEXT, createOffloadMaps, tcOffloadProgram,
} from "../../src/io/tc_offload.ts";
import { buildIp4, buildIp6, checksumsValid, checksumsValid6, ip4, ip6 } from "../fixtures/builder.ts";

const BPF_MAP_LOOKUP_ELEM = 1, BPF_PROG_TEST_RUN = 10;
const CIP = "198.18.0.2", VIP = "198.18.0.100", RIP = "198.18.1.11";
const CIP6 = "2001:2::2", VIP6 = "2001:2::100", RIP6 = "2001:2:0:1::11";

/** addresses (4 or 16 bytes each, network order) and ports, as the maps' keys and values lay them out. */
function tuple(src: number[], dst: number[], sport: number, dport: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  [...src, ...dst].forEach((w, i) => dv.setInt32(i * 4, w));
  dv.setUint16(src.length * 8, sport);
  dv.setUint16(src.length * 8 + 2, dport);
  return b;
}
const v4 = (a: string) => [ip4(a)];

function ether(ip: Uint8Array, type: number): Uint8Array {
  const f = new Uint8Array(14 + ip.length);
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2], 0);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(ip, 14);
  return f;
}

/** Runs the program once on `frame`: its return value and the frame it leaves. */
function run(prog: number, frame: Uint8Array): { ret: number; out: Uint8Array } {
  const out = new Uint8Array(frame.length + 256);
  const attr = new Uint8Array(80);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, prog, true);
  dv.setUint32(8, frame.length, true);
  dv.setUint32(12, out.length, true);
  dv.setBigUint64(16, BigInt(bufPtr(frame)), true);
  dv.setBigUint64(24, BigInt(bufPtr(out)), true);
  dv.setUint32(32, 1, true);
  bpf(BPF_PROG_TEST_RUN, attr, "bpf(BPF_PROG_TEST_RUN)");
  return { ret: dv.getInt32(4, true), out: out.slice(0, dv.getUint32(12, true)) };
}

/** The entry's [frames, bytes]. */
function counts(map: number, key: Uint8Array, size: number, packetsAt: number, bytesAt: number): [number, number] {
  const value = new Uint8Array(size);
  const attr = new Uint8Array(32);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, map, true);
  dv.setBigUint64(8, BigInt(bufPtr(key)), true);
  dv.setBigUint64(16, BigInt(bufPtr(value)), true);
  bpf(BPF_MAP_LOOKUP_ELEM, attr, "bpf(BPF_MAP_LOOKUP_ELEM)");
  const v = new DataView(value.buffer);
  return [Number(v.getBigUint64(packetsAt, true)), Number(v.getBigUint64(bytesAt, true))];
}

const s = suite("tc bulk offload program");
let maps: OffloadMaps;
let prog = -1;

s.before(() => {
  maps = createOffloadMaps();
  prog = loadProgram(BPF_PROG_TYPE_SCHED_CLS, tcOffloadProgram(maps), "(test)");
  // NAT 198.18.0.2:40000 -> VIP:80 on 198.18.1.11:8080, both directions, and the same in IPv6.
  updateElem(maps.v4, tuple(v4(CIP), v4(VIP), 40000, 80, 12), tuple(v4(CIP), v4(RIP), 40000, 8080, OFFLOAD_VALUE_BYTES));
  updateElem(maps.v4, tuple(v4(RIP), v4(CIP), 8080, 40000, 12), tuple(v4(VIP), v4(CIP), 80, 40000, OFFLOAD_VALUE_BYTES));
  updateElem(maps.v6, tuple(ip6(RIP6), ip6(CIP6), 8080, 40000, 36), tuple(ip6(VIP6), ip6(CIP6), 80, 40000, OFFLOAD_VALUE6_BYTES));
});

s.after(() => {
  if (prog >= 0) close(prog);
  close(maps.v4);
  close(maps.v6);
});

const payload = new Uint8Array(1400).map((_, i) => (i * 7) & 0xff);

s("IPv4, toward the real server: destination and port rewritten, both checksums right, counted", () => {
  const ip = buildIp4({ src: CIP, dst: VIP, sport: 40000, dport: 80, flags: 0x18, payload });
  const { ret, out } = run(prog, ether(ip, 0x0800));
  assert.is(ret, TCX_NEXT);
  const want = buildIp4({ src: CIP, dst: RIP, sport: 40000, dport: 8080, flags: 0x18, payload });
  assert.equal(out.subarray(14), want);
  assert.ok(checksumsValid(out.subarray(14)));
  assert.equal(counts(maps.v4, tuple(v4(CIP), v4(VIP), 40000, 80, 12), OFFLOAD_VALUE_BYTES, OFFLOAD_PACKETS_AT, OFFLOAD_BYTES_AT), [1, ip.length]);
});

s("IPv4, the reply: source becomes the VIP and its port", () => {
  const ip = buildIp4({ src: RIP, dst: CIP, sport: 8080, dport: 40000, flags: 0x10, payload });
  const { out } = run(prog, ether(ip, 0x0800));
  assert.equal(out.subarray(14), buildIp4({ src: VIP, dst: CIP, sport: 80, dport: 40000, flags: 0x10, payload }));
});

s("SYN, FIN and RST are left to tslb; other connections and fragments pass unchanged", () => {
  for (const flags of [0x02, 0x11, 0x14]) {
    const f = ether(buildIp4({ src: CIP, dst: VIP, sport: 40000, dport: 80, flags, payload }), 0x0800);
    assert.equal(run(prog, f).out, f, `flags ${flags}`);
  }
  const other = ether(buildIp4({ src: CIP, dst: VIP, sport: 40001, dport: 80, flags: 0x10, payload }), 0x0800);
  assert.equal(run(prog, other).out, other);
  const frag = buildIp4({ src: CIP, dst: VIP, sport: 40000, dport: 80, flags: 0x10, payload });
  frag[6] = 0x20; // MF
  const f = ether(frag, 0x0800);
  assert.equal(run(prog, f).out, f);
  // Counted once, by the first test only.
  assert.equal(counts(maps.v4, tuple(v4(CIP), v4(VIP), 40000, 80, 12), OFFLOAD_VALUE_BYTES, OFFLOAD_PACKETS_AT, OFFLOAD_BYTES_AT)[0], 1);
});

s("IPv6, the reply: source rewritten, the TCP checksum right, counted", () => {
  const ip = buildIp6({ src: RIP6, dst: CIP6, sport: 8080, dport: 40000, flags: 0x10, payload });
  const { ret, out } = run(prog, ether(ip, 0x86dd));
  assert.is(ret, TCX_NEXT);
  assert.equal(out.subarray(14), buildIp6({ src: VIP6, dst: CIP6, sport: 80, dport: 40000, flags: 0x10, payload }));
  assert.ok(checksumsValid6(out.subarray(14)));
  assert.equal(counts(maps.v6, tuple(ip6(RIP6), ip6(CIP6), 8080, 40000, 36), OFFLOAD_VALUE6_BYTES, OFFLOAD6_PACKETS_AT, OFFLOAD6_BYTES_AT), [1, ip.length]);
});

s("short frames, ARP and IPv4 with options pass unchanged", () => {
  const short = ether(buildIp4({ src: CIP, dst: VIP, sport: 40000, dport: 80, flags: 0x10 }), 0x0800).subarray(0, 40);
  assert.equal(run(prog, short.slice()).out, short);
  const arp = ether(new Uint8Array(28), 0x0806);
  assert.equal(run(prog, arp).out, arp);
  const ip = buildIp4({ src: CIP, dst: VIP, sport: 40000, dport: 80, flags: 0x10, payload });
  ip[0] = 0x46;
  const opt = ether(ip, 0x0800);
  assert.equal(run(prog, opt).out, opt);
});

s.run();
