// TCP sequence adjustment for a header inserted at the start of the client→server byte
// stream (the PROXY protocol header of full-NAT, --proxy-protocol): Linux's
// nf_nat_seq_adjust reduced to one insertion at a fixed place, so one constant `delta`.
// Pure and allocation-free; every rewrite patches the TCP checksum (RFC 1624).
//
// Sequence spaces. `isn` is the client's initial sequence number (its SYN's seq). The
// client's byte k has seq isn+1+k. The server sees the `delta` header bytes at
// [isn+1, isn+1+delta) and the client's byte k at isn+1+delta+k. With r = seq − (isn+1)
// as a signed 32-bit distance, a client→server segment is:
//   - r < 0: unchanged. The SYN (seq isn; SYN data, TCP Fast Open, is not supported), and a
//     keepalive probe of a client that never sent data (seq isn: it must stay old so the
//     server still answers it with an ACK).
//   - r = 0 with payload or FIN (not RST): the insertion point. Its seq stays isn+1 and the
//     header is put in front of its payload (tcpInsertPayload). Retransmissions of that
//     segment get the same header again (it is a function of the connection), so the
//     mapping never depends on what the server has received. A client that closes without
//     sending data delivers the header with its FIN.
//   - r = 0 without payload or FIN (the handshake's ACK, a window update, an RST before any
//     data): unchanged, since the server's next expected seq is still isn+1.
//   - r > 0: seq + delta (mod 2^32). Urgent pointers are relative to seq: unchanged.
// The client's ACK number and SACK blocks refer to the server's stream, which is not
// changed: they are left alone (as are timestamps, which are not sequence numbers).
// Server→client, the ACK number and every SACK edge (option kind 5) map back: e ↦ e − delta
// when e is at or after isn+1+delta, isn+1 when it falls inside the header (nothing of the
// client's data is acknowledged there), unchanged when at or before isn+1.
// Left to the caller: the segment that gets the header grows by delta bytes, so the client's
// SYN should have its MSS lowered by proxyHeaderLength (clampMss) to keep it within the MTU;
// ICMP errors quoting a shifted segment are not mapped here.
import { csumAdd, csumFold, csumReplace16, csumReplace32 } from "../wire/checksum.ts";
import { get16, get32, ipPseudoSum, ipSetTotalLength, put16, put32 } from "../wire/ip.ts";
import { IPPROTO_TCP } from "../wire/ipv4.ts";
import { TCP_ACK, TCP_ACKF, TCP_CSUM, TCP_FIN, TCP_FLAGS, TCP_MIN_LEN, TCP_OFF, TCP_RST, TCP_SEQ, TCP_SYN } from "../wire/tcp.ts";

/** seqAdjAction results: leave the segment as is, add delta to its seq, or insert the header into it. */
export const SEQADJ_KEEP = 0;
export const SEQADJ_SHIFT = 1;
export const SEQADJ_INSERT = 2;

const TCP_URGF = 0x20;
const TCP_URG = 18;
const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_SACK = 5;

/** What to do with a client→server segment (see the file comment); `payload` is its data length. */
export function seqAdjAction(seq: number, flags: number, payload: number, isn: number): number {
  const r = (seq - isn - 1) | 0;
  if (r > 0) return SEQADJ_SHIFT;
  if (r < 0 || (flags & (TCP_SYN | TCP_RST)) !== 0) return SEQADJ_KEEP;
  return payload > 0 || (flags & TCP_FIN) !== 0 ? SEQADJ_INSERT : SEQADJ_KEEP;
}

/** Client seq → server seq for a segment that is not the insertion point: +delta after isn+1. */
export function seqAdjSeq(seq: number, isn: number, delta: number): number {
  return ((seq - isn - 1) | 0) > 0 ? (seq + delta) >>> 0 : seq >>> 0;
}

/** Server ACK number or SACK edge → client space: −delta past the header, isn+1 inside it. */
export function seqAdjAck(ack: number, isn: number, delta: number): number {
  const r = (ack - isn - 1) | 0;
  if (r <= 0) return ack >>> 0;
  if (r < delta) return (isn + 1) >>> 0;
  return (ack - delta) >>> 0;
}

/**
 * Writes the 32-bit field at u8[at] (inside the TCP header at l4) and patches the checksum.
 * A field at an odd distance from the header start straddles three checksum words.
 */
function set32Csum(u8: Uint8Array, l4: number, at: number, now: number): void {
  const old = get32(u8, at) >>> 0;
  if (old === now) return;
  let c = get16(u8, l4 + TCP_CSUM);
  if (((at - l4) & 1) === 0) {
    c = csumReplace32(c, old, now);
    put32(u8, at, now);
  } else {
    // Words at at−1, at+1, at+3: both neighbours are inside the header (it is 4-aligned).
    const o0 = get16(u8, at - 1), o1 = get16(u8, at + 1), o2 = get16(u8, at + 3);
    put32(u8, at, now);
    c = csumReplace16(c, o0, get16(u8, at - 1));
    c = csumReplace16(c, o1, get16(u8, at + 1));
    c = csumReplace16(c, o2, get16(u8, at + 3));
  }
  put16(u8, l4 + TCP_CSUM, c);
}

/** Length of the TCP header at l4 if it is sane within `l4len` bytes and the buffer, else 0. */
function headerLen(u8: Uint8Array, l4: number, l4len: number): number {
  if (l4 < 0 || l4len < TCP_MIN_LEN || l4 + TCP_MIN_LEN > u8.length) return 0;
  const doff = (u8[l4 + TCP_OFF] >> 4) << 2;
  if (doff < TCP_MIN_LEN || doff > l4len || l4 + doff > u8.length) return 0;
  return doff;
}

/**
 * Client→server segment of `l4len` bytes (header and payload) at u8[l4]: applies
 * SEQADJ_SHIFT in place (seq += delta, checksum patched) and returns the action taken.
 * On SEQADJ_INSERT nothing was changed: the caller inserts the header (tcpInsertPayload).
 * A malformed header (bad data offset) is SEQADJ_KEEP.
 */
export function seqAdjClient(u8: Uint8Array, l4: number, l4len: number, isn: number, delta: number): number {
  const doff = headerLen(u8, l4, l4len);
  if (doff === 0) return SEQADJ_KEEP;
  const seq = get32(u8, l4 + TCP_SEQ) >>> 0;
  const act = seqAdjAction(seq, u8[l4 + TCP_FLAGS], l4len - doff, isn);
  if (act === SEQADJ_SHIFT) set32Csum(u8, l4, l4 + TCP_SEQ, (seq + delta) >>> 0);
  return act;
}

/**
 * Server→client segment at u8[l4] (`l4len` bytes): maps the ACK number (when the ACK flag
 * is set) and the edges of every SACK block back to client space (seqAdjAck), in place,
 * patching the checksum. Option parsing stops at EOL, at a length below 2 or one running
 * past the header; a SACK option of a length other than 2+8n is skipped (receivers ignore
 * it too). Never throws and never touches a byte outside the TCP header.
 */
export function seqAdjServer(u8: Uint8Array, l4: number, l4len: number, isn: number, delta: number): void {
  const doff = headerLen(u8, l4, l4len);
  if (doff === 0) return;
  if ((u8[l4 + TCP_FLAGS] & TCP_ACKF) !== 0) {
    const ack = get32(u8, l4 + TCP_ACK) >>> 0;
    set32Csum(u8, l4, l4 + TCP_ACK, seqAdjAck(ack, isn, delta));
  }
  const end = l4 + doff;
  let at = l4 + TCP_MIN_LEN;
  while (at < end) {
    const kind = u8[at];
    if (kind === TCPOPT_EOL) return;
    if (kind === TCPOPT_NOP) { at++; continue; }
    if (at + 1 >= end) return;
    const len = u8[at + 1];
    if (len < 2 || at + len > end) return;
    if (kind === TCPOPT_SACK && len >= 10 && ((len - 2) & 7) === 0) {
      for (let e = at + 2; e < at + len; e += 4) set32Csum(u8, l4, e, seqAdjAck(get32(u8, e) >>> 0, isn, delta));
    }
    at += len;
  }
}

/**
 * Inserts n bytes, src[srcOff, srcOff+n), in front of the payload of the TCP segment at
 * u8[l4] in the IPv4 or IPv6 packet at u8[l3] (the packet ends where its IP length says).
 * Moves the payload up (the buffer needs n free bytes after the packet), fixes the IPv4
 * total length and header checksum or the IPv6 payload length, moves an urgent pointer,
 * and recomputes the TCP checksum in full (the payload changed). Returns the new length of
 * the IP packet, or 0 (nothing changed) when there is no room, the result would exceed
 * 65535 bytes, or the headers are inconsistent. `src` must not overlap the moved bytes.
 * The IPv6 pseudo-header uses the header's destination (no routing header on this path).
 */
export function tcpInsertPayload(u8: Uint8Array, l3: number, l4: number, src: Uint8Array, srcOff: number, n: number): number {
  if (l3 < 0 || l3 >= u8.length || n < 0 || srcOff < 0 || srcOff + n > src.length) return 0;
  const v = u8[l3] >> 4;
  let ipEnd: number;
  if (v === 4) {
    if (l3 + 20 > u8.length) return 0;
    ipEnd = l3 + get16(u8, l3 + 2);
  } else if (v === 6) {
    if (l3 + 40 > u8.length) return 0;
    ipEnd = l3 + 40 + get16(u8, l3 + 4);
  } else return 0;
  if (l4 < l3 + (v === 4 ? 20 : 40) || ipEnd > u8.length) return 0;
  const doff = headerLen(u8, l4, ipEnd - l4);
  if (doff === 0) return 0;
  if (ipEnd + n > u8.length || ipEnd - l3 + n > 0xffff) return 0;
  const pay = l4 + doff;
  if (n > 0) {
    u8.copyWithin(pay + n, pay, ipEnd);
    for (let i = 0; i < n; i++) u8[pay + i] = src[srcOff + i];
  }
  const total = ipEnd - l3 + n;
  ipSetTotalLength(u8, l3, total);
  if ((u8[l4 + TCP_FLAGS] & TCP_URGF) !== 0) {
    const urg = get16(u8, l4 + TCP_URG) + n;
    if (urg <= 0xffff) put16(u8, l4 + TCP_URG, urg);
  }
  const l4len = ipEnd + n - l4;
  const pseudo = ipPseudoSum(u8, l3, IPPROTO_TCP, l4len);
  put16(u8, l4 + TCP_CSUM, 0);
  put16(u8, l4 + TCP_CSUM, ~csumFold(csumAdd(u8, l4, l4len, pseudo)) & 0xffff);
  return total;
}
