// Micro-bench: ns per frame through the XDP hand-off's user-space path
// (dataplane/xdp_path.ts): a frame in an AF_XDP receive ring → checksum state → pipeline
// (NAT, established) → next hop → TTL → checksum (left to the kernel with TX metadata,
// or completed here) → joiner → a send frame in another socket's ring. The rings are in
// ordinary memory and this bench plays the kernel (io/xsk.ts's memRing): it copies each
// frame into a fill-ring frame and takes the sent ones back, and that work alone is
// timed and subtracted. System calls (the send kick) are not made: what is left is the
// JavaScript a frame costs.
//
// One round trip is what a keep-alive request makes through the balancer: the client's
// request (one segment), then the real server's response as nginx sends it, headers and
// body in two segments that the joiner makes one (with --coalesce, the default). Frames
// arrive as a veth peer delivers them, with a partial transport checksum.
//   bun bench/xdp_path.ts [round trips]   (default 2 000 000)
//   JOIN=0   without the joiner (--coalesce off)
//   PARTIAL=0  frames with complete checksums (as from a NIC)
//   TX_CSUM=0  sockets without TX metadata: tslb completes partial checksums itself
//   --short or BENCH_SHORT=1: a smoke run, figures not meaningful
// Also proves the path allocates nothing: the heap object count must stay flat.
import { heapStats } from "bun:jsc";
import { ConnTable } from "../src/conntrack/table.ts";
import { Pipeline } from "../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../src/dataplane/snapshot.ts";
import { XDP_STAGING_BYTES, XdpPath } from "../src/dataplane/xdp_path.ts";
import { MemDevice } from "../src/io/mem_device.ts";
import { XSK_RING, XSK_UMEM_BYTES, XskSocket, memRing, type Ring } from "../src/io/xsk.ts";
import { COUNTER_WORDS, MAX_DEST, MISC_BASE, M_XDP_TUN } from "../src/stats/counters.ts";
import { csumFold } from "../src/wire/checksum.ts";
import { Frame } from "../src/wire/frame.ts";
import { ipPseudoSum } from "../src/wire/ip.ts";
import { buildIp4, fillL4Csum } from "../test/fixtures/builder.ts";
import { CLIENT, RS1, VIP, natSnapshot } from "../test/fixtures/snapshots.ts";

const SHORT = process.env.BENCH_SHORT === "1" || process.argv.includes("--short");
const ARGS = process.argv.slice(2).filter((a) => a !== "--short");
const N = Number(ARGS[0] ?? (SHORT ? 20_000 : 2_000_000));
const JOIN = process.env.JOIN !== "0";
const PARTIAL = process.env.PARTIAL !== "0";
const TX_CSUM = process.env.TX_CSUM !== "0";
const ROUNDS = SHORT ? 2 : 8;
const HEAP_SLACK = 100;

const ACK = 0x10, PSH = 0x08, SYN = 0x02;
const LB_MAC = [0x0200, 0x000000aa] as const;
const CLIENT_MAC = [0x0200, 0x00000002] as const;
const RS_MAC = [0x0200, 0x0000000b] as const;
const REQUEST = "GET / HTTP/1.1\r\nHost: 198.18.0.100\r\nUser-Agent: wrk\r\n\r\n";
const HEADERS = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 18:00:00 GMT\r\nContent-Type: text/html\r\n" +
  "Content-Length: 41\r\nLast-Modified: Thu, 26 Nov 2026 17:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"0-28\"\r\nAccept-Ranges: bytes\r\n\r\n";
const BODY = "<html><body>tslb bench page</body></html>";

/** An AF_XDP socket whose "kernel" is this bench: a flush publishes, and sending is the bench's (no kick). */
class BenchSocket extends XskSocket {
  override flushTx(): number {
    const prod = (this as unknown as { txProd: number }).txProd;
    sent += (prod - this.r.tx.u32[this.r.tx.prod]) >>> 0;
    Atomics.store(this.r.tx.u32, this.r.tx.prod, prod);
    return 0;
  }
  constructor(name: string, macLo: number, base: number, readonly r: { rx: Ring; tx: Ring; fill: Ring; comp: Ring }) {
    super(name, -1, 1, 0x0200, macLo, base, r.rx, r.tx, r.fill, r.comp, area.dv, TX_CSUM);
  }
}
let sent = 0;

function socket(i: number, macLo: number): BenchSocket {
  return new BenchSocket(`bench${i}`, macLo, i * XSK_UMEM_BYTES, { rx: memRing(16), tx: memRing(16), fill: memRing(8), comp: memRing(8) });
}

/**
 * An Ethernet frame with the IP packet `ip` (its TCP sequence, ACK number and flags set
 * here), the transport checksum left partial as a veth peer leaves it (PARTIAL=0: complete).
 */
function frame(dst: readonly number[], src: readonly number[], ip: Uint8Array, seq: number, ack: number, flags: number): Uint8Array {
  const idv = new DataView(ip.buffer, ip.byteOffset, ip.length);
  idv.setUint32(24, seq); idv.setUint32(28, ack); ip[33] = flags;
  if (PARTIAL) idv.setUint16(36, csumFold(ipPseudoSum(ip, 0, 6, ip.length - 20)));
  else fillL4Csum(ip);
  const b = new Uint8Array(14 + ip.length);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, dst[0]); dv.setInt32(2, dst[1]);
  dv.setUint16(6, src[0]); dv.setInt32(8, src[1]);
  dv.setUint16(12, 0x0800);
  b.set(ip, 14);
  return b;
}

/**
 * The "kernel" receives area[at, at+len) on socket `s`: into the next fill frame (after
 * 256 bytes of headroom), then the receive ring.
 */
function deliver(area: Uint8Array, s: BenchSocket, at: number, len: number): void {
  const f = s.r.fill, rx = s.r.rx;
  const cons = f.u32[f.cons];
  const addr = f.u32[f.desc + (cons & (XSK_RING - 1)) * 2] + 256;
  f.u32[f.cons] = (cons + 1) >>> 0;
  area.copyWithin(s.base + addr, at, at + len);
  const prod = rx.u32[rx.prod];
  const d = rx.desc + ((prod & (XSK_RING - 1)) << 2);
  rx.u32[d] = addr; rx.u32[d + 2] = len;
  Atomics.store(rx.u32, rx.prod, (prod + 1) >>> 0);
}

/** The "kernel" sends what socket `s` published: each frame back through the completion ring. */
function complete(s: BenchSocket): void {
  const tx = s.r.tx, c = s.r.comp;
  let cons = tx.u32[tx.cons];
  const prod = tx.u32[tx.prod];
  let cp = c.u32[c.prod];
  while (cons !== prod) {
    c.u32[c.desc + ((cp & (XSK_RING - 1)) << 1)] = tx.u32[tx.desc + ((cons & (XSK_RING - 1)) << 2)];
    c.u32[c.desc + ((cp & (XSK_RING - 1)) << 1) + 1] = 0;
    cp = (cp + 1) >>> 0;
    cons = (cons + 1) >>> 0;
  }
  tx.u32[tx.cons] = cons;
  Atomics.store(c.u32, c.prod, cp);
}

const table = ConnTable.create(1 << 16, MAX_DEST);
const counters = new Float64Array(COUNTER_WORDS);
const snap = natSnapshot(1, "rr");
snap.services[0].dests = snap.services[0].dests.slice(0, 1); // one real server: RS1:8080
const pl = new Pipeline(new ActiveConfig(snap, table.destState, null), table, counters);
/** The packet area, then this bench's pristine frames (PACKED_AT: copies stay in one buffer). */
const PACKED_AT = 2 * XSK_UMEM_BYTES + XDP_STAGING_BYTES;
const area = Frame.alloc(PACKED_AT + 4096);
const socks = [socket(0, LB_MAC[1]), socket(1, LB_MAC[1] + 1)];
const tun = new MemDevice("tun", false);
const path = new XdpPath(socks, area, pl, counters, tun, false, null, null, 2 * XSK_UMEM_BYTES, JOIN, [false, false]);
pl.nowMs = 1000;

// The connection: SYN (to the TUN: no way to RS1 learnt yet), SYN-ACK (teaches it), ACK.
const CPORT = 40000;
const c2v = (payload: string | undefined, flags: number, seq: number, ack: number) =>
  frame(LB_MAC, CLIENT_MAC, buildIp4({ src: CLIENT, dst: VIP, sport: CPORT, dport: 80, flags, payload }), seq, ack, flags);
const s2c = (payload: string | undefined, flags: number, seq: number, ack: number) =>
  frame([0x0200, LB_MAC[1] + 1], RS_MAC, buildIp4({ src: RS1, dst: CLIENT, sport: 8080, dport: CPORT, flags, payload }), seq, ack, flags);
const one = (s: number, b: Uint8Array) => {
  area.u8.set(b, PACKED_AT);
  deliver(area.u8, socks[s], PACKED_AT, b.length);
  path.receive(s, 1);
  path.flush();
  for (const k of socks) complete(k);
};
one(0, c2v(undefined, SYN, 100, 0));
one(1, s2c(undefined, SYN | ACK, 500, 101));
one(0, c2v(undefined, ACK, 101, 501));
// The steady state: request, then the response's two segments in one batch. The sequence
// numbers repeat each round trip (neither the pipeline nor the joiner tracks them across batches).
const request = c2v(REQUEST, ACK | PSH, 101, 501);
const headers = s2c(HEADERS, ACK, 501, 101 + REQUEST.length);
const body = s2c(BODY, ACK | PSH, 501 + HEADERS.length, 101 + REQUEST.length);
area.u8.set(request, PACKED_AT); area.u8.set(headers, PACKED_AT + request.length);
area.u8.set(body, PACKED_AT + request.length + headers.length);
const [rqLen, hdLen, bdLen] = [request.length, headers.length, body.length];

/** `count` round trips; with `dry`, only the bench's kernel work (delivering, completing). */
function run(count: number, dry: boolean): void {
  const u8 = area.u8;
  for (let k = 0; k < count; k++) {
    deliver(u8, socks[0], PACKED_AT, rqLen);
    if (dry) socks[0].rxRelease(1); else { path.receive(0, 1); path.flush(); }
    complete(socks[1]);
    deliver(u8, socks[1], PACKED_AT + rqLen, hdLen);
    deliver(u8, socks[1], PACKED_AT + rqLen + hdLen, bdLen);
    if (dry) socks[1].rxRelease(2); else { path.receive(1, 1); path.flush(); }
    complete(socks[0]);
  }
}

const WARM = SHORT ? 5_000 : 50_000;
run(WARM, false);
run(WARM, true);
const tunBefore = counters[MISC_BASE + M_XDP_TUN];
const per = Math.floor(N / ROUNDS);
let dryNs = Infinity;
for (let r = 0; r < 3; r++) {
  const t0 = Bun.nanoseconds();
  run(per, true);
  dryNs = Math.min(dryNs, Bun.nanoseconds() - t0);
}
Bun.gc(true);
const h0 = heapStats().objectCount;
const rounds: number[] = [];
sent = 0;
for (let r = 0; r < ROUNDS; r++) {
  const t0 = Bun.nanoseconds();
  run(per, false);
  rounds.push((Bun.nanoseconds() - t0 - dryNs) / per / 3);
}
const heap = heapStats().objectCount - h0;
rounds.sort((a, b) => a - b);
const want = (JOIN ? 2 : 3) * per * ROUNDS;
console.log(`XDP hand-off, user space per received frame: NAT IPv4 keep-alive round trips (request, 2-segment response), ` +
  `${per * ROUNDS} of them, ${ROUNDS} rounds; joiner ${JOIN ? "on" : "off"}, frames ${PARTIAL ? "partial" : "complete"}, ` +
  `TX checksum offload ${TX_CSUM ? "on" : "off"}\n`);
console.log("| path | ns/frame (median) | ns/frame (best round) | frames sent | heap objects |");
console.log("|---|---:|---:|---:|---:|");
console.log(`| xdp_path NAT IPv4 | ${rounds[ROUNDS >> 1].toFixed(0)} | ${rounds[0].toFixed(0)} | ${sent} | ${heap} |`);
if (sent !== want) throw new Error(`sent ${sent} frames, want ${want} (to the TUN: ${counters[MISC_BASE + M_XDP_TUN] - tunBefore})`);
if (heap > HEAP_SLACK) {
  console.error(`FAIL: the XDP path allocated: ${heap} heap objects over ${per * ROUNDS} round trips`);
  process.exit(1);
}
