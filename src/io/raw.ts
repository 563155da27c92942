// Raw IP and UDP sockets for `tslb --decap` (and the tests' tunnel sender), through libc.
//
// Contract:
// - openRaw/openUdp are set-up calls: they throw SysError (e.g. "socket raw ipproto 4:
//   Operation not permitted (EPERM)") and leak no fd when they do. Sockets are
//   non-blocking and close-on-exec.
// - Sock.recv/sendTo are hot: no allocation, no throw. recv returns the datagram length,
//   0 when nothing is queued (EAGAIN), or -errno; sendTo returns bytes sent or -errno. Both
//   return -EINVAL when [off, off+len) is outside the buffer.
// - What a raw socket reads (raw(7), ipv6(7)): AF_INET raw sockets get the whole IPv4
//   datagram, outer header included; AF_INET6 raw sockets get only the payload after the
//   IPv6 header (and its extension headers). The kernel hands a raw socket every
//   locally-delivered packet of its protocol, reassembled; a protocol that no kernel
//   module claims (ipip, sit, ip6_tunnel, gre absent) is not answered with ICMP
//   "protocol unreachable" while a raw socket is open for it.
// - IPPROTO_RAW sockets (sending) imply IP_HDRINCL / IPV6_HDRINCL: the caller writes the
//   whole IP header.
import {
  AF_INET, AF_INET6, EAFNOSUPPORT, EAGAIN, EINVAL, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_RAW, SOL_SOCKET,
  SO_RCVBUF, SysError, bind, close, readPtr, sendtoPtr, setsockopt, socket,
} from "./libc.ts";
import { BufPtr } from "./buf_ptr.ts";

export const IPPROTO_IP = 0;
export const IPPROTO_IPIP = 4;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_GRE = 47;
export const IPPROTO_RAW = 255;
export const SOL_IPV6 = 41;
export const SOL_UDP = 17;
export const IPV6_V6ONLY = 26;
/** Accept UDP over IPv6 with a zero checksum (RFC 6935/6936: allowed for tunnels such as GUE). */
export const UDP_NO_CHECK6_RX = 102;

/** Default receive buffer asked for (the kernel caps it at net.core.rmem_max). */
const RCVBUF = 4 << 20;

export class Sock {
  private closed = false;
  private readonly rx = new BufPtr();
  private readonly tx = new BufPtr();

  /** `af` 4 or 6; `proto` the IP protocol (raw) or IPPROTO_UDP; `label` names it in messages. */
  constructor(readonly fd: number, readonly af: number, readonly proto: number, readonly label: string) {}

  /** Reads one datagram into u8[off, off+cap): its length, 0 if none is queued, or -errno. */
  recv(u8: Uint8Array, off: number, cap: number): number {
    const p = this.rx.at(u8, off, cap);
    if (p < 0) return -EINVAL;
    const r = readPtr(this.fd, p, cap);
    return r === -EAGAIN ? 0 : r;
  }

  /** Sends u8[off, off+len) to the sockaddr bytes `to` (sockaddrIn / sockaddrIn6). */
  sendTo(u8: Uint8Array, off: number, len: number, to: Uint8Array): number {
    const p = this.tx.at(u8, off, len);
    return p < 0 ? -EINVAL : sendtoPtr(this.fd, p, len, 0, to);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rx.release();
    this.tx.release();
    close(this.fd);
  }
}

function open(af: number, type: number, proto: number, label: string): number {
  const domain = af === 4 ? AF_INET : AF_INET6;
  try {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  } catch (e) {
    if (e instanceof SysError) throw new SysError("socket", e.errno, label);
    throw e;
  }
}

/** A raw socket of IP protocol `proto` (4, 41, 47 to receive; IPPROTO_RAW to send) in family `af`. */
export function openRaw(af: 4 | 6, proto: number): Sock {
  const label = `raw ipv${af} ipproto ${proto}`;
  const fd = open(af, SOCK_RAW, proto, label);
  try {
    if (proto !== IPPROTO_RAW) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, RCVBUF, `setsockopt SO_RCVBUF (${label})`);
  } catch (e) {
    close(fd);
    throw e;
  }
  return new Sock(fd, af, proto, label);
}

/**
 * A UDP socket bound to `port` on every address. af 6 makes one dual-stack socket
 * (IPV6_V6ONLY 0: IPv4 arrives as mapped addresses) that also accepts zero UDP checksums
 * over IPv6; if the host has no IPv6 (EAFNOSUPPORT), an IPv4 socket is returned instead.
 * `port` 0 binds an ephemeral port (a sender). No SO_REUSEADDR: a second listener on
 * the same port fails with EADDRINUSE instead of silently stealing the datagrams.
 */
export function openUdp(af: 4 | 6, port: number): Sock {
  let fam = af;
  let label = `udp ipv${fam} port ${port}`;
  let fd: number;
  try {
    fd = open(fam, SOCK_DGRAM, IPPROTO_UDP, label);
  } catch (e) {
    if (!(fam === 6 && e instanceof SysError && e.errno === EAFNOSUPPORT)) throw e;
    fam = 4;
    label = `udp ipv4 port ${port}`;
    fd = open(fam, SOCK_DGRAM, IPPROTO_UDP, label);
  }
  try {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, RCVBUF, `setsockopt SO_RCVBUF (${label})`);
    if (fam === 6) {
      setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, 0, `setsockopt IPV6_V6ONLY (${label})`);
      setsockopt(fd, SOL_UDP, UDP_NO_CHECK6_RX, 1, `setsockopt UDP_NO_CHECK6_RX (${label})`);
    }
    try {
      bind(fd, fam === 4 ? sockaddrIn(0, port) : sockaddrIn6([0, 0, 0, 0], port));
    } catch (e) {
      if (e instanceof SysError) throw new SysError("bind", e.errno, label);
      throw e;
    }
  } catch (e) {
    close(fd);
    throw e;
  }
  return new Sock(fd, fam, IPPROTO_UDP, label);
}

/** struct sockaddr_in (16 bytes): family in host order, port and address in network order. */
export function sockaddrIn(addr: number, port: number): Uint8Array {
  const a = new Uint8Array(16);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port);
  dv.setInt32(4, addr | 0);
  return a;
}

/** struct sockaddr_in6 (28 bytes): family, port, flow info 0, address words, scope id 0. */
export function sockaddrIn6(words: readonly number[], port: number): Uint8Array {
  const a = new Uint8Array(28);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, AF_INET6, true);
  dv.setUint16(2, port);
  for (let i = 0; i < 4; i++) dv.setInt32(8 + 4 * i, words[i] | 0);
  return a;
}
