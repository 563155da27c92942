// TCP segment joining on write: back-to-back small segments of one flow that a batch
// forwards are written as ONE segment carrying all their bytes, as a host's
// GRO would hand them to its stack. A web server commonly sends a response as two
// segments (headers from writev, body from sendfile); joined, the path carries one packet
// instead of two, and the client, having received one segment no bigger than the largest
// it has seen, delays its ACK and folds it into its next request, so a keep-alive
// request crosses the balancer as two packets instead of four (measured in bench/RESULTS.md).
//
// Rules (Linux tcp_gro_receive's, but a segment with PSH may be followed: PSH asks for
// prompt delivery, and nothing waits here, since only segments already in hand are joined):
// the same addresses, ports, TOS/traffic class, TTL/hop limit and DF; no IPv4 options or
// IPv6 extension headers; ACK set and no SYN, RST, URG or CWR; the same ACK number,
// window, ECE and option bytes (timestamps included); each segment starts where the last
// ended. A FIN (with or without data) may be the last segment joined, as in GRO: a server
// closing after its response sends headers, body and FIN as one packet. The joined packet
// stays within 576 bytes (IPv4) or 1 280 (IPv6), sizes every path carries, so joining
// never needs a path MTU the sender did not see.
//
// Checksums: a full checksum is never recomputed from the data. Each segment's data sum
// is derived from its own checksum (checksum minus pseudo-header and header), so a
// segment damaged before tslb gives a joined segment whose checksum fails too. Partial
// checksums (offloading TUN, NEEDS_CSUM) stay partial. Segments of both kinds never join.
//
// A pure ACK is held back too, and folded into the flow's next segment when that one
// carries the same sequence, ACK number, window and options (a client's handshake ACK and
// its request, its ACK of a server's FIN and its own FIN): the later segment says all the
// ACK said. A pure ACK with a SACK option is never folded (it may be a duplicate ACK a
// sender counts for fast retransmit), nor one followed by another pure ACK.
//
// Packets go to the TUN (IP) or to the TAP (Ethernet frames, direct routing): a slot keeps
// the whole frame and the device, and only packets of one device and link header join.
//
// Contract as for the UDP coalescer: the staging area is a region of the worker's frame
// (copyWithin only, no allocation); add() takes the packet (the caller does not send it)
// or refuses it, after writing any staged segments of the same flow so it cannot overtake
// them; flush() at the end of every batch.
import { csumAdd, csumFold } from "../wire/checksum.ts";
import { get16, get32, ipPseudoSum, put16, sameAddrsAndPorts } from "../wire/ip.ts";
import { IPPROTO_TCP } from "../wire/ipv4.ts";
import { VNET_HDR_LEN, vnetWritePartial, vnetWritePlain } from "../wire/vnet.ts";
import { StagingSlots } from "./staging.ts";

/** Flows staged at once. */
export const TCP_JOIN_SLOTS = 16;
/** Room per slot: a vnet header with headroom in front, a link header, then the largest joined packet. */
export const TCP_JOIN_SLOT_BYTES = 64 + 16 + 1280;
/** Largest joined IP packet: every IPv4 host takes 576 bytes, every IPv6 link 1 280. */
const MAX_JOINED_V4 = 576;
const MAX_JOINED_V6 = 1280;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;
const CWR = 0x80;
/** TCP option kinds: end of list, no-op, SACK. */
const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_SACK = 5;

export class TcpJoiner extends StagingSlots {
  /** Per slot: L4 offset, TCP header length, payload bytes, sequence number of the first. */
  private readonly l4off = new Int32Array(TCP_JOIN_SLOTS);
  private readonly hlen = new Int32Array(TCP_JOIN_SLOTS);
  private readonly total = new Int32Array(TCP_JOIN_SLOTS);
  private readonly seq = new Uint32Array(TCP_JOIN_SLOTS);
  /** Folded one's-complement sum of the payload so far (full checksums only). */
  private readonly dataSum = new Int32Array(TCP_JOIN_SLOTS);
  /** The slot's checksum is partial; PSH and FIN of the joined segments (FIN: nothing more joins). */
  private readonly partial = new Uint8Array(TCP_JOIN_SLOTS);
  private readonly orFlags = new Uint8Array(TCP_JOIN_SLOTS);
  /** Link header bytes in front of the IP packet (0: TUN, 14: Ethernet) and the device it goes to. */
  private readonly l2len = new Uint8Array(TCP_JOIN_SLOTS);
  private readonly dev = new Uint8Array(TCP_JOIN_SLOTS);

  /**
   * `base`: the staging area's first byte in u8 (TCP_JOIN_SLOTS × TCP_JOIN_SLOT_BYTES).
   * `vnet`: writes to device 0 carry a virtio_net_hdr (offloading TUN). `send(dev, off,
   * len, partial)` writes u8[off, off+len) to device `dev` (0: the TUN, the vnet header
   * included when there is one; 1: the TAP; others are the caller's), `partial` when its
   * checksum holds the pseudo-header sum. `joined[at]` counts the segments and pure ACKs
   * that went out inside another segment.
   */
  constructor(
    private readonly u8: Uint8Array, private readonly base: number, private readonly vnet: boolean,
    private readonly send: (dev: number, off: number, len: number, partial: number) => number, private readonly joined: Float64Array, private readonly at: number,
  ) {
    super(TCP_JOIN_SLOTS);
  }

  /**
   * Takes the packet u8[frame, frame+len) for device `dev` if it joins a staged segment
   * or can wait for one; false otherwise (staged segments of its flow are written first).
   * `l2`: link header bytes before the IP packet (0 or 14). `partial`: its checksum field
   * holds the pseudo-header sum (NEEDS_CSUM, at L4 + 16). `joinable`: false for what must
   * go out as it is (a super-packet, a partial checksum elsewhere).
   */
  add(dev: number, frame: number, l2: number, frameLen: number, partial: number, joinable: boolean): boolean {
    const u8 = this.u8;
    const start = frame + l2;
    const len = frameLen - l2;
    if (len < 1) return false;
    const v = u8[start] >> 4;
    let l4: number;
    let max: number;
    if (v === 4) {
      if ((u8[start] & 0x0f) !== 5 || u8[start + 9] !== IPPROTO_TCP || (u8[start + 6] & 0x3f) !== 0 || u8[start + 7] !== 0) return false;
      l4 = 20;
      max = MAX_JOINED_V4;
    } else if (v === 6) {
      if (u8[start + 6] !== IPPROTO_TCP) return false;
      l4 = 40;
      max = MAX_JOINED_V6;
    } else return false;
    const t = start + l4;
    if (l4 + 20 > len) return false;
    const hl = (u8[t + 12] >> 4) << 2;
    if (hl < 20 || l4 + hl > len) return false;
    const payload = len - l4 - hl;
    const flags = u8[t + 13];
    // What may carry a held pure ACK's news, and what may also join held data.
    const folds = joinable && (flags & ACK) !== 0 && (flags & (SYN | RST | URG | CWR)) === 0 && (payload > 0 || (flags & FIN) !== 0);
    const plain = folds && len <= max;
    // Data waits for more data; a pure ACK (no SACK) for a segment to fold into. A FIN
    // ends what can join, so a segment with one is never held back.
    const stageable = joinable && len <= max && (flags & FIN) === 0 &&
      (payload > 0 ? (flags & (SYN | RST | URG | CWR)) === 0 && (flags & ACK) !== 0 : flags === ACK && !this.hasSack(t, hl));
    for (let s = 0; s < TCP_JOIN_SLOTS; s++) {
      if (this.count[s] === 0 || this.dev[s] !== dev || this.l2len[s] !== l2 || this.l4off[s] !== l4 || !this.sameFlow(s, frame, start, v)) continue;
      if (this.total[s] === 0) {
        // A pure ACK waits here: a segment that says all it said replaces it.
        if (folds && this.fits(s, start, l4, hl, 0, partial, max, true)) {
          this.release(s);
          this.joined[this.at]++;
          if (!stageable) return false;
        } else this.write(s);
      } else if (plain && this.fits(s, start, l4, hl, payload, partial, max, false)) {
        this.append(s, start, l4, hl, len, payload, partial);
        return true;
      } else this.write(s);
      if (!stageable) return false;
      this.stage(s, dev, frame, l2, start, l4, hl, len, payload, partial);
      return true;
    }
    if (!stageable) return false;
    this.stage(this.claim(), dev, frame, l2, start, l4, hl, len, payload, partial);
    return true;
  }

  /** Where slot s keeps its frame (a vnet header goes just in front). */
  private slotFrame(s: number): number {
    return this.base + s * TCP_JOIN_SLOT_BYTES + 64;
  }
  /** Where slot s keeps its IP packet. */
  private slotIp(s: number): number {
    return this.base + s * TCP_JOIN_SLOT_BYTES + 64 + this.l2len[s];
  }

  private stage(s: number, dev: number, frame: number, l2: number, start: number, l4: number, hl: number, len: number, payload: number, partial: number): void {
    const t = start + l4;
    this.u8.copyWithin(this.slotFrame(s), frame, start + len);
    this.dev[s] = dev;
    this.l2len[s] = l2;
    this.take(s);
    this.l4off[s] = l4;
    this.hlen[s] = hl;
    this.total[s] = payload;
    this.seq[s] = get32(this.u8, t + 4) >>> 0;
    this.partial[s] = partial;
    this.orFlags[s] = 0;
    // A pure ACK is folded or written as it is, never added to.
    this.dataSum[s] = partial === 0 && payload > 0 ? this.payloadSum(start, l4, hl, len) : 0;
  }

  /**
   * Whether the segment at u8[start] continues slot s's (same flow, checked by the
   * caller). `fold`: the slot holds a pure ACK that the segment would replace (its
   * checksum kind does not matter then: the ACK's bytes are not kept).
   */
  private fits(s: number, start: number, l4: number, hl: number, payload: number, partial: number, max: number, fold: boolean): boolean {
    const u8 = this.u8;
    if ((this.orFlags[s] & FIN) !== 0 || (!fold && this.partial[s] !== partial) || this.hlen[s] !== hl || l4 + hl + this.total[s] + payload > max) return false;
    const o = this.slotIp(s);
    if (l4 === 20) {
      if (u8[o + 1] !== u8[start + 1] || u8[o + 6] !== u8[start + 6] || u8[o + 8] !== u8[start + 8]) return false;
    } else {
      for (let i = 0; i < 4; i++) if (u8[o + i] !== u8[start + i]) return false;
      if (u8[o + 7] !== u8[start + 7]) return false;
    }
    const a = o + l4;
    const b = start + l4;
    if (get32(u8, b + 4) >>> 0 !== ((this.seq[s] + this.total[s]) >>> 0)) return false;
    for (let i = 8; i < 12; i++) if (u8[a + i] !== u8[b + i]) return false; // ACK number
    if ((u8[a + 13] & ~(PSH | FIN)) !== (u8[b + 13] & ~(PSH | FIN)) || u8[a + 14] !== u8[b + 14] || u8[a + 15] !== u8[b + 15]) return false;
    for (let i = 20; i < hl; i++) if (u8[a + i] !== u8[b + i]) return false; // options
    return true;
  }

  private append(s: number, start: number, l4: number, hl: number, len: number, payload: number, partial: number): void {
    const u8 = this.u8;
    const at = this.slotIp(s) + l4 + hl + this.total[s];
    if (partial === 0) {
      let d = this.payloadSum(start, l4, hl, len);
      // Bytes that land at an odd offset sum byte-swapped (RFC 1071 §2(B)).
      if (this.total[s] & 1) d = ((d & 0xff) << 8) | (d >>> 8);
      this.dataSum[s] = csumFold(this.dataSum[s] + d);
    }
    u8.copyWithin(at, start + l4 + hl, start + len);
    this.orFlags[s] |= u8[start + l4 + 13] & (PSH | FIN);
    this.total[s] += payload;
    this.count[s]++;
  }

  /**
   * The folded sum of the payload of the segment at u8[start], derived from its checksum:
   * field = ~(pseudo + header + data), so data = ~field − pseudo − header (header with the
   * field as zero), all one's-complement.
   */
  private payloadSum(start: number, l4: number, hl: number, len: number): number {
    const u8 = this.u8;
    const t = start + l4;
    const notField = ~get16(u8, t + 16) & 0xffff;
    const pseudo = csumFold(ipPseudoSum(u8, start, IPPROTO_TCP, len - l4));
    const header = csumFold(csumAdd(u8, t, hl, 0) + notField);
    return csumFold(notField + (~pseudo & 0xffff) + (~header & 0xffff));
  }

  /** Whether the TCP options of the header at u8[t] (hl bytes) hold a SACK block. */
  private hasSack(t: number, hl: number): boolean {
    const u8 = this.u8;
    for (let i = t + 20; i < t + hl;) {
      const kind = u8[i];
      if (kind === OPT_SACK) return true;
      if (kind === OPT_EOL) return false;
      if (kind === OPT_NOP) { i++; continue; }
      if (i + 1 >= t + hl || u8[i + 1] < 2) return true; // malformed: treat as unsafe to fold
      i += u8[i + 1];
    }
    return false;
  }

  /** Same link header, addresses and ports as slot s's first segment. */
  private sameFlow(s: number, frame: number, start: number, v: number): boolean {
    const u8 = this.u8;
    const f = this.slotFrame(s);
    for (let i = 0; i < start - frame; i++) if (u8[f + i] !== u8[frame + i]) return false;
    return sameAddrsAndPorts(u8, this.slotIp(s), start, v === 4);
  }

  protected write(s: number): void {
    const u8 = this.u8;
    const ip = this.slotIp(s);
    const l4 = this.l4off[s];
    const t = ip + l4;
    const len = l4 + this.hlen[s] + this.total[s];
    if (this.count[s] > 1) {
      if (l4 === 20) {
        put16(u8, ip + 2, len);
        put16(u8, ip + 10, 0);
        put16(u8, ip + 10, ~csumFold(csumAdd(u8, ip, 20, 0)) & 0xffff);
      } else put16(u8, ip + 4, len - 40);
      u8[t + 13] |= this.orFlags[s];
      const pseudo = csumFold(ipPseudoSum(u8, ip, IPPROTO_TCP, len - l4));
      if (this.partial[s] !== 0) put16(u8, t + 16, pseudo);
      else {
        put16(u8, t + 16, 0);
        const sum = csumFold(pseudo + csumFold(csumAdd(u8, t, this.hlen[s], 0)) + this.dataSum[s]);
        put16(u8, t + 16, ~sum & 0xffff);
      }
      this.joined[this.at] += this.count[s] - 1;
    }
    let off = ip - this.l2len[s];
    let n = len + this.l2len[s];
    if (this.vnet && this.dev[s] === 0) {
      off -= VNET_HDR_LEN;
      n += VNET_HDR_LEN;
      if (this.partial[s] === 0) vnetWritePlain(u8, off);
      else vnetWritePartial(u8, off, l4, 16);
    }
    this.send(this.dev[s], off, n, this.partial[s]);
    this.release(s);
  }
}
