// The user-space half of the bulk offload (io/tc_offload.ts): which connections the
// kernel rewrites, their statistics, and taking them back.
//
// - The pipeline asks (request()) when an established NAT or full-NAT TCP connection sends
//   a frame over OFFLOAD_MIN_LEN: a transfer, whose bytes the kernel then rewrites without
//   the TUN. The worker puts the connection's two entries in after its batch (flush()), out
//   of the packet lock: map updates are system calls.
// - Every OFFLOAD_SWEEP_MS the worker reads its entries' counts (sweep()): the new frames and bytes
//   go into the service's and destination's InPkts/OutPkts and bytes, as if tslb had
//   forwarded them, and keep the connection alive. An entry whose connection is gone
//   (expired, replaced) or whose real server is (removed, failed its health check) comes
//   out; a rule change makes the worker look at once. While a worker has entries it
//   wakes at least that often, even when every frame of theirs goes by the kernel.
// - A new connection whose addresses and ports an offloaded one had (a client reusing its
//   port before the old entry's sweep) must not find the old real server's rewrite: the
//   pipeline tells (forget()) when a shared hint says such a key may be in the map, and the
//   original-direction entry comes out after the batch, before the new connection's data.
//
// Allocates nothing after construction. Each worker has its own slots; the maps and the
// hint are shared by all.
import { F_OFFLOADED, type ConnTable } from "../conntrack/table.ts";
import { bpfNoThrow, bufPtr } from "../io/libc.ts";
import {
  OFFLOAD6_BYTES_AT, OFFLOAD6_PACKETS_AT, OFFLOAD_BYTES_AT, OFFLOAD_KEY6_BYTES, OFFLOAD_KEY_BYTES, OFFLOAD_PACKETS_AT,
  OFFLOAD_VALUE6_BYTES, type OffloadMaps,
} from "../io/tc_offload.ts";
import { K_INBYTES, K_INPKTS, K_OUTBYTES, K_OUTPKTS, MISC_BASE, M_OFFLOADED, destBase, svcBase } from "../stats/counters.ts";
import type { Pkt } from "../wire/pkt.ts";
import type { ActiveConfig } from "./snapshot.ts";
import { STEAL_MAX_FRAME } from "../io/xdp.ts";

/** A frame longer than this marks a transfer: the XDP program leaves such frames to the kernel (so to the TUN, or to the tc rewrite). */
export const OFFLOAD_MIN_LEN = STEAL_MAX_FRAME;
/** Connections one worker offloads at once; more go on through the TUN. */
export const OFFLOAD_SLOTS = 1024;
/** How often a worker folds its entries' counts in and checks their connections. */
export const OFFLOAD_SWEEP_MS = 250;
/** Slots of the shared hint (counts of offloaded original keys by hash). */
export const OFFLOAD_HINT_SLOTS = 4096;

const BPF_MAP_LOOKUP_ELEM = 1, BPF_MAP_UPDATE_ELEM = 2, BPF_MAP_DELETE_ELEM = 3;
/** Entries of one slot: its original and reply keys. */
const KEY_BYTES = OFFLOAD_KEY6_BYTES;
const PENDING = 64;
// Per-slot words: connection id (-1 free), service, destination, original-key hash, then
// what identifies the connection: client address word 0 and 3, ports, family.
const W_CONN = 0, W_SVC = 1, W_DEST = 2, W_HASH = 3, W_C0 = 4, W_C3 = 5, W_PORTS = 6, W_AF = 7, W_STRIDE = 8;

export class FlowOffload {
  private readonly slot = new Int32Array(OFFLOAD_SLOTS * W_STRIDE).fill(-1);
  /** Two keys per slot (original, reply), each KEY_BYTES. */
  private readonly keys = new Uint8Array(OFFLOAD_SLOTS * 2 * KEY_BYTES);
  private readonly keysAddr: number;
  /** Frames and bytes already counted, per slot and direction: [packets0, bytes0, packets1, bytes1]. */
  private readonly seen = new Float64Array(OFFLOAD_SLOTS * 4);
  private readonly value = new Uint8Array(OFFLOAD_VALUE6_BYTES);
  private readonly valueDv = new DataView(this.value.buffer);
  private readonly valueAddr: number;
  private readonly attr = new Uint8Array(128);
  private readonly attrDv = new DataView(this.attr.buffer);
  /** Connections asked for in this batch, and original keys to take out (forget). */
  private readonly pending = new Int32Array(PENDING);
  private npending = 0;
  private readonly stale = new Uint8Array(PENDING * KEY_BYTES);
  private readonly staleAf = new Uint8Array(PENDING);
  private nstale = 0;
  private readonly staleAddr: number;
  private cursor = 0;
  /** Slots in use. */
  used = 0;

  /**
   * `hint`: OFFLOAD_HINT_SLOTS shared counts, by original-key hash, of keys in the maps;
   * `counters`: the worker's block (stats, and M_OFFLOADED per connection taken over).
   */
  constructor(private readonly maps: OffloadMaps, private readonly hint: Int32Array, private readonly counters: Float64Array) {
    this.keysAddr = bufPtr(this.keys);
    this.valueAddr = bufPtr(this.value);
    this.staleAddr = bufPtr(this.stale);
  }

  /** The pipeline, under the packet lock: connection `id` carries a transfer (its F_OFFLOADED is set by the caller). */
  request(id: number): void {
    if (this.npending < PENDING) this.pending[this.npending++] = id;
  }

  /**
   * The pipeline, for a new connection from packet `p` (original direction, hashed): if an
   * offloaded connection may have had its key, that key comes out after the batch.
   */
  forget(p: Pkt): void {
    if (Atomics.load(this.hint, p.hash & (OFFLOAD_HINT_SLOTS - 1)) === 0 || this.nstale === PENDING) return;
    const k = this.nstale++;
    this.staleAf[k] = p.ipv;
    putKey(this.stale, k * KEY_BYTES, p.ipv, p.src0, p.src1, p.src2, p.src3, p.dst0, p.dst1, p.dst2, p.dst3, p.sport, p.dport);
  }

  /** After a batch, out of the lock: stale keys out, then the asked-for connections in. */
  flush(t: ConnTable): void {
    for (let k = 0; k < this.nstale; k++) {
      this.elem(BPF_MAP_DELETE_ELEM, this.staleAf[k] === 4 ? this.maps.v4 : this.maps.v6, this.staleAddr + k * KEY_BYTES, 0);
    }
    this.nstale = 0;
    for (let k = 0; k < this.npending; k++) this.install(t, this.pending[k]);
    this.npending = 0;
  }

  private install(t: ConnTable, id: number): void {
    if (this.used === OFFLOAD_SLOTS || !t.inUse(id)) {
      return;
    }
    let s = this.cursor;
    while (this.slot[s * W_STRIDE + W_CONN] >= 0) s = (s + 1) % OFFLOAD_SLOTS;
    this.cursor = (s + 1) % OFFLOAD_SLOTS;
    const af = t.af(id);
    const map = af === 4 ? this.maps.v4 : this.maps.v6;
    const o = s * 2 * KEY_BYTES;
    const r = o + KEY_BYTES;
    const cport = t.cport(id), vport = t.vport(id), dport = t.dport(id), lport = t.lport(id);
    // Original: client → VIP becomes client (or the local address) → real server.
    putKey(this.keys, o, af, w(t, id, 0, 0), w(t, id, 0, 1), w(t, id, 0, 2), w(t, id, 0, 3),
      w(t, id, 1, 0), w(t, id, 1, 1), w(t, id, 1, 2), w(t, id, 1, 3), cport, vport);
    putKey(this.value, 0, af, w(t, id, 3, 0), w(t, id, 3, 1), w(t, id, 3, 2), w(t, id, 3, 3),
      w(t, id, 2, 0), w(t, id, 2, 1), w(t, id, 2, 2), w(t, id, 2, 3), lport, dport);
    this.value.fill(0, af === 4 ? OFFLOAD_KEY_BYTES : OFFLOAD_KEY6_BYTES);
    if (this.elem(BPF_MAP_UPDATE_ELEM, map, this.keysAddr + o, this.valueAddr) < 0) {
      return;
    }
    // Reply: real server → client (or the local address) becomes VIP → client.
    putKey(this.keys, r, af, w(t, id, 2, 0), w(t, id, 2, 1), w(t, id, 2, 2), w(t, id, 2, 3),
      w(t, id, 3, 0), w(t, id, 3, 1), w(t, id, 3, 2), w(t, id, 3, 3), dport, lport);
    putKey(this.value, 0, af, w(t, id, 1, 0), w(t, id, 1, 1), w(t, id, 1, 2), w(t, id, 1, 3),
      w(t, id, 0, 0), w(t, id, 0, 1), w(t, id, 0, 2), w(t, id, 0, 3), vport, cport);
    if (this.elem(BPF_MAP_UPDATE_ELEM, map, this.keysAddr + r, this.valueAddr) < 0) {
      this.elem(BPF_MAP_DELETE_ELEM, map, this.keysAddr + o, 0);
      return;
    }
    const b = s * W_STRIDE;
    this.slot[b + W_CONN] = id;
    this.slot[b + W_SVC] = t.svc(id);
    this.slot[b + W_DEST] = t.dest(id);
    this.slot[b + W_HASH] = t.keyHash(id, 0);
    this.slot[b + W_C0] = w(t, id, 0, 0);
    this.slot[b + W_C3] = w(t, id, 0, 3);
    this.slot[b + W_PORTS] = (cport << 16) | vport;
    this.slot[b + W_AF] = af;
    this.seen.fill(0, s * 4, s * 4 + 4);
    Atomics.add(this.hint, this.slot[b + W_HASH] & (OFFLOAD_HINT_SLOTS - 1), 1);
    this.used++;
    this.counters[MISC_BASE + M_OFFLOADED]++;
  }

  /**
   * Every OFFLOAD_SWEEP_MS, and at once after a rule change: each entry's new frames and
   * bytes into the stats (and a connection that moved is kept alive for its state's
   * timeout in `cfg`); entries of connections that are gone come out, and so do those
   * whose real server was removed or failed its health check: their frames then reach
   * tslb again, which treats them as IPVS does (--expire-nodest-conn). `lock`/`unlock`
   * bracket the table work.
   */
  sweep(t: ConnTable, now: number, cfg: ActiveConfig, lock: () => void, unlock: () => void): void {
    for (let s = 0; s < OFFLOAD_SLOTS && this.used > 0; s++) {
      const b = s * W_STRIDE;
      const id = this.slot[b + W_CONN];
      if (id < 0) continue;
      const map = this.slot[b + W_AF] === 4 ? this.maps.v4 : this.maps.v6;
      const o = s * 2 * KEY_BYTES;
      lock();
      const live = this.owns(t, s, id) && cfg.destPresent[t.dest(id)] !== 0;
      let moved = this.harvest(s, 0, map, o);
      moved = this.harvest(s, 1, map, o + KEY_BYTES) || moved;
      if (live && moved) t.touch(id, now, cfg.timeouts[t.state(id)]);
      unlock();
      if (!live) this.release(s, map, o);
    }
  }

  /** Whether slot `s` still describes live connection `id` (not a new one on the same entry). */
  private owns(t: ConnTable, s: number, id: number): boolean {
    const b = s * W_STRIDE;
    return t.inUse(id) && (t.flags(id) & F_OFFLOADED) !== 0 && t.dest(id) === this.slot[b + W_DEST] &&
      w(t, id, 0, 0) === this.slot[b + W_C0] && w(t, id, 0, 3) === this.slot[b + W_C3] &&
      ((t.cport(id) << 16) | t.vport(id)) === this.slot[b + W_PORTS] && t.af(id) === this.slot[b + W_AF];
  }

  /** Direction `dir`'s entry at keys + `at`: its counts since the last look into the stats. True if it moved. */
  private harvest(s: number, dir: number, map: number, at: number): boolean {
    if (this.elem(BPF_MAP_LOOKUP_ELEM, map, this.keysAddr + at, this.valueAddr) < 0) return false;
    const v4 = this.slot[s * W_STRIDE + W_AF] === 4;
    const packets = u64(this.valueDv, v4 ? OFFLOAD_PACKETS_AT : OFFLOAD6_PACKETS_AT);
    const bytes = u64(this.valueDv, v4 ? OFFLOAD_BYTES_AT : OFFLOAD6_BYTES_AT);
    const k = s * 4 + dir * 2;
    const dp = packets - this.seen[k], db = bytes - this.seen[k + 1];
    if (dp <= 0) return false;
    this.seen[k] = packets;
    this.seen[k + 1] = bytes;
    const sb = svcBase(this.slot[s * W_STRIDE + W_SVC]), deb = destBase(this.slot[s * W_STRIDE + W_DEST]);
    const counters = this.counters;
    const kp = dir === 0 ? K_INPKTS : K_OUTPKTS, kb = dir === 0 ? K_INBYTES : K_OUTBYTES;
    counters[sb + kp] += dp; counters[sb + kb] += db;
    counters[deb + kp] += dp; counters[deb + kb] += db;
    return true;
  }

  private release(s: number, map: number, at: number): void {
    this.elem(BPF_MAP_DELETE_ELEM, map, this.keysAddr + at, 0);
    this.elem(BPF_MAP_DELETE_ELEM, map, this.keysAddr + at + KEY_BYTES, 0);
    Atomics.sub(this.hint, this.slot[s * W_STRIDE + W_HASH] & (OFFLOAD_HINT_SLOTS - 1), 1);
    this.slot[s * W_STRIDE + W_CONN] = -1;
    this.used--;
  }

  /** A map command on raw key and value addresses: bpf(2)'s result (negative on failure). */
  private elem(cmd: number, map: number, keyAddr: number, valueAddr: number): number {
    const dv = this.attrDv;
    dv.setUint32(0, map, true);
    putPtr(dv, 8, keyAddr);
    putPtr(dv, 16, valueAddr);
    dv.setUint32(24, 0, true); // BPF_ANY
    dv.setUint32(28, 0, true);
    return bpfNoThrow(cmd, this.attr);
  }
}

/** Word `i` of the entry's client (0), virtual (1), destination (2) or reply-local (3) address. */
function w(t: ConnTable, id: number, which: number, i: number): number {
  return t.addrWord(id, which, i);
}

/**
 * Source address, destination address and both ports in the map's layout at u8[at]
 * (IPv4: 4 + 4 + 2 + 2 bytes; IPv6: 16 + 16 + 2 + 2), network order.
 */
function putKey(u8: Uint8Array, at: number, af: number, s0: number, s1: number, s2: number, s3: number,
                d0: number, d1: number, d2: number, d3: number, sport: number, dport: number): void {
  if (af === 4) {
    be32(u8, at, s0); be32(u8, at + 4, d0);
    at += 8;
  } else {
    be32(u8, at, s0); be32(u8, at + 4, s1); be32(u8, at + 8, s2); be32(u8, at + 12, s3);
    be32(u8, at + 16, d0); be32(u8, at + 20, d1); be32(u8, at + 24, d2); be32(u8, at + 28, d3);
    at += 32;
  }
  u8[at] = sport >>> 8; u8[at + 1] = sport & 0xff;
  u8[at + 2] = dport >>> 8; u8[at + 3] = dport & 0xff;
}

function be32(u8: Uint8Array, at: number, v: number): void {
  u8[at] = v >>> 24; u8[at + 1] = (v >>> 16) & 0xff; u8[at + 2] = (v >>> 8) & 0xff; u8[at + 3] = v & 0xff;
}

/** A 64-bit address as two little-endian words (no BigInt). */
function putPtr(dv: DataView, at: number, addr: number): void {
  dv.setUint32(at, addr % 0x100000000, true);
  dv.setUint32(at + 4, Math.floor(addr / 0x100000000), true);
}

function u64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x100000000;
}
