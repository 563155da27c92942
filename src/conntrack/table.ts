// The connection table: fixed capacity, open addressing, all typed arrays over ONE
// SharedArrayBuffer (so the control thread can list it and several workers can share it
// later). Each entry has an original key (client → VIP) and, for NAT, a reply key
// (real server → client, or → the balancer's local address and port for full NAT), both
// in one linear-probing index pointing at the same entry
// (DPVS's two tuple-hash nodes, gVisor's conntrack). Deletion is backward-shift: no
// tombstones, so probe lengths stay short under churn. Expiry has no timers: a budgeted
// sweep plus a check on every hit. ActiveConn/InActConn are kept exactly as IPVS counts
// them (reference §4.5) in a shared Int32Array indexed by destination id.
//
// Contract: one writer thread at a time; the hot methods never allocate or throw.
import { flowHash } from "./hash.ts";
import { DS_ACTIVE, DS_INACTIVE, DS_PERSIST, DS_STRIDE, allocDestState, destUnbound } from "./dest_state.ts";
import { S_CLOSE, S_ESTABLISHED, S_NONE, S_SYNACK, S_SYN_RECV, S_TIME_WAIT } from "./tcp_state.ts";
import type { Pkt } from "../wire/pkt.ts";

// Entry layout, int32 words per entry.
const E_CADDR = 0; // 4 words: client address
const E_VADDR = 4; // 4 words: virtual address
const E_DADDR = 8; // 4 words: real server address
// 4 words: where replies are addressed — the client for NAT, the balancer's local address
// for full NAT (DPVS's laddr). With E_LPORT it completes the reply key.
const E_LADDR = 12;
const E_PORTS = 16; // cport << 16 | vport
const E_DPORT = 17; // dport | proto << 16 | af << 24
const E_STATE = 18; // state | flags << 8
const E_IDS = 19; // service id << 17 | destination id (MAX_SVC 2^14, MAX_DEST 2^17)
const E_EXPIRES = 21; // seconds on the table clock; for a free entry, the next free id (or -1)
// A connection: the id of its persistence template, or -1. A template: how many live
// connections it controls. (An entry is one or the other, so they share the word.)
const E_LINK = 20;
// The reply key's destination port (cport, or the full-NAT local port) | the PROXY
// header's length << 16 | its version << 24.
const E_LPORT = 22;
const E_ISN = 23; // --proxy-protocol: the client's initial sequence number
// 24 words (96 bytes) plus 4 index slots of 8 bytes: 128 bytes per connection. The key
// hashes are not stored: remove() computes them again from the entry.
const STRIDE = 24;
const DEST_BITS = 17;
const DEST_MASK = (1 << DEST_BITS) - 1;

export const F_USED = 1;
/** Counted in InActConn (IPVS IP_VS_CONN_F_INACTIVE); otherwise in ActiveConn. */
export const F_INACTIVE = 2;
/** DR/tunnel: replies bypass us, use the INPUT-ONLY state table (IP_VS_CONN_F_NOOUTPUT). */
export const F_NOOUTPUT = 4;
/** A reply key is in the index. */
export const F_REPLY = 8;
// Bits 16 and 32 carry the forwarding method (dataplane/pipeline.ts FWD_SHIFT).
/** A persistence template (-p): client port 0, counted in PersistConn, never forwarded. */
export const F_TEMPLATE = 64;
/** One-packet scheduling (-o): the next datagram in this direction is scheduled afresh. */
export const F_ONEPACKET = 128;
/** The original key was taken out of the index (an invalidated template). */
export const F_UNKEYED = 256;
/** --proxy-protocol: a PROXY header goes in front of the client's first data (E_ISN, and the length and version in E_LPORT). */
export const F_PROXY = 512;
/** Full NAT to a real server of the other family: every packet is translated (NAT46/NAT64). */
export const F_XLAT = 1024;
/** Bulk offload asked for (dataplane/flow_offload.ts): the kernel may rewrite this connection's transfer frames. */
export const F_OFFLOADED = 2048;
/** Entries scanned for a half-open victim when the table is full (bounded work per new flow). */
const EVICT_SCAN = 256;
/** IPVS re-checks a template that still controls connections this often instead of freeing it. */
const TEMPLATE_RECHECK_SEC = 60;

// Header words.
const H_COUNT = 0;
const H_CAPACITY = 1;
const H_NOW = 2;
const H_SEED = 3;
/** First id of the free list (threaded through free entries' E_EXPIRES), -1 when full. */
const H_FREE = 4;
/** Full NAT's local-address and local-port cursors (Pipeline.newConn), shared by the workers. */
const H_CURSORS = 5;
const H_WORDS = 16;
/** Indexes into ConnTable.cursors. */
export const CURSOR_LADDR = 0;
export const CURSOR_PORT = 1;

export interface ConnTableShared {
  sab: SharedArrayBuffer;
  destState: SharedArrayBuffer;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Bytes of shared memory for a table of `capacity` entries (used to size --conn-max). */
export function connTableBytes(capacity: number): number {
  const slots = nextPow2(capacity * 4);
  return 4 * (H_WORDS + capacity * STRIDE + slots * 2);
}

export class ConnTable {
  readonly capacity: number;
  readonly header: Int32Array;
  /** Full NAT's cursors (CURSOR_LADDR, CURSOR_PORT), a view into the shared header. */
  readonly cursors: Int32Array;
  readonly e: Int32Array;
  /**
   * The index, two words per slot: [2i] is 0 (empty) or (id << 1 | dir) + 1, [2i+1] the
   * key's hash (saves reading the entry on a miss). Side by side, a probe touches one
   * cache line, not one in each of two arrays.
   */
  readonly idx: Int32Array;
  readonly mask: number;
  /** Shared per-destination counts and flags (conntrack/dest_state.ts). */
  readonly destState: Int32Array;
  private sweepCursor = 0;
  private evictCursor = 0;
  private readonly pressureAt: number;
  /** Half-open entries dropped to make room (drop_entry). */
  evicted = 0;
  private readonly seed: number;

  private constructor(shared: ConnTableShared, init: boolean, capacity: number) {
    const sab = shared.sab;
    this.header = new Int32Array(sab, 0, H_WORDS);
    this.cursors = new Int32Array(sab, H_CURSORS * 4, 2);
    if (!init) capacity = this.header[H_CAPACITY];
    const slots = nextPow2(capacity * 4);
    this.capacity = capacity;
    this.mask = slots - 1;
    let off = H_WORDS * 4;
    this.e = new Int32Array(sab, off, capacity * STRIDE);
    off += capacity * STRIDE * 4;
    this.idx = new Int32Array(sab, off, slots * 2);
    this.destState = new Int32Array(shared.destState);
    if (init) {
      this.header[H_CAPACITY] = capacity;
      this.header[H_SEED] = (Math.random() * 0x7fffffff) | 0;
      // The free list hands ids out in ascending order; freed ids come back first (LIFO).
      for (let i = 0; i < capacity; i++) this.e[i * STRIDE + E_EXPIRES] = i + 1 < capacity ? i + 1 : -1;
      this.header[H_FREE] = capacity > 0 ? 0 : -1;
    }
    this.pressureAt = Math.floor(capacity * 0.75);
    this.seed = this.header[H_SEED];
  }

  static create(capacity: number, maxDests: number): ConnTable {
    const shared = { sab: new SharedArrayBuffer(connTableBytes(capacity)), destState: allocDestState(maxDests) };
    return new ConnTable(shared, true, capacity);
  }
  /** A second view of an existing table (another thread). Read-only use unless it becomes the writer. */
  static attach(shared: ConnTableShared): ConnTable {
    return new ConnTable(shared, false, 0);
  }
  get shared(): ConnTableShared {
    return { sab: this.header.buffer as SharedArrayBuffer, destState: this.destState.buffer as SharedArrayBuffer };
  }
  get count(): number {
    return this.header[H_COUNT];
  }
  /** The table clock (seconds), advanced by the writer once per batch. */
  get now(): number {
    return this.header[H_NOW];
  }
  setNow(sec: number): void {
    this.header[H_NOW] = sec;
  }

  /** Sets p.hash for the packet's key; call once per packet before lookup/insert. */
  hashPkt(p: Pkt): number {
    p.hash = flowHash(this.seed, p.proto, p.src0, p.src1, p.src2, p.src3, p.sport, p.dst0, p.dst1, p.dst2, p.dst3, p.dport);
    return p.hash;
  }

  /**
   * The live connection for `p` in either direction (sets p.dir), or -1. Expired entries
   * met on the way are removed (gVisor reaps while walking a bucket). Needs p.hash (hashPkt).
   */
  lookup(p: Pkt, now: number): number {
    return this.find(p, now, 0);
  }

  /** The live persistence template whose key is `p` (client net, port 0, VIP, port), or -1. */
  lookupTemplate(p: Pkt, now: number): number {
    return this.find(p, now, F_TEMPLATE);
  }

  private find(p: Pkt, now: number, kind: number): number {
    const e = this.e;
    const idx = this.idx;
    const mask = this.mask;
    let i = p.hash & mask;
    for (;;) {
      const v = idx[i << 1];
      if (v === 0) return -1;
      if (idx[(i << 1) + 1] === p.hash) {
        const id = (v - 1) >> 1;
        const dir = (v - 1) & 1;
        const b = id * STRIDE;
        const ports = e[b + E_PORTS];
        const dw = e[b + E_DPORT];
        if (((dw >> 16) & 0xff) === p.proto && ((e[b + E_STATE] >> 8) & F_TEMPLATE) === kind) {
          if (dir === 0) {
            if (e[b + E_CADDR] === p.src0 && e[b + E_VADDR] === p.dst0 && ports === ((p.sport << 16) | p.dport) &&
                e[b + E_CADDR + 1] === p.src1 && e[b + E_CADDR + 2] === p.src2 && e[b + E_CADDR + 3] === p.src3 &&
                e[b + E_VADDR + 1] === p.dst1 && e[b + E_VADDR + 2] === p.dst2 && e[b + E_VADDR + 3] === p.dst3) {
              // Expired: reap it; backward-shift may have pulled a later key into slot i.
              if (e[b + E_EXPIRES] <= now && this.expire(id, now)) continue;
              p.dir = 0;
              return id;
            }
          } else if (e[b + E_DADDR] === p.src0 && e[b + E_LADDR] === p.dst0 && (dw & 0xffff) === p.sport &&
                     (e[b + E_LPORT] & 0xffff) === p.dport &&
                     e[b + E_DADDR + 1] === p.src1 && e[b + E_DADDR + 2] === p.src2 && e[b + E_DADDR + 3] === p.src3 &&
                     e[b + E_LADDR + 1] === p.dst1 && e[b + E_LADDR + 2] === p.dst2 && e[b + E_LADDR + 3] === p.dst3) {
            if (e[b + E_EXPIRES] <= now && this.expire(id, now)) continue;
            p.dir = 1;
            return id;
          }
        }
      }
      i = (i + 1) & mask;
    }
  }

  /**
   * New entry for the packet `p` (original direction) bound to destination `dest` at
   * d0..d3:dport. A connection is counted as inactive, as IPVS counts every new entry;
   * with `reply` its reply key is indexed too (NAT); `tmpl` is its controlling template
   * or -1. With F_TEMPLATE in `flags` the entry is a persistence template instead: only
   * the original key, counted in PersistConn. Returns the id, or -1 when the table is full.
   */
  insert(p: Pkt, svc: number, dest: number, d0: number, d1: number, d2: number, d3: number, dport: number,
         flags: number, reply: boolean, state: number, now: number, timeoutSec: number, tmpl: number): number {
    return this.insertVia(p, svc, dest, d0, d1, d2, d3, dport, p.src0, p.src1, p.src2, p.src3, p.sport,
      flags, reply, state, now, timeoutSec, tmpl);
  }

  /**
   * insert() for full NAT: replies come back addressed to l0..l3:lport (the balancer's
   * local address and a port of its pool) instead of the client.
   */
  insertVia(p: Pkt, svc: number, dest: number, d0: number, d1: number, d2: number, d3: number, dport: number,
            l0: number, l1: number, l2: number, l3: number, lport: number,
            flags: number, reply: boolean, state: number, now: number, timeoutSec: number, tmpl: number): number {
    if (this.header[H_FREE] < 0 && !this.evictHalfOpen()) return -1;
    const e = this.e;
    const id = this.header[H_FREE];
    const b = id * STRIDE;
    this.header[H_FREE] = e[b + E_EXPIRES];
    e[b + E_CADDR] = p.src0; e[b + E_CADDR + 1] = p.src1; e[b + E_CADDR + 2] = p.src2; e[b + E_CADDR + 3] = p.src3;
    e[b + E_VADDR] = p.dst0; e[b + E_VADDR + 1] = p.dst1; e[b + E_VADDR + 2] = p.dst2; e[b + E_VADDR + 3] = p.dst3;
    e[b + E_DADDR] = d0; e[b + E_DADDR + 1] = d1; e[b + E_DADDR + 2] = d2; e[b + E_DADDR + 3] = d3;
    e[b + E_LADDR] = l0; e[b + E_LADDR + 1] = l1; e[b + E_LADDR + 2] = l2; e[b + E_LADDR + 3] = l3;
    e[b + E_LPORT] = lport;
    e[b + E_ISN] = 0;
    e[b + E_PORTS] = (p.sport << 16) | p.dport;
    e[b + E_DPORT] = dport | (p.proto << 16) | (p.ipv << 24);
    e[b + E_IDS] = (svc << DEST_BITS) | dest;
    e[b + E_EXPIRES] = now + timeoutSec;
    const template = (flags & F_TEMPLATE) !== 0;
    e[b + E_LINK] = template ? 0 : tmpl;
    if (!template && tmpl >= 0) e[tmpl * STRIDE + E_LINK]++;
    let f = flags | F_USED | (template ? 0 : F_INACTIVE);
    // p.hash is hashPkt's over the fields just stored, so keyHash(id, 0) would give it again.
    this.insertKey(p.hash, (id << 1) + 1);
    if (reply) {
      const h1 = flowHash(this.seed, p.proto, d0, d1, d2, d3, dport, l0, l1, l2, l3, lport);
      // An older entry with the same reply tuple (the client reused its port toward another
      // VIP that maps to the same real server and port) is dead from the real server's point
      // of view — one TCP 4-tuple there — so it goes: replies must find the new entry, as
      // IPVS's newest-first hash chains find it.
      const old = this.findReply(h1, p.proto, d0, d1, d2, d3, dport, l0, l1, l2, l3, lport);
      if (old >= 0) this.remove(old);
      this.insertKey(h1, (id << 1) + 2);
      f |= F_REPLY;
    }
    e[b + E_STATE] = state | (f << 8);
    this.destState[dest * DS_STRIDE + (template ? DS_PERSIST : DS_INACTIVE)]++;
    this.header[H_COUNT]++;
    return id;
  }

  /**
   * Frees an entry: its index keys, its count (ActiveConn/InActConn with the thresholds'
   * hysteresis, or PersistConn), its hold on its template, its id.
   */
  remove(id: number): void {
    const e = this.e;
    const b = id * STRIDE;
    const f = e[b + E_STATE] >> 8;
    if ((f & F_USED) === 0) return;
    if ((f & F_UNKEYED) === 0) this.removeKey(this.keyHash(id, 0), (id << 1) + 1);
    if (f & F_REPLY) this.removeKey(this.keyHash(id, 1), (id << 1) + 2);
    const dest = e[b + E_IDS] & DEST_MASK;
    if (f & F_TEMPLATE) {
      this.destState[dest * DS_STRIDE + DS_PERSIST]--;
    } else {
      this.destState[dest * DS_STRIDE + ((f & F_INACTIVE) !== 0 ? DS_INACTIVE : DS_ACTIVE)]--;
      destUnbound(this.destState, dest);
      const t = e[b + E_LINK];
      if (t >= 0) e[t * STRIDE + E_LINK]--;
    }
    e[b + E_STATE] = 0;
    e[b + E_EXPIRES] = this.header[H_FREE];
    this.header[H_FREE] = id;
    this.header[H_COUNT]--;
  }

  /**
   * Moves an entry to `state` with `timeoutSec` from `now`, moving it between ActiveConn
   * and InActConn when it enters or leaves ESTABLISHED (IPVS set_tcp_state).
   */
  setState(id: number, state: number, now: number, timeoutSec: number): void {
    const e = this.e;
    const b = id * STRIDE;
    let f = e[b + E_STATE] >> 8;
    const dest = e[b + E_IDS] & DEST_MASK;
    if ((f & F_INACTIVE) === 0 && state !== S_ESTABLISHED) {
      this.destState[dest * DS_STRIDE + DS_ACTIVE]--; this.destState[dest * DS_STRIDE + DS_INACTIVE]++; f |= F_INACTIVE;
    } else if ((f & F_INACTIVE) !== 0 && state === S_ESTABLISHED) {
      this.destState[dest * DS_STRIDE + DS_ACTIVE]++; this.destState[dest * DS_STRIDE + DS_INACTIVE]--; f &= ~F_INACTIVE;
    }
    e[b + E_STATE] = state | (f << 8);
    e[b + E_EXPIRES] = now + timeoutSec;
  }

  /**
   * An entry's timer ran out: frees it and returns true, except for a template that still
   * controls live connections, which IPVS keeps (re-checked every 60 s) so stickiness
   * lasts as long as the connections do.
   */
  private expire(id: number, now: number): boolean {
    const b = id * STRIDE;
    if (((this.e[b + E_STATE] >> 8) & F_TEMPLATE) !== 0 && this.e[b + E_LINK] > 0) {
      this.e[b + E_EXPIRES] = now + TEMPLATE_RECHECK_SEC;
      return false;
    }
    this.remove(id);
    return true;
  }

  /**
   * Takes a template out of the index so it never matches again (its destination is
   * gone or quiesced); the entry itself lives on until its connections are gone and it
   * expires, as IPVS's invalidated templates do, so their counts stay exact.
   */
  invalidate(id: number): void {
    const b = id * STRIDE;
    const f = this.e[b + E_STATE] >> 8;
    if ((f & F_USED) === 0 || (f & F_UNKEYED) !== 0) return;
    this.removeKey(this.keyHash(id, 0), (id << 1) + 1);
    this.e[b + E_STATE] |= F_UNKEYED << 8;
    this.e[b + E_EXPIRES] = 0;
  }

  /** Re-arms the timer without a state change (UDP, every packet). */
  touch(id: number, now: number, timeoutSec: number): void {
    this.e[id * STRIDE + E_EXPIRES] = now + timeoutSec;
  }

  /**
   * A full table makes room by dropping one TCP entry that carries no data — half-open
   * (NONE, SYN_RECV, SYNACK) or finished (TIME_WAIT, CLOSE) — found within a short scan
   * from a rotating cursor: IPVS's drop_entry defence against SYN floods, and what keeps a
   * high rate of short connections from filling the table with TIME_WAIT entries.
   * Established entries and templates are never dropped. True when one went.
   */
  private evictHalfOpen(): boolean {
    const e = this.e;
    const cap = this.capacity;
    let c = this.evictCursor;
    for (let n = 0; n < EVICT_SCAN && n < cap; n++) {
      const id = c;
      c = c + 1 === cap ? 0 : c + 1;
      const b = id * STRIDE;
      const f = e[b + E_STATE] >> 8;
      const st = e[b + E_STATE] & 0xff;
      const tcp = ((e[b + E_DPORT] >> 16) & 0xff) === 6;
      if ((f & F_USED) !== 0 && (f & F_TEMPLATE) === 0 && tcp &&
          (st === S_SYN_RECV || st === S_NONE || st === S_SYNACK || st === S_TIME_WAIT || st === S_CLOSE)) {
        this.remove(id);
        this.evictCursor = c;
        this.evicted++;
        return true;
      }
    }
    this.evictCursor = c;
    return false;
  }

  /** Over this many entries the table is under pressure: half-open entries get short timeouts. */
  get pressure(): number {
    return this.pressureAt;
  }

  /** Restarts a template's timer when a new connection uses it. */
  rearm(id: number, now: number, timeoutSec: number): void {
    const b = id * STRIDE + E_EXPIRES;
    if (this.e[b] < now + timeoutSec) this.e[b] = now + timeoutSec;
  }

  /** Sets flag bits (F_OFFLOADED). */
  setFlags(id: number, bits: number): void {
    this.e[id * STRIDE + E_STATE] |= bits << 8;
  }

  /** Clears flag bits (e.g. F_NOOUTPUT once an OUTPUT packet is seen). */
  clearFlags(id: number, bits: number): void {
    const b = id * STRIDE + E_STATE;
    this.e[b] &= ~(bits << 8);
  }

  /** Expires at most `budget` entries' worth of slots from where the last sweep stopped. Returns how many it freed. */
  sweep(now: number, budget: number): number {
    const e = this.e;
    const cap = this.capacity;
    let c = this.sweepCursor;
    let freed = 0;
    for (let n = 0; n < budget; n++) {
      const b = c * STRIDE;
      if ((e[b + E_STATE] & (F_USED << 8)) !== 0 && e[b + E_EXPIRES] <= now && this.expire(c, now)) freed++;
      c++;
      if (c === cap) c = 0;
    }
    this.sweepCursor = c;
    return freed;
  }

  // Per-entry accessors (control plane listing, tests, and the pipeline's cold paths).
  state(id: number): number { return this.e[id * STRIDE + E_STATE] & 0xff; }
  flags(id: number): number { return this.e[id * STRIDE + E_STATE] >> 8; }
  svc(id: number): number { return this.e[id * STRIDE + E_IDS] >>> DEST_BITS; }
  dest(id: number): number { return this.e[id * STRIDE + E_IDS] & DEST_MASK; }
  expires(id: number): number { return this.e[id * STRIDE + E_EXPIRES]; }
  proto(id: number): number { return (this.e[id * STRIDE + E_DPORT] >> 16) & 0xff; }
  af(id: number): number { return (this.e[id * STRIDE + E_DPORT] >> 24) & 0xff; }
  cport(id: number): number { return this.e[id * STRIDE + E_PORTS] >>> 16; }
  vport(id: number): number { return this.e[id * STRIDE + E_PORTS] & 0xffff; }
  dport(id: number): number { return this.e[id * STRIDE + E_DPORT] & 0xffff; }
  /** Starts PROXY-protocol sequence adjustment: the client's ISN and the header's length. */
  setProxy(id: number, isn: number, delta: number, version: number): void {
    const b = id * STRIDE;
    this.e[b + E_ISN] = isn;
    this.e[b + E_LPORT] = (this.e[b + E_LPORT] & 0xffff) | (delta << 16) | (version << 24);
    this.e[b + E_STATE] |= F_PROXY << 8;
  }
  isn(id: number): number { return this.e[id * STRIDE + E_ISN] >>> 0; }
  proxyDelta(id: number): number { return (this.e[id * STRIDE + E_LPORT] >>> 16) & 0xff; }
  /** The PROXY header's version this connection was set up with (the service may change since). */
  proxyVersion(id: number): number { return this.e[id * STRIDE + E_LPORT] >>> 24; }
  /** The reply key's destination port: the client's port, or the full-NAT local port. */
  lport(id: number): number { return this.e[id * STRIDE + E_LPORT] & 0xffff; }
  /** Word w (0–3) of the client (0), virtual (1), destination (2) or reply-local (3, ADDR_LOCAL) address. */
  addrWord(id: number, which: number, w: number): number { return this.e[id * STRIDE + which * 4 + w]; }
  inUse(id: number): boolean { return (this.e[id * STRIDE + E_STATE] & (F_USED << 8)) !== 0; }
  /** A connection's persistence template, or -1 (not meaningful for a template). */
  template(id: number): number { return this.e[id * STRIDE + E_LINK]; }

  /** The hash of an entry's original (0) or reply (1) key, from its fields (as hashPkt made it). */
  keyHash(id: number, dir: number): number {
    const e = this.e;
    const b = id * STRIDE;
    const proto = (e[b + E_DPORT] >> 16) & 0xff;
    if (dir === 0) {
      const ports = e[b + E_PORTS];
      return flowHash(this.seed, proto, e[b + E_CADDR], e[b + E_CADDR + 1], e[b + E_CADDR + 2], e[b + E_CADDR + 3], ports >>> 16,
        e[b + E_VADDR], e[b + E_VADDR + 1], e[b + E_VADDR + 2], e[b + E_VADDR + 3], ports & 0xffff);
    }
    return flowHash(this.seed, proto, e[b + E_DADDR], e[b + E_DADDR + 1], e[b + E_DADDR + 2], e[b + E_DADDR + 3], e[b + E_DPORT] & 0xffff,
      e[b + E_LADDR], e[b + E_LADDR + 1], e[b + E_LADDR + 2], e[b + E_LADDR + 3], e[b + E_LPORT] & 0xffff);
  }

  /**
   * The live entry holding the reply key (proto, s:sport → d:dport), or -1. Full NAT asks
   * before it hands out a local port, so two connections never share one 4-tuple toward a
   * real server. An expired entry that no sweep has reached yet gives its key up now.
   */
  replyHolder(proto: number, s0: number, s1: number, s2: number, s3: number, sport: number,
              d0: number, d1: number, d2: number, d3: number, dport: number, now: number): number {
    const h = flowHash(this.seed, proto, s0, s1, s2, s3, sport, d0, d1, d2, d3, dport);
    const id = this.findReply(h, proto, s0, s1, s2, s3, sport, d0, d1, d2, d3, dport);
    return id >= 0 && this.e[id * STRIDE + E_EXPIRES] <= now && this.expire(id, now) ? -1 : id;
  }

  /** The entry whose reply key is (proto, s:sport → d:dport), or -1. */
  private findReply(hash: number, proto: number, s0: number, s1: number, s2: number, s3: number, sport: number,
                    d0: number, d1: number, d2: number, d3: number, dport: number): number {
    const e = this.e;
    const mask = this.mask;
    const idx = this.idx;
    for (let i = hash & mask; idx[i << 1] !== 0; i = (i + 1) & mask) {
      const v = idx[i << 1];
      if (idx[(i << 1) + 1] !== hash || ((v - 1) & 1) !== 1) continue;
      const b = ((v - 1) >> 1) * STRIDE;
      const dw = e[b + E_DPORT];
      if (((dw >> 16) & 0xff) === proto && (dw & 0xffff) === sport && (e[b + E_LPORT] & 0xffff) === dport &&
          e[b + E_DADDR] === s0 && e[b + E_DADDR + 1] === s1 && e[b + E_DADDR + 2] === s2 && e[b + E_DADDR + 3] === s3 &&
          e[b + E_LADDR] === d0 && e[b + E_LADDR + 1] === d1 && e[b + E_LADDR + 2] === d2 && e[b + E_LADDR + 3] === d3) {
        return (v - 1) >> 1;
      }
    }
    return -1;
  }

  private insertKey(hash: number, v: number): void {
    const mask = this.mask;
    const idx = this.idx;
    let i = hash & mask;
    while (idx[i << 1] !== 0) i = (i + 1) & mask;
    idx[i << 1] = v;
    idx[(i << 1) + 1] = hash;
  }

  private removeKey(hash: number, v: number): void {
    const mask = this.mask;
    const idx = this.idx;
    let i = hash & mask;
    while (idx[i << 1] !== v) {
      if (idx[i << 1] === 0) return; // not indexed: nothing to undo
      i = (i + 1) & mask;
    }
    // Backward-shift: pull later members of the cluster into the hole when their home
    // slot does not lie cyclically in (hole, j].
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const w = idx[j << 1];
      if (w === 0) break;
      const home = idx[(j << 1) + 1] & mask;
      const between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (!between) {
        idx[i << 1] = w;
        idx[(i << 1) + 1] = idx[(j << 1) + 1];
        i = j;
      }
    }
    idx[i << 1] = 0;
  }
}
