// Netlink / rtnetlink wire format: constants, a message builder and a reply parser.
//
// Pure: no I/O. Control plane only (the parser returns small objects). Netlink fields are
// in HOST byte order (not network order); addresses inside attributes are network order,
// as raw bytes. Every message and attribute starts on a 4-byte boundary and padding is
// written as zeros.
//
//   nlmsghdr (16 bytes, include/uapi/linux/netlink.h)
//   0       4      6       8      12     16
//   | len   | type | flags | seq   | pid  | family header | rtattr... |
//
//   rtattr (include/uapi/linux/rtnetlink.h): | rta_len u16 | rta_type u16 | payload | pad to 4 |
//   rta_len counts header + payload, not the trailing pad.

// --- netlink.h ---
export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;

export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
// GET modifiers
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW modifiers
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// flags of an NLMSG_ERROR reply
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

// --- rtnetlink.h: message types ---
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const RTM_GETRULE = 34;

// rtm_type
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;

// rtm_protocol
export const RTPROT_UNSPEC = 0;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;

// rtm_scope
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

// rtm_table: ids >= 256 only fit in RTA_TABLE / FRA_TABLE (u32).
export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

// rtattr types of RTM_*ROUTE
export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_IIF = 3;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_TABLE = 15;

// --- if_link.h / if.h ---
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
/** ifindex of the link's master (bridge); u32. */
export const IFLA_MASTER = 10;
/** Transmit queue length; u32. */
export const IFLA_TXQLEN = 13;
export const IFF_UP = 0x1;

// --- neighbour.h ---
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NTF_PROXY = 0x08;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

// --- fib_rules.h ---
export const FRA_DST = 1;
export const FRA_SRC = 2;
export const FRA_IIFNAME = 3;
export const FRA_GOTO = 4;
export const FRA_PRIORITY = 6;
export const FRA_FWMARK = 10;
export const FRA_TABLE = 15;
export const FRA_FWMASK = 16;
export const FRA_OIFNAME = 17;
export const FRA_PROTOCOL = 21;
export const FRA_IP_PROTO = 22;
export const FRA_SPORT_RANGE = 23;
export const FRA_DPORT_RANGE = 24;
export const FR_ACT_TO_TBL = 1;
export const FR_ACT_GOTO = 2;
export const FR_ACT_NOP = 3;
export const FR_ACT_BLACKHOLE = 6;

// --- family header sizes ---
export const RTMSG_LEN = 12;
export const IFINFOMSG_LEN = 16;
export const NDMSG_LEN = 12;
export const FIB_RULE_HDR_LEN = 12;
export const RTA_HDRLEN = 4;
export const NLMSGERR_LEN = 4 + NLMSG_HDRLEN;

/** Host byte order, which netlink uses for every integer field. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export const nlAlign = (n: number): number => (n + 3) & ~3;

/** struct rtmsg (routes). Omitted fields are 0. */
export interface RtMsg {
  family: number; dstLen?: number; srcLen?: number; tos?: number;
  table?: number; protocol?: number; scope?: number; type?: number; flags?: number;
}
/** struct ifinfomsg (links). */
export interface IfInfoMsg { family?: number; type?: number; index: number; flags?: number; change?: number }
/** struct ndmsg (neighbours). */
export interface NdMsg { family: number; ifindex: number; state?: number; flags?: number; type?: number }
/** struct fib_rule_hdr (policy rules). */
export interface FibRuleHdr {
  family: number; dstLen?: number; srcLen?: number; tos?: number;
  table?: number; action?: number; flags?: number;
}

/**
 * Builds one netlink message into a caller-owned buffer:
 * `new NlBuilder(buf).begin(type, flags, seq).rtmsg({...}).attrU32(RTA_OIF, 3).end()`
 * returns the message length. Throws RangeError when the buffer is too small.
 */
export class NlBuilder {
  readonly dv: DataView;
  private pos = 0;

  constructor(readonly u8: Uint8Array) {
    this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  }

  /** Starts a message at offset 0: nlmsghdr with len patched by end(). */
  begin(type: number, flags: number, seq: number, pid = 0): this {
    this.pos = 0;
    const o = this.take(NLMSG_HDRLEN);
    this.dv.setUint32(o, 0, LE);
    this.dv.setUint16(o + 4, type, LE);
    this.dv.setUint16(o + 6, flags, LE);
    this.dv.setUint32(o + 8, seq >>> 0, LE);
    this.dv.setUint32(o + 12, pid >>> 0, LE);
    return this;
  }

  rtmsg(m: RtMsg): this {
    const o = this.take(RTMSG_LEN);
    this.u8[o] = m.family;
    this.u8[o + 1] = m.dstLen ?? 0;
    this.u8[o + 2] = m.srcLen ?? 0;
    this.u8[o + 3] = m.tos ?? 0;
    this.u8[o + 4] = m.table ?? 0;
    this.u8[o + 5] = m.protocol ?? 0;
    this.u8[o + 6] = m.scope ?? 0;
    this.u8[o + 7] = m.type ?? 0;
    this.dv.setUint32(o + 8, (m.flags ?? 0) >>> 0, LE);
    return this;
  }

  ifinfomsg(m: IfInfoMsg): this {
    const o = this.take(IFINFOMSG_LEN);
    this.u8[o] = m.family ?? 0;
    this.u8[o + 1] = 0; // __ifi_pad
    this.dv.setUint16(o + 2, m.type ?? 0, LE);
    this.dv.setInt32(o + 4, m.index, LE);
    this.dv.setUint32(o + 8, (m.flags ?? 0) >>> 0, LE);
    this.dv.setUint32(o + 12, (m.change ?? 0) >>> 0, LE);
    return this;
  }

  ndmsg(m: NdMsg): this {
    const o = this.take(NDMSG_LEN);
    this.u8[o] = m.family;
    this.u8[o + 1] = 0; // ndm_pad1
    this.dv.setUint16(o + 2, 0, LE); // ndm_pad2
    this.dv.setInt32(o + 4, m.ifindex, LE);
    this.dv.setUint16(o + 8, m.state ?? 0, LE);
    this.u8[o + 10] = m.flags ?? 0;
    this.u8[o + 11] = m.type ?? 0;
    return this;
  }

  fibRuleHdr(m: FibRuleHdr): this {
    const o = this.take(FIB_RULE_HDR_LEN);
    this.u8[o] = m.family;
    this.u8[o + 1] = m.dstLen ?? 0;
    this.u8[o + 2] = m.srcLen ?? 0;
    this.u8[o + 3] = m.tos ?? 0;
    this.u8[o + 4] = m.table ?? 0;
    this.u8[o + 5] = 0; // res1
    this.u8[o + 6] = 0; // res2
    this.u8[o + 7] = m.action ?? 0;
    this.dv.setUint32(o + 8, (m.flags ?? 0) >>> 0, LE);
    return this;
  }

  /** An attribute with raw payload bytes (addresses: network order, as given). */
  attr(type: number, payload: Uint8Array): this {
    const o = this.attrHeader(type, payload.length);
    this.u8.set(payload, o);
    return this;
  }

  attrU8(type: number, v: number): this {
    this.u8[this.attrHeader(type, 1)] = v;
    return this;
  }

  attrU16(type: number, v: number): this {
    this.dv.setUint16(this.attrHeader(type, 2), v, LE);
    return this;
  }

  attrU32(type: number, v: number): this {
    this.dv.setUint32(this.attrHeader(type, 4), v >>> 0, LE);
    return this;
  }

  /** A NUL-terminated string attribute (IFLA_IFNAME, FRA_IIFNAME). */
  attrStr(type: number, s: string): this {
    const bytes = new TextEncoder().encode(s);
    const o = this.attrHeader(type, bytes.length + 1);
    this.u8.set(bytes, o);
    this.u8[o + bytes.length] = 0;
    return this;
  }

  /** struct fib_rule_port_range { u16 start; u16 end } in host order (FRA_SPORT_RANGE/FRA_DPORT_RANGE). */
  attrPortRange(type: number, start: number, end: number): this {
    const o = this.attrHeader(type, 4);
    this.dv.setUint16(o, start, LE);
    this.dv.setUint16(o + 2, end, LE);
    return this;
  }

  /** Patches nlmsg_len and returns the message length. */
  end(): number {
    this.dv.setUint32(0, this.pos, LE);
    return this.pos;
  }

  // Writes the rtattr header, zeroes the padding and returns the payload offset.
  private attrHeader(type: number, payloadLen: number): number {
    const o = this.take(RTA_HDRLEN + payloadLen);
    this.dv.setUint16(o, RTA_HDRLEN + payloadLen, LE);
    this.dv.setUint16(o + 2, type, LE);
    return o + RTA_HDRLEN;
  }

  // Reserves n bytes (plus padding to 4, zeroed) and returns their offset.
  private take(n: number): number {
    const o = this.pos;
    const next = o + nlAlign(n);
    if (next > this.u8.length) throw new RangeError(`netlink message exceeds ${this.u8.length} bytes`);
    this.u8.fill(0, o + n, next);
    this.pos = next;
    return o;
  }
}

/** One message of a reply buffer: its header fields and where it lies. */
export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Offset of the nlmsghdr in the buffer. */
  off: number;
  /** nlmsg_len: header + payload, without trailing padding. */
  len: number;
}

/** Splits a received buffer into messages. Throws RangeError on a malformed length. */
export function nlParse(u8: Uint8Array, len: number): NlMsg[] {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const out: NlMsg[] = [];
  let o = 0;
  while (o + NLMSG_HDRLEN <= len) {
    const mlen = dv.getUint32(o, LE);
    if (mlen < NLMSG_HDRLEN || o + mlen > len) {
      throw new RangeError(`netlink: bad nlmsg_len ${mlen} at offset ${o} of ${len}`);
    }
    out.push({
      type: dv.getUint16(o + 4, LE),
      flags: dv.getUint16(o + 6, LE),
      seq: dv.getUint32(o + 8, LE),
      pid: dv.getUint32(o + 12, LE),
      off: o,
      len: mlen,
    });
    o += nlAlign(mlen);
  }
  return out;
}

/** The error field of an NLMSG_ERROR message: 0 for an ACK, else -errno. */
export function nlErrorCode(u8: Uint8Array, m: NlMsg): number {
  if (m.type !== NLMSG_ERROR || m.len < NLMSG_HDRLEN + 4) {
    throw new RangeError(`netlink: message type ${m.type} (len ${m.len}) is not an NLMSG_ERROR`);
  }
  return new DataView(u8.buffer, u8.byteOffset).getInt32(m.off + NLMSG_HDRLEN, LE);
}

/** The kernel's extended-ack text (NLMSGERR_ATTR_MSG) of an NLMSG_ERROR, or "" if none. */
export function nlErrorText(u8: Uint8Array, m: NlMsg): string {
  if (m.type !== NLMSG_ERROR || (m.flags & NLM_F_ACK_TLVS) === 0) return "";
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  // After the error int comes the request's header, and its payload too unless the ack
  // was capped (NETLINK_CAP_ACK) or reports success.
  const inner = m.off + NLMSG_HDRLEN + 4;
  let tlv = inner + NLMSG_HDRLEN;
  if ((m.flags & NLM_F_CAPPED) === 0 && dv.getInt32(m.off + NLMSG_HDRLEN, LE) !== 0) {
    tlv = inner + nlAlign(dv.getUint32(inner, LE));
  }
  const a = rtaFind(u8, tlv, m.off + m.len, NLMSGERR_ATTR_MSG);
  if (a < 0) return "";
  let end = a + rtaLen(u8, a);
  while (end > a && u8[end - 1] === 0) end--;
  return new TextDecoder().decode(u8.subarray(a, end));
}

/**
 * Offset of the payload of the first attribute `type` in [start, end), or -1.
 * Attribute types are compared without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits.
 */
export function rtaFind(u8: Uint8Array, start: number, end: number, type: number): number {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let o = start;
  while (o + RTA_HDRLEN <= end) {
    const alen = dv.getUint16(o, LE);
    if (alen < RTA_HDRLEN || o + alen > end) return -1;
    if ((dv.getUint16(o + 2, LE) & 0x3fff) === type) return o + RTA_HDRLEN;
    o += nlAlign(alen);
  }
  return -1;
}

/** Payload length of the attribute whose payload starts at `payloadOff` (from rtaFind). */
export function rtaLen(u8: Uint8Array, payloadOff: number): number {
  return new DataView(u8.buffer, u8.byteOffset).getUint16(payloadOff - RTA_HDRLEN, LE) - RTA_HDRLEN;
}

/** Reads a u32 attribute payload (host order). */
export function rtaU32(u8: Uint8Array, payloadOff: number): number {
  return new DataView(u8.buffer, u8.byteOffset).getUint32(payloadOff, LE);
}

/** Reads struct rtmsg at `off` (just after the nlmsghdr). */
export function rtmsgRead(u8: Uint8Array, off: number): Required<RtMsg> {
  return {
    family: u8[off], dstLen: u8[off + 1], srcLen: u8[off + 2], tos: u8[off + 3],
    table: u8[off + 4], protocol: u8[off + 5], scope: u8[off + 6], type: u8[off + 7],
    flags: new DataView(u8.buffer, u8.byteOffset).getUint32(off + 8, LE),
  };
}

/** Reads struct ifinfomsg at `off` (just after the nlmsghdr). */
export function ifinfomsgRead(u8: Uint8Array, off: number): Required<IfInfoMsg> {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  return {
    family: u8[off], type: dv.getUint16(off + 2, LE), index: dv.getInt32(off + 4, LE),
    flags: dv.getUint32(off + 8, LE), change: dv.getUint32(off + 12, LE),
  };
}
