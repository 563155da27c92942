// The addresses configured on one interface (`ip addr show dev lo`, without iproute2),
// and a netlink socket that becomes readable whenever any address changes, so `tslb
// --decap` without --vip follows the VIPs an operator adds to or removes from `lo`.
//
// Contract: control plane only (allocates, throws SysError). Loopback addresses
// (127.0.0.0/8, ::1) are left out: they are never VIPs.
import { AF_INET, AF_INET6, AF_NETLINK, AF_UNSPEC, EAGAIN, EINTR, ETIMEDOUT, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW,
  SysError, bind, close, poll, recv, sendto, socket } from "../io/libc.ts";
import { RtNetlink } from "../io/rtnetlink.ts";
import { NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_DUMP, NLM_F_REQUEST, RTM_GETADDR, RTM_NEWADDR,
  nlErrorCode, nlParse, rtaFind, rtaLen } from "../wire/netlink.ts";

// include/uapi/linux/if_addr.h
const IFADDRMSG_LEN = 8;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
// include/uapi/linux/rtnetlink.h: multicast groups (bit masks for sockaddr_nl.nl_groups).
const RTMGRP_IPV4_IFADDR = 0x10;
const RTMGRP_IPV6_IFADDR = 0x100;
const REPLY_TIMEOUT_MS = 5000;
const LE = true;

export interface LocalAddrs {
  /** IPv4 addresses as int32 (network bit order). */
  v4: number[];
  /** IPv6 addresses as 4 int32 words. */
  v6: number[][];
}

function sockaddrNl(groups: number): Uint8Array {
  const a = new Uint8Array(12);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, AF_NETLINK, LE);
  dv.setUint32(8, groups >>> 0, LE);
  return a;
}

/** Every non-loopback address on interface `ifname` (RTM_GETADDR dump). */
export function localAddrs(ifname: string): LocalAddrs {
  const rt = RtNetlink.open();
  let ifindex: number;
  try {
    ifindex = rt.linkIndex(ifname);
  } finally {
    rt.close();
  }
  const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  try {
    bind(fd, sockaddrNl(0));
    const seq = (Date.now() & 0x7fffffff) >>> 0;
    const req = new Uint8Array(NLMSG_HDRLEN + IFADDRMSG_LEN);
    const dv = new DataView(req.buffer);
    dv.setUint32(0, req.length, LE);
    dv.setUint16(4, RTM_GETADDR, LE);
    dv.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, LE);
    dv.setUint32(8, seq, LE);
    req[NLMSG_HDRLEN] = AF_UNSPEC; // ifa_family: both; the rest of ifaddrmsg stays 0
    const s = sendto(fd, req, req.length, 0, sockaddrNl(0));
    if (s < 0) throw new SysError("RTM_GETADDR", -s, ifname);
    const out: LocalAddrs = { v4: [], v6: [] };
    const rx = new Uint8Array(65536);
    const rdv = new DataView(rx.buffer);
    const pfd = new Int32Array([fd, 1]); // struct pollfd { fd, events = POLLIN }
    for (;;) {
      const ready = poll(pfd, 1, REPLY_TIMEOUT_MS);
      if (ready === -EINTR) continue;
      if (ready === 0) throw new SysError("RTM_GETADDR", ETIMEDOUT, `${ifname} (no netlink reply)`);
      const n = ready < 0 ? ready : recv(fd, rx, rx.length, 0);
      if (n < 0) throw new SysError("RTM_GETADDR", -n, ifname);
      for (const m of nlParse(rx, n)) {
        if (m.seq !== seq) continue;
        if (m.type === NLMSG_DONE) return out;
        if (m.type === NLMSG_ERROR) {
          const code = nlErrorCode(rx, m);
          if (code < 0) throw new SysError("RTM_GETADDR", -code, ifname);
          return out;
        }
        if (m.type !== RTM_NEWADDR) continue;
        const ifa = m.off + NLMSG_HDRLEN;
        if (rdv.getInt32(ifa + 4, LE) !== ifindex) continue;
        const family = rx[ifa];
        const attrs = ifa + IFADDRMSG_LEN;
        let a = rtaFind(rx, attrs, m.off + m.len, IFA_LOCAL);
        if (a < 0) a = rtaFind(rx, attrs, m.off + m.len, IFA_ADDRESS);
        if (a < 0) continue;
        if (family === AF_INET && rtaLen(rx, a) === 4) {
          const v = rdv.getInt32(a);
          if (v >>> 24 !== 127) out.v4.push(v);
        } else if (family === AF_INET6 && rtaLen(rx, a) === 16) {
          const w = [rdv.getInt32(a), rdv.getInt32(a + 4), rdv.getInt32(a + 8), rdv.getInt32(a + 12)];
          if (!(w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 1)) out.v6.push(w);
        }
      }
    }
  } finally {
    close(fd);
  }
}

/**
 * A non-blocking netlink socket subscribed to IPv4 and IPv6 address changes. Poll `fd`;
 * when readable, `drain()` empties it and says whether anything arrived.
 */
export class AddrWatch {
  private readonly buf = new Uint8Array(8192);
  private constructor(readonly fd: number) {}

  static open(): AddrWatch {
    const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    try {
      bind(fd, sockaddrNl(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR));
    } catch (e) {
      close(fd);
      throw e;
    }
    return new AddrWatch(fd);
  }

  /** Reads every queued notification; true if there was at least one (or the queue overflowed). */
  drain(): boolean {
    let any = false;
    for (;;) {
      const n = recv(this.fd, this.buf, this.buf.length, 0);
      if (n === -EAGAIN || n === 0) return any;
      any = true; // a message, or ENOBUFS (lost notifications): either way, re-read
      if (n < 0 && n !== -EINTR) return any;
    }
  }

  close(): void {
    close(this.fd);
  }
}
