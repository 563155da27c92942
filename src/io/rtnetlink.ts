// Routes, policy rules, proxy neighbours and link state through an AF_NETLINK/NETLINK_ROUTE
// socket: the `ip route|rule|neigh|link` calls tslb needs, without spawning `ip`.
//
// Contract: control plane only (allocates, throws). Each call is one synchronous request
// that waits for the kernel's ACK (matched by sequence number, at most REPLY_TIMEOUT_MS);
// batch() sends many route, rule and proxy-neighbour changes per system call instead.
// Failures throw SysError whose op is the message type, e.g.
// "RTM_NEWROUTE 198.18.9.0/24 table 4242: File exists (EEXIST)". The *Del calls return
// false instead of throwing when the object did not exist. Addresses are text in and out.
import {
  AF_INET, AF_INET6, AF_NETLINK, EHOSTUNREACH, EINTR, ENETUNREACH, ENOENT, ESRCH, ETIMEDOUT, SOCK_CLOEXEC,
  SOCK_RAW, SysError, bind, close, poll, recv, sendto, setsockopt, socket,
} from "./libc.ts";
import {
  FRA_DPORT_RANGE, FRA_DST, FRA_FWMARK, FRA_FWMASK, FRA_IIFNAME, FRA_IP_PROTO, FRA_PRIORITY, FRA_SPORT_RANGE,
  FRA_SRC, FRA_TABLE, FR_ACT_TO_TBL, IFF_UP, IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_MTU, IFLA_TXQLEN, NDA_DST,
  NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK,
  NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NTF_PROXY, NUD_PERMANENT, NlBuilder, type NlMsg,
  RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PREFSRC, RTA_TABLE, RTMSG_LEN, RTM_DELNEIGH, RTM_DELROUTE,
  RTM_DELRULE, RTM_GETLINK, RTM_GETROUTE, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, RTM_NEWRULE,
  RTN_BLACKHOLE, RTN_LOCAL, RTN_UNICAST, RTPROT_STATIC, RT_SCOPE_HOST, RT_SCOPE_LINK, rtaU32,
  RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RT_TABLE_UNSPEC, SOL_NETLINK,
  IFINFOMSG_LEN, ifinfomsgRead, nlAlign, nlErrorCode, nlErrorText, nlParse, rtaFind, rtaLen,
} from "../wire/netlink.ts";

export type Af = 4 | 6;

export interface RouteSpec {
  af: Af;
  /** Ignored when prefixLen is 0 (a default route). */
  dst: string;
  prefixLen: number;
  oif?: number;
  /** Default: main (254). Ids above 255 are sent in RTA_TABLE. */
  table?: number;
  gateway?: string;
  /** Default "unicast". */
  type?: "unicast" | "local" | "blackhole";
  /** Default: host for local routes, link for direct unicast routes, universe otherwise. */
  scope?: "universe" | "link" | "host";
}

export interface RuleSpec {
  af: Af;
  priority: number;
  table: number;
  src?: string;
  /** Default: the full address length when src is set. */
  srcLen?: number;
  dst?: string;
  dstLen?: number;
  iif?: string;
  ipproto?: number;
  sport?: number;
  dport?: number;
  /** With dport: the last port of a destination port range (default dport). */
  dportHi?: number;
  /** Match packets carrying this firewall mark (mask all ones). */
  fwmark?: number;
}

const REPLY_TIMEOUT_MS = 5000;
/**
 * Requests per sendmsg in batch(). The kernel handles them in order; only the last asks
 * for an ack, the others answer only when they fail. Every answer is a socket buffer of
 * its own (about 1 KiB of the ~208 KiB receive buffer), so even a chunk that fails whole
 * (EEXIST for every route a killed daemon left) stays below what would overflow it
 * (ENOBUFS, answers lost).
 */
const BATCH_MAX = 128;
const BATCH_BYTES = 64 * 1024;

/** One change for batch(): the same operations as the single calls, as data. */
export type NlChange =
  | { op: "routeAdd" | "routeDel"; route: RouteSpec }
  | { op: "ruleAdd" | "ruleDel"; rule: RuleSpec }
  | { op: "neighProxyAdd" | "neighProxyDel"; af: Af; addr: string; ifindex: number };

/** A change's result: the ack's code (0 or -errno) and, on failure, the error the single call would throw. */
export interface NlResult {
  code: number;
  error: SysError | null;
}
const TYPE_NUM = { unicast: RTN_UNICAST, local: RTN_LOCAL, blackhole: RTN_BLACKHOLE } as const;
const SCOPE_NUM = { universe: RT_SCOPE_UNIVERSE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST } as const;

export class RtNetlink {
  private seq: number;
  private readonly tx = new Uint8Array(1024);
  private readonly rx = new Uint8Array(65536);
  private readonly b = new NlBuilder(this.tx);
  private readonly pfd = new Int32Array(2); // one struct pollfd
  /** sockaddr_nl of the kernel: family AF_NETLINK, pid 0, groups 0. */
  private readonly kernel = sockaddrNl();
  private closed = false;

  private constructor(readonly fd: number) {
    this.seq = (Date.now() & 0x7fffffff) >>> 0;
    this.pfd[0] = fd;
    this.pfd[1] = 1; // events = POLLIN (low half of the second int32 on little-endian)
  }

  static open(): RtNetlink {
    const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    try {
      // Errors then echo only the request's header, and carry the kernel's reason text.
      setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, "setsockopt NETLINK_CAP_ACK");
      setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, "setsockopt NETLINK_EXT_ACK");
      bind(fd, sockaddrNl());
    } catch (e) {
      close(fd);
      throw e;
    }
    return new RtNetlink(fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }

  /** ifindex of `name`; throws SysError ENODEV when there is no such link. */
  linkIndex(name: string): number {
    return this.link(name).index;
  }

  /**
   * ifindex, link-layer address (empty without one, as on a TUN), master (a bridge port's
   * bridge; 0: none) and name of the link named `name`, or of ifindex `name`; throws SysError ENODEV
   * when there is no such link.
   */
  link(name: string | number): { index: number; address: Uint8Array; master: number; name: string } {
    this.b.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, this.nextSeq()).ifinfomsg({ index: typeof name === "number" ? name : 0 });
    if (typeof name === "string") this.b.attrStr(IFLA_IFNAME, name);
    let index = 0;
    let master = 0;
    let address = new Uint8Array(0);
    let ifname = typeof name === "string" ? name : "";
    this.transact("RTM_GETLINK", String(name), (u8, m) => {
      if (m.type !== RTM_NEWLINK) return;
      index = ifinfomsgRead(u8, m.off + NLMSG_HDRLEN).index;
      const attrs = m.off + NLMSG_HDRLEN + IFINFOMSG_LEN;
      const a = rtaFind(u8, attrs, m.off + m.len, IFLA_ADDRESS);
      if (a >= 0) address = u8.slice(a, a + rtaLen(u8, a));
      const mo = rtaFind(u8, attrs, m.off + m.len, IFLA_MASTER);
      if (mo >= 0) master = rtaU32(u8, mo);
      const no = rtaFind(u8, attrs, m.off + m.len, IFLA_IFNAME);
      // NUL-terminated.
      if (no >= 0) ifname = new TextDecoder().decode(u8.subarray(no, no + rtaLen(u8, no))).replace(/\0.*$/s, "");
    }, true);
    return { index, address, master, name: ifname };
  }

  linkSetUp(ifindex: number): void {
    this.b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, this.nextSeq())
      .ifinfomsg({ index: ifindex, flags: IFF_UP, change: IFF_UP });
    this.transact("RTM_NEWLINK", `ifindex ${ifindex} up`, undefined, true);
  }

  linkSetMtu(ifindex: number, mtu: number): void {
    this.b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, this.nextSeq())
      .ifinfomsg({ index: ifindex }).attrU32(IFLA_MTU, mtu);
    this.transact("RTM_NEWLINK", `ifindex ${ifindex} mtu ${mtu}`, undefined, true);
  }

  /** `ip link set <ifindex> txqueuelen <len>`: the queue the kernel fills for a TUN reader. */
  linkSetTxQueueLen(ifindex: number, len: number): void {
    this.b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, this.nextSeq())
      .ifinfomsg({ index: ifindex }).attrU32(IFLA_TXQLEN, len);
    this.transact("RTM_NEWLINK", `ifindex ${ifindex} txqueuelen ${len}`, undefined, true);
  }

  /** `ip link set <ifindex> address <mac>` (6 bytes). */
  linkSetAddress(ifindex: number, mac: Uint8Array): void {
    this.b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, this.nextSeq())
      .ifinfomsg({ index: ifindex }).attr(IFLA_ADDRESS, mac);
    this.transact("RTM_NEWLINK", `ifindex ${ifindex} address`, undefined, true);
  }

  /** `ip link set <ifindex> master <master>`: joins a bridge (master 0 leaves it). */
  linkSetMaster(ifindex: number, master: number): void {
    this.b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, this.nextSeq())
      .ifinfomsg({ index: ifindex }).attrU32(IFLA_MASTER, master);
    this.transact("RTM_NEWLINK", `ifindex ${ifindex} master ${master}`, undefined, true);
  }

  /** `ip route add` (fails with EEXIST if the route exists). */
  routeAdd(r: RouteSpec): void {
    this.routeMsg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, r);
    this.transact("RTM_NEWROUTE", routeText(r), undefined, true);
  }

  /** `ip route del`; false when no such route (or table) exists. */
  routeDel(r: RouteSpec): boolean {
    this.routeMsg(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, r);
    return this.transact("RTM_DELROUTE", routeText(r), undefined, false) !== -ESRCH;
  }

  /** `ip rule add ... lookup TABLE` (fails with EEXIST if an identical rule exists). */
  ruleAdd(r: RuleSpec): void {
    this.ruleMsg(RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, r);
    this.transact("RTM_NEWRULE", ruleText(r), undefined, true);
  }

  /** `ip rule del ...`; false when no such rule exists. */
  ruleDel(r: RuleSpec): boolean {
    this.ruleMsg(RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK, r);
    return this.transact("RTM_DELRULE", ruleText(r), undefined, false) !== -ENOENT;
  }

  /** The source address the kernel would use toward `dst` (`ip route get`), or null if unroutable. */
  routeGetSrc(af: Af, dst: string): string | null {
    return this.routeGet(af, dst)?.src ?? null;
  }

  /**
   * The kernel's route toward `dst` (`ip route get`): the source address it would use and
   * the output interface index; null when unreachable.
   */
  routeGet(af: Af, dst: string): { src: string | null; oif: number } | null {
    const a = addrBytes(af, dst);
    this.b.begin(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK, this.nextSeq())
      .rtmsg({ family: family(af), dstLen: a.length * 8 }).attr(RTA_DST, a);
    let src: string | null = null;
    let oif = 0;
    const err = this.transact("RTM_GETROUTE", dst, (u8, m) => {
      if (m.type !== RTM_NEWROUTE) return;
      const start = m.off + NLMSG_HDRLEN + RTMSG_LEN;
      const p = rtaFind(u8, start, m.off + m.len, RTA_PREFSRC);
      if (p >= 0) src = addrText(u8.slice(p, p + rtaLen(u8, p)));
      const o = rtaFind(u8, start, m.off + m.len, RTA_OIF);
      if (o >= 0) oif = rtaU32(u8, o);
    }, false);
    if (err === -ENETUNREACH || err === -EHOSTUNREACH) return null;
    if (err < 0) throw new SysError("RTM_GETROUTE", -err, dst);
    return { src, oif };
  }

  /** `ip neigh add proxy ADDR dev IF`: answer ARP/ND for addr on ifindex. Idempotent. */
  neighProxyAdd(af: Af, addr: string, ifindex: number): void {
    this.neighMsg(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, af, addr, ifindex);
    this.transact("RTM_NEWNEIGH", `proxy ${addr} ifindex ${ifindex}`, undefined, true);
  }

  /** `ip neigh del proxy ADDR dev IF`; false when there was no such entry. */
  neighProxyDel(af: Af, addr: string, ifindex: number): boolean {
    this.neighMsg(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK, af, addr, ifindex);
    return this.transact("RTM_DELNEIGH", `proxy ${addr} ifindex ${ifindex}`, undefined, false) !== -ENOENT;
  }

  /**
   * Many changes in few system calls: up to BATCH_MAX requests go out in one sendmsg, and
   * only the last of them asks for an ack (a recv per ack was most of the time). A restore
   * of 10 000 services made one round trip per VIP route and reply rule (15 000), a
   * second and a half. Every change is attempted, whatever the others' results;
   * `results[i]` is change i's. The *Add changes fail with EEXIST as routeAdd/ruleAdd/
   * neighProxyAdd do; callers decide what a failure means.
   */
  batch(changes: readonly NlChange[]): NlResult[] {
    const results: NlResult[] = new Array(changes.length);
    const buf = new Uint8Array(BATCH_BYTES);
    for (let start = 0; start < changes.length;) {
      let off = 0;
      let end = start;
      const firstSeq = (this.seq + 1) >>> 0;
      let lastOff = 0;
      while (end < changes.length && end - start < BATCH_MAX && BATCH_BYTES - off >= this.tx.length) {
        const nb = new NlBuilder(buf.subarray(off, off + this.tx.length));
        this.changeMsg(changes[end], nb);
        lastOff = off;
        off += nlAlign(nb.end());
        end++;
      }
      // The chunk's last request asks for the ack that says the kernel got through it.
      const flags = new DataView(buf.buffer, buf.byteOffset + lastOff + 6, 2);
      flags.setUint16(0, flags.getUint16(0, true) | NLM_F_ACK, true);
      this.sendBatch(buf, off, changes, start, end, firstSeq, results);
      start = end;
    }
    return results;
  }

  /** Builds change `c` without NLM_F_ACK: the kernel answers it only if it fails. */
  private changeMsg(c: NlChange, nb: NlBuilder): void {
    const del = NLM_F_REQUEST;
    const add = del | NLM_F_CREATE | NLM_F_EXCL;
    switch (c.op) {
      case "routeAdd": return this.routeMsg(RTM_NEWROUTE, add, c.route, nb);
      case "routeDel": return this.routeMsg(RTM_DELROUTE, del, c.route, nb);
      case "ruleAdd": return this.ruleMsg(RTM_NEWRULE, add, c.rule, nb);
      case "ruleDel": return this.ruleMsg(RTM_DELRULE, del, c.rule, nb);
      case "neighProxyAdd": return this.neighMsg(RTM_NEWNEIGH, add, c.af, c.addr, c.ifindex, nb);
      case "neighProxyDel": return this.neighMsg(RTM_DELNEIGH, del, c.af, c.addr, c.ifindex, nb);
    }
  }

  /**
   * Sends changes[start, end) (built in buf[0, len), sequence numbers from firstSeq) and
   * reads the answers up to the last one's ack: the kernel handles a sendmsg's requests
   * in order, so every failure before it has been answered by then.
   */
  private sendBatch(buf: Uint8Array, len: number, changes: readonly NlChange[], start: number, end: number,
    firstSeq: number, results: NlResult[]): void {
    const s = sendto(this.fd, buf, len, 0, this.kernel);
    if (s < 0) throw new SysError("netlink batch", -s, `${end - start} requests`);
    for (let i = start; i < end; i++) results[i] = OK;
    for (let done = false; !done;) {
      const ready = poll(this.pfd, 1, REPLY_TIMEOUT_MS);
      if (ready === -EINTR) continue;
      if (ready === 0) throw new SysError("netlink batch", ETIMEDOUT, `${end - start} requests unanswered`);
      const n = ready < 0 ? ready : recv(this.fd, this.rx, this.rx.length, 0);
      if (n < 0) throw new SysError("netlink batch", -n, `${end - start} requests`);
      for (const m of nlParse(this.rx, n)) {
        const i = start + ((m.seq - firstSeq) >>> 0);
        if (m.type !== NLMSG_ERROR || i >= end) continue; // not one of ours
        const code = nlErrorCode(this.rx, m);
        if (code < 0) {
          const [op, detail] = changeText(changes[i]);
          const why = nlErrorText(this.rx, m);
          results[i] = { code, error: new SysError(op, -code, why ? `${detail} (${why})` : detail) };
        }
        if (i === end - 1) done = true;
      }
    }
  }

  // --- message building ---

  private routeMsg(type: number, flags: number, r: RouteSpec, nb: NlBuilder = this.b): void {
    const del = type === RTM_DELROUTE;
    const table = r.table ?? RT_TABLE_MAIN;
    const rtype = r.type ?? "unicast";
    let scope: number = r.scope !== undefined ? SCOPE_NUM[r.scope]
      : rtype === "local" ? RT_SCOPE_HOST
      : rtype === "unicast" && r.gateway === undefined ? RT_SCOPE_LINK
      : RT_SCOPE_UNIVERSE;
    // On delete, scope NOWHERE, protocol 0 and type 0 are wildcards (fib_table_delete):
    // the route matches by table, prefix and the oif/gateway given.
    if (del && r.scope === undefined) scope = RT_SCOPE_NOWHERE;
    const b = nb.begin(type, flags, this.nextSeq()).rtmsg({
      family: family(r.af),
      dstLen: r.prefixLen,
      table: table < 256 ? table : RT_TABLE_UNSPEC,
      // "proto static" marks routes tslb made (iproute2 uses "boot"); 0 on delete is a wildcard.
      protocol: del ? 0 : RTPROT_STATIC,
      scope,
      type: del && r.type === undefined ? 0 : TYPE_NUM[rtype],
    });
    if (r.prefixLen > 0) b.attr(RTA_DST, addrBytes(r.af, r.dst));
    if (table >= 256) b.attrU32(RTA_TABLE, table);
    if (r.oif !== undefined) b.attrU32(RTA_OIF, r.oif);
    if (r.gateway !== undefined) b.attr(RTA_GATEWAY, addrBytes(r.af, r.gateway));
  }

  private ruleMsg(type: number, flags: number, r: RuleSpec, nb: NlBuilder = this.b): void {
    const full = r.af === 4 ? 32 : 128;
    const b = nb.begin(type, flags, this.nextSeq()).fibRuleHdr({
      family: family(r.af),
      dstLen: r.dst !== undefined ? r.dstLen ?? full : 0,
      srcLen: r.src !== undefined ? r.srcLen ?? full : 0,
      table: r.table < 256 ? r.table : RT_TABLE_UNSPEC,
      action: FR_ACT_TO_TBL,
    });
    b.attrU32(FRA_PRIORITY, r.priority);
    if (r.table >= 256) b.attrU32(FRA_TABLE, r.table);
    if (r.src !== undefined) b.attr(FRA_SRC, addrBytes(r.af, r.src));
    if (r.dst !== undefined) b.attr(FRA_DST, addrBytes(r.af, r.dst));
    if (r.iif !== undefined) b.attrStr(FRA_IIFNAME, r.iif);
    if (r.ipproto !== undefined) b.attrU8(FRA_IP_PROTO, r.ipproto);
    if (r.sport !== undefined) b.attrPortRange(FRA_SPORT_RANGE, r.sport, r.sport);
    if (r.dport !== undefined) b.attrPortRange(FRA_DPORT_RANGE, r.dport, r.dportHi ?? r.dport);
    if (r.fwmark !== undefined) {
      b.attrU32(FRA_FWMARK, r.fwmark >>> 0);
      b.attrU32(FRA_FWMASK, 0xffffffff);
    }
  }

  private neighMsg(type: number, flags: number, af: Af, addr: string, ifindex: number, nb: NlBuilder = this.b): void {
    nb.begin(type, flags, this.nextSeq())
      .ndmsg({ family: family(af), ifindex, state: NUD_PERMANENT, flags: NTF_PROXY })
      .attr(NDA_DST, addrBytes(af, addr));
  }

  // --- request / reply ---

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /**
   * Sends the message built in `tx`, hands each reply of this sequence to `onMsg`, and
   * returns the ACK's code (0 or -errno). With `throwOnError`, a non-zero code throws.
   */
  private transact(op: string, detail: string, onMsg: ((u8: Uint8Array, m: NlMsg) => void) | undefined,
    throwOnError: boolean): number {
    const len = this.b.end();
    const seq = this.seq;
    const s = sendto(this.fd, this.tx, len, 0, this.kernel);
    if (s < 0) throw new SysError(op, -s, detail);
    for (;;) {
      const ready = poll(this.pfd, 1, REPLY_TIMEOUT_MS);
      if (ready === -EINTR) continue;
      if (ready === 0) throw new SysError(op, ETIMEDOUT, `${detail} (no netlink reply)`);
      const n = ready < 0 ? ready : recv(this.fd, this.rx, this.rx.length, 0);
      if (n < 0) throw new SysError(op, -n, detail);
      for (const m of nlParse(this.rx, n)) {
        if (m.seq !== seq) continue; // a late reply to an earlier request
        if (m.type === NLMSG_ERROR) {
          const code = nlErrorCode(this.rx, m);
          if (code < 0 && throwOnError) {
            const why = nlErrorText(this.rx, m);
            throw new SysError(op, -code, why ? `${detail} (${why})` : detail);
          }
          return code;
        }
        if (m.type === NLMSG_DONE) return 0;
        onMsg?.(this.rx, m);
      }
    }
  }
}

function sockaddrNl(): Uint8Array {
  // struct sockaddr_nl: u16 family, u16 pad, u32 pid, u32 groups (host order).
  const a = new Uint8Array(12);
  new DataView(a.buffer).setUint16(0, AF_NETLINK, true);
  return a;
}

const family = (af: Af): number => (af === 4 ? AF_INET : AF_INET6);

function routeText(r: RouteSpec): string {
  const t = r.table ?? RT_TABLE_MAIN;
  return `${r.dst}/${r.prefixLen}${t !== RT_TABLE_MAIN ? ` table ${t}` : ""}`;
}

const OK: NlResult = { code: 0, error: null };

/** The op and detail a single call's SysError would name for this change. */
function changeText(c: NlChange): [string, string] {
  switch (c.op) {
    case "routeAdd": return ["RTM_NEWROUTE", routeText(c.route)];
    case "routeDel": return ["RTM_DELROUTE", routeText(c.route)];
    case "ruleAdd": return ["RTM_NEWRULE", ruleText(c.rule)];
    case "ruleDel": return ["RTM_DELRULE", ruleText(c.rule)];
    case "neighProxyAdd": return ["RTM_NEWNEIGH", `proxy ${c.addr} ifindex ${c.ifindex}`];
    case "neighProxyDel": return ["RTM_DELNEIGH", `proxy ${c.addr} ifindex ${c.ifindex}`];
  }
}

function ruleText(r: RuleSpec): string {
  return `pref ${r.priority} lookup ${r.table}`;
}

// --- address text <-> bytes (exported for tests only; src/wire/addr.ts is the shared version) ---

/** Network-order bytes of an IPv4 (af 4) or IPv6 (af 6) address; RangeError if malformed. */
export function addrBytes(af: Af, text: string): Uint8Array {
  const b = af === 4 ? parseV4(text) : parseV6(text);
  if (b === null) throw new RangeError(`invalid IPv${af} address: ${JSON.stringify(text)}`);
  return b;
}

/** Text of a 4- or 16-byte address (IPv6 compressed as RFC 5952 §4). */
export function addrText(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new RangeError(`address of ${b.length} bytes`);
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i] << 8) | b[i + 1]);
  // Longest run of two or more zero words (the first one on a tie) becomes "::".
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

function parseV4(s: string): Uint8Array | null {
  // By character code (a restore sends 10 000 VIP routes): four parts 0-255, no leading zeros.
  const b = new Uint8Array(4);
  let part = 0, v = 0, len = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (len === 0 || part > 3) return null;
      b[part++] = v;
      v = 0;
      len = 0;
      continue;
    }
    if (c < 48 || c > 57 || (len === 1 && v === 0)) return null; // not a digit, or a leading zero
    v = v * 10 + c - 48;
    if (++len > 3 || v > 255) return null;
  }
  return part === 4 ? b : null;
}

function parseV6(s: string): Uint8Array | null {
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const words = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseV4(g);
        if (v4 === null) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return null;
  const all = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  const b = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    b[2 * i] = all[i] >> 8;
    b[2 * i + 1] = all[i] & 0xff;
  }
  return b;
}
