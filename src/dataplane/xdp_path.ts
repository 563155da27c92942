// The worker's side of the XDP hand-off (--xdp): frames the XDP program took into tslb's
// AF_XDP sockets go through the pipeline in place, in the packet area, and out of the
// socket of the interface that reaches the new destination, as Ethernet frames. The
// host's IP stack, routing, bridge and the TUN are skipped both ways.
//
// Next hops are learnt, not looked up (dataplane/next_hops.ts). A frame that the pipeline
// forwards as part of a connection records its source address with the interface and
// source MAC it came from: a client's frame in the clients' table, a real server's reply
// in the servers' table. A packet toward a server is sent by the servers' table, one
// toward a client by the clients' table; so a frame that claims a server's address from
// the client side (a spoofed SYN, say) can only ever teach the way to a client, never
// divert traffic meant for the server. A destination not learnt yet (the first SYN toward
// a real server), a TTL running out, or a verdict the hand-off does not send itself go to
// the TUN as the TUN path would write them: the kernel routes them (resolving the real
// server's MAC as it does), and the server's answer teaches the hand-off the way.
//
// A DR service's frames: the pipeline writes the real server's MAC (resolved on the TAP)
// in front, and the frame leaves through the TAP, as on the TUN path; or, once the server
// has been heard from on a socket of a port of the DR bridge, out of that socket, past the
// bridge as well. What teaches the way is the server's replies: when this host is also the
// real servers' router, DR replies cross it, and with --xdp-forward the XDP program takes
// them (src: a DR service's VIP and port). They are routed on to the client as a router
// would (TTL, next hop learnt from the client's frames), without the connection table:
// DR replies bypass the balancer's state, as in IPVS. The gain over the host's bridge
// and routing is the hand-off's (no skb path through the host's stack; with --xdp-join,
// a response's segments also reach the client as one).
//
// One hop is made here: the TTL goes down by one (the kernel does it on the TUN path). A
// frame from AF_XDP carries no offload state: a transport checksum that a local sender
// left partial (a veth peer does) holds the pseudo-header sum, and is recognised by it
// (a complete checksum equal to it is completed to itself: the same value). It leaves a
// socket still partial where the kernel takes AF_XDP TX metadata (io/xsk.ts: the kernel
// or the NIC completes it), and is completed here before it leaves one otherwise; an
// offloading TUN gets it as partial.
//
// With --xdp-join (on by default, with --coalesce) a flow's back-to-back small TCP
// segments are joined before they leave a socket, by the TUN path's joiner
// (dataplane/join_tcp.ts) over a staging area at the end of the packet area: nginx's
// two-segment responses reach the client as one, and its ACK rides on its next request
// (12–19 % more requests per second; a somewhat longer tail at 50 connections:
// bench/RESULTS.md, 19:46–20:21).
import type { Device } from "../io/device.ts";
import { XskSocket } from "../io/xsk.ts";
import { DROP_BASE, MISC_BASE, M_RX, M_TX, M_XDP_DR, M_XDP_RX, M_XDP_TUN } from "../stats/counters.ts";
import { csumFold } from "../wire/checksum.ts";
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ethWrite } from "../wire/ethernet.ts";
import { DROP } from "../wire/drop.ts";
import type { Frame } from "../wire/frame.ts";
import { csumComplete } from "../wire/gso.ts";
import { get16, get32, ipPseudoSum } from "../wire/ip.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "../wire/ipv4.ts";
import { VNET_HDR_LEN, vnetWriteFor } from "../wire/vnet.ts";
import { decrementTtl } from "../forward/ttl.ts";
import type { Pipeline } from "./pipeline.ts";
import type { PacketLock } from "./lock.ts";
import type { Pkt } from "../wire/pkt.ts";
import { NextHops } from "./next_hops.ts";
import { VERDICT_PASS, VERDICT_TX, VERDICT_TX_L2 } from "./verdict.ts";
import { TCP_JOIN_SLOTS, TCP_JOIN_SLOT_BYTES, TcpJoiner } from "./join_tcp.ts";
import { M_JOINED } from "../stats/counters.ts";

/** The data path's own bytes at the end of the packet area: the joiner's staging slots. */
export const XDP_STAGING_BYTES = TCP_JOIN_SLOTS * TCP_JOIN_SLOT_BYTES;
/** Joiner device numbers: the TAP's as in the worker (the TUN's, 0, is not used here), then the sockets'. */
const JOIN_TAP = 1;
const JOIN_DEV0 = 2;

const ETH = 14;
/**
 * Flows that sent a TCP super-packet through the TUN lately ("bulk"): their frames from
 * the sockets follow through the TUN too for BULK_MS, so that they cannot overtake the
 * super-packets still on the kernel's path. (A super-packet cannot take the socket path:
 * a socket frame holds one MTU.) The larger cause of reordering is kept out by the XDP
 * program, which leaves every frame over 1 024 bytes to the kernel, and a bulk flow's
 * small frames after it (io/xdp.ts); this catches the frames it took just before. A
 * collision here only sends a flow the slower way.
 */
const BULK_SLOTS = 1 << 12;
const BULK_MS = 100;

export class XdpPath {
  /** Where clients and real servers were last heard from (see the top of this file), per family. */
  private readonly clients = new NextHops();
  private readonly servers = new NextHops();
  private readonly clients6 = new NextHops(1 << 14);
  private readonly servers6 = new NextHops(1 << 14);
  /** DR real servers by MAC ([hi, lo, 0, 0]): the socket their replies came from. */
  private readonly drServers = new NextHops(1 << 10);
  /** Joins a flow's back-to-back small segments before they leave a socket (--coalesce), or null. */
  private readonly joiner: TcpJoiner | null;
  private readonly bulkKey = new Int32Array(BULK_SLOTS);
  private readonly bulkMs = new Float64Array(BULK_SLOTS);

  constructor(
    private readonly socks: XskSocket[],
    private readonly area: Frame,
    private readonly pipeline: Pipeline,
    private readonly counters: Float64Array,
    /** The main TUN, and whether it carries a virtio_net_hdr. */
    private readonly tun: Device,
    private readonly tunVnet: boolean,
    private readonly tap: Device | null,
    private readonly lock: PacketLock | null,
    /** Where the staging area starts in the packet area (XDP_STAGING_BYTES long), and whether to join. */
    stagingAt: number,
    join: boolean,
    /**
     * Per socket, whether its interface is a port of the DR bridge: only there may a DR
     * reply teach where its server is (a client cannot claim a server's MAC from outside).
     */
    private readonly drSegment: readonly boolean[],
  ) {
    const out = (dev: number, off: number, len: number, partial: number) =>
      dev === JOIN_TAP ? this.tapSend(off, len) : this.transmit(dev - JOIN_DEV0, off, len, partial);
    this.joiner = join ? new TcpJoiner(area.u8, stagingAt, false, out, counters, MISC_BASE + M_JOINED) : null;
  }

  /** A hash of the TCP/UDP packet's addresses and ports (as it leaves), never 0. */
  private static flowKey(u8: Uint8Array, p: Pkt): number {
    let a = p.l3 + 12, b = p.l3 + 16;
    let k = 0;
    if (p.ipv === 6) {
      // Fold the first three words of each address in; the last ones go in below.
      for (let w = 0; w < 3; w++) k ^= Math.imul(get32(u8, p.l3 + 8 + 4 * w) ^ Math.imul(get32(u8, p.l3 + 24 + 4 * w), 0x27d4eb2f), 0x165667b1);
      a = p.l3 + 20;
      b = p.l3 + 36;
    }
    k = (k ^ get32(u8, a) ^ Math.imul(get32(u8, b), 0x9e3779b1) ^ Math.imul(get32(u8, p.l4), 0x85ebca6b)) | 0;
    return k === 0 ? 1 : k;
  }

  /** The packet just processed from the TUN, a super-packet, leaves through it: its flow is bulk for a while. */
  noteBulk(u8: Uint8Array, p: Pkt, nowMs: number): void {
    const k = XdpPath.flowKey(u8, p);
    const s = (k >>> 20) & (BULK_SLOTS - 1);
    this.bulkKey[s] = k;
    this.bulkMs[s] = nowMs;
  }

  private isBulk(u8: Uint8Array, p: Pkt): boolean {
    const k = XdpPath.flowKey(u8, p);
    const s = (k >>> 20) & (BULK_SLOTS - 1);
    return this.bulkKey[s] === k && this.pipeline.nowMs - this.bulkMs[s] < BULK_MS;
  }

  /** Takes every frame waiting on socket `i`. */
  receive(i: number, now: number): void {
    const sock = this.socks[i];
    const n = sock.rxCount();
    for (let k = 0; k < n; k++) this.frame(i, sock.rxAddr(k), sock.rxLen(k), now);
    if (n > 0) sock.rxRelease(n);
  }

  private frame(i: number, at: number, len: number, now: number): void {
    const u8 = this.area.u8;
    const c = this.counters;
    c[MISC_BASE + M_RX]++;
    c[MISC_BASE + M_XDP_RX]++;
    const l3 = at + ETH;
    // The XDP program took IPv4 without options, not a fragment, or IPv6 without extension
    // headers; TCP or UDP.
    const v6 = u8[at + 12] === 0x86;
    if (len < ETH + (v6 ? 40 : 20)) { c[DROP_BASE + DROP.TRUNCATED]++; return; }
    // The sender, learnt once the pipeline has placed the frame in a connection.
    const from = v6 ? l3 + 8 : l3 + 12;
    const f0 = get32(u8, from);
    const f1 = v6 ? get32(u8, from + 4) : 0;
    const f2 = v6 ? get32(u8, from + 8) : 0;
    const f3 = v6 ? get32(u8, from + 12) : 0;
    const fromHi = (u8[at + 6] << 8) | u8[at + 7];
    const fromLo = get32(u8, at + 8) | 0;
    const p = this.pipeline.pkt;
    p.gsoType = 0;
    p.csumPartial = 0;
    const proto = u8[l3 + (v6 ? 6 : 9)];
    const end = l3 + Math.min(v6 ? 40 + get16(u8, l3 + 4) : get16(u8, l3 + 2), len - ETH);
    const l4 = l3 + (v6 ? 40 : 20);
    const csumAt = proto === IPPROTO_TCP ? l4 + 16 : l4 + 6;
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && csumAt + 2 <= end) {
      const field = get16(u8, csumAt);
      if (field !== 0 && field === csumFold(ipPseudoSum(u8, l3, proto, end - l4))) {
        p.csumPartial = 1;
        p.csumStart = l4;
        p.csumAt = csumAt;
      }
    }
    // A DR real server's reply (taken by its direction-2 key): see the top of this file.
    // Without DR services a NAT frame skips the lookup.
    const cfg = this.pipeline.cfg;
    if (v6 ? cfg.drVips6.length !== 0 && cfg.isDrVip6(f0, f1, f2, f3) : cfg.drVips.length !== 0 && cfg.isDrVip4(f0)) {
      c[MISC_BASE + M_XDP_DR]++;
      if (this.drSegment[i]) this.drServers.learn(fromHi, fromLo, 0, 0, i, fromHi, fromLo, this.pipeline.nowMs);
      p.ipv = v6 ? 6 : 4;
      p.l3 = l3;
      p.l4 = l4;
      p.start = l3;
      p.len = end - l3;
      p.proto = proto;
      p.dir = 1;
      this.send();
      return;
    }
    if (this.lock !== null) this.lock.lock();
    const v = this.pipeline.process(this.area, l3, len - ETH, now, 0);
    if (this.lock !== null) this.lock.unlock();
    if (v === VERDICT_TX) {
      const hops = p.dir === 0 ? (v6 ? this.clients6 : this.clients) : (v6 ? this.servers6 : this.servers);
      hops.learn(f0, f1, f2, f3, i, fromHi, fromLo, this.pipeline.nowMs);
      this.send();
    } else if (v === VERDICT_PASS) this.toTun();
    else if (v === VERDICT_TX_L2 && this.tap !== null) {
      // A DR client: its replies may come back through the hand-off.
      if (p.dir === 0) (v6 ? this.clients6 : this.clients).learn(f0, f1, f2, f3, i, fromHi, fromLo, this.pipeline.nowMs);
      this.sendL2();
    }
  }

  /**
   * Direct routing: the pipeline wrote the real server's MAC (resolved on the TAP) in front
   * of the packet. The frame leaves by the socket the server's replies came from, or else
   * through the TAP, as the TUN path sends it.
   */
  private sendL2(): void {
    const p = this.pipeline.pkt;
    const u8 = this.area.u8;
    const hop = this.drServers.find((u8[p.start] << 8) | u8[p.start + 1], get32(u8, p.start + 2) | 0, 0, 0, this.pipeline.nowMs);
    const dev = hop >= 0 ? JOIN_DEV0 + this.drServers.sock(hop) : JOIN_TAP;
    this.counters[MISC_BASE + M_TX]++;
    // The pipeline completed a partial checksum: a DR packet leaves with no offload state.
    if (this.joiner !== null && p.proto === IPPROTO_TCP && this.joiner.add(dev, p.start, ETH, p.len, 0, true)) return;
    if (dev === JOIN_TAP) this.tapSend(p.start, p.len);
    else this.transmit(dev - JOIN_DEV0, p.start, p.len, 0);
  }

  private tapSend(at: number, len: number): number {
    const r = this.tap!.send(this.area.u8, at, len);
    if (r < 0) this.counters[DROP_BASE + DROP.TX_ERROR]++;
    return r;
  }

  /** Out of the socket toward the rewritten destination, or through the TUN. */
  private send(): void {
    const p = this.pipeline.pkt;
    const u8 = this.area.u8;
    const s = p.start;
    // Toward the server for a client's packet, toward the client for a reply.
    const v6 = p.ipv === 6;
    const hops = p.dir === 0 ? (v6 ? this.servers6 : this.servers) : (v6 ? this.clients6 : this.clients);
    const hop = v6
      ? hops.find(get32(u8, s + 24), get32(u8, s + 28), get32(u8, s + 32), get32(u8, s + 36), this.pipeline.nowMs)
      : hops.find(get32(u8, s + 16), 0, 0, 0, this.pipeline.nowMs);
    // The TTL or hop limit: one that ends here is the kernel's to answer (ICMP time exceeded).
    if (hop < 0 || u8[s + (v6 ? 7 : 8)] <= 1 || this.isBulk(u8, p)) { this.toTun(); return; }
    decrementTtl(this.area.dv, p);
    const j = hops.sock(hop);
    const out = this.socks[j];
    // A partial checksum leaves as it is when the kernel completes it (TX metadata).
    let partial = 0;
    if (p.csumPartial !== 0) {
      if (out.txCsum) partial = 1;
      else csumComplete(u8, p.csumStart, s + p.len, p.csumAt, p.proto);
      p.csumPartial = 0;
    }
    // The Ethernet header goes where the received one was.
    const e = s - ETH;
    ethWrite(this.area.dv, e, hops.macHi(hop), hops.macLo(hop), out.macHi, out.macLo, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
    this.counters[MISC_BASE + M_TX]++;
    // The joiner takes it (to send with the flow's next segment) or sends what it holds of
    // the flow first, so nothing overtakes.
    if (this.joiner !== null && p.proto === IPPROTO_TCP && this.joiner.add(JOIN_DEV0 + j, e, ETH, p.len + ETH, partial, true)) return;
    this.transmit(j, e, p.len + ETH, partial);
  }

  /**
   * Copies the Ethernet frame u8[at, at+len) into a send frame of socket j and queues it;
   * `partial`: its TCP or UDP checksum holds the pseudo-header sum, for the kernel to complete.
   */
  private transmit(j: number, at: number, len: number, partial: number): number {
    const out = this.socks[j];
    const f = out.txFrame();
    if (f < 0) { this.counters[DROP_BASE + DROP.TX_ERROR]++; return -1; }
    const u8 = this.area.u8;
    u8.copyWithin(f, at, at + len);
    if (partial === 0) out.txPush(f, len);
    else {
      // IPv4 without options or IPv6 without extension headers (what the XDP program takes).
      const v6 = u8[at + 12] === 0x86;
      out.txPushPartial(f, len, ETH + (v6 ? 40 : 20), u8[at + ETH + (v6 ? 6 : 9)] === IPPROTO_TCP ? 16 : 6);
    }
    return len;
  }

  /** As the TUN path writes it: the kernel routes it (and fills in a partial checksum). */
  private toTun(): void {
    const p = this.pipeline.pkt;
    const u8 = this.area.u8;
    this.counters[MISC_BASE + M_XDP_TUN]++;
    // What the joiner holds goes first: a flow's segment must not overtake its staged ones.
    if (this.joiner !== null) this.joiner.flush();
    if (this.tunVnet) {
      // The received Ethernet header's room takes the virtio_net_hdr.
      this.count(this.tun.send(u8, vnetWriteFor(u8, p), p.len + VNET_HDR_LEN));
    } else {
      if (p.csumPartial !== 0) { csumComplete(u8, p.csumStart, p.start + p.len, p.csumAt, p.proto); p.csumPartial = 0; }
      this.count(this.tun.send(u8, p.start, p.len));
    }
  }

  private count(r: number): void {
    if (r < 0) this.counters[DROP_BASE + DROP.TX_ERROR]++;
    else this.counters[MISC_BASE + M_TX]++;
  }

  /** Sends what the batch queued; true while some socket still holds frames it could not send yet. */
  flush(): boolean {
    if (this.joiner !== null) this.joiner.flush();
    let left = false;
    // A socket with nothing queued costs one read of its ring here, no system call.
    for (let j = 0; j < this.socks.length; j++) if (this.socks[j].flushTx() > 0) left = true;
    return left;
  }
}
