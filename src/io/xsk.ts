// AF_XDP sockets (copy mode) over one shared packet area. Each socket owns an 8 MiB slice
// of the area as its UMEM: half its frames sit in the fill ring for the kernel to receive
// into, half are a free list for sending. All slices live in one mapping, so the data
// path reads a frame in place and copies it to another socket's send frame with
// copyWithin (no allocation, no system call). The kernel copies into and out of the
// frames (copy mode works on every driver, veth and bridges included).
//
// Sending with a partial transport checksum: where the kernel can (Linux 6.8+: AF_XDP TX
// metadata, XDP_UMEM_TX_METADATA_LEN), each socket's UMEM is registered with room for a
// struct xsk_tx_metadata in front of every send frame, and a frame whose checksum holds
// only the pseudo-header sum (as a local sender left it) goes out with
// XDP_TXMD_FLAGS_CHECKSUM: the kernel builds its socket buffer as CHECKSUM_PARTIAL, so a
// veth peer's stack takes it as it is, and a NIC (or the kernel, for one without the
// offload) completes it. tslb then never sums a payload itself (xdp_path.ts).
//
// Hot calls (rxCount, rxAddr/rxLen, rxRelease, txFrame/txPush, flushTx) never allocate
// and never throw; set-up (openXsk) throws SysError.
import {
  MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, SysError,
  bind, close, getsockoptBytes, kick, mmap, setsockopt, socket,
} from "./libc.ts";
import { macHi as readMacHi, macLo as readMacLo } from "../wire/ethernet.ts";

const AF_XDP = 44, SOL_XDP = 283;
const XDP_MMAP_OFFSETS = 1, XDP_RX_RING = 2, XDP_TX_RING = 3, XDP_UMEM_REG = 4, XDP_UMEM_FILL_RING = 5, XDP_UMEM_COMPLETION_RING = 6;
const XDP_COPY = 2;
/** xdp_umem_reg flags and xdp_desc options (include/uapi/linux/if_xdp.h). */
const XDP_UMEM_TX_METADATA_LEN = 1 << 2;
const XDP_TX_METADATA = 1 << 1;
const XDP_TXMD_FLAGS_CHECKSUM = 1 << 1;
/** sizeof(struct xsk_tx_metadata): flags u64, then request { csum_start u16, csum_offset u16, launch_time u64 }. */
const TX_METADATA_LEN = 24;
/**
 * Where a send frame starts within its chunk: the TX metadata goes just before it. (The
 * kernel receives at 256 bytes into a chunk; sends may start anywhere.)
 */
const TX_HEADROOM = 64;
const PGOFF_RX = 0, PGOFF_TX = 0x80000000, PGOFF_FILL = 0x100000000, PGOFF_COMP = 0x180000000;

/** Bytes per frame; a frame holds one Ethernet frame of up to an MTU of 1 500 and more. */
export const XSK_FRAME = 2048;
/** The longest frame a socket takes: copy mode receives after XDP_PACKET_HEADROOM (256 bytes). */
export const XSK_MAX_FRAME = XSK_FRAME - 256;
/** Frames per socket, and entries per ring (half the frames). */
const FRAMES = 4096;
const RING = FRAMES / 2;
/** One socket's slice of the packet area. */
export const XSK_UMEM_BYTES = XSK_FRAME * FRAMES;

/** A ring: its producer and consumer words and its entries, as u32 indexes into `u32`. */
export class Ring {
  constructor(readonly u32: Uint32Array, readonly prod: number, readonly cons: number, readonly desc: number) {}
}

function mapRing(fd: number, off: DataView, at: number, pgoff: number, entryBytes: number, what: string): Ring {
  // struct xdp_ring_offset: producer, consumer, desc, flags (u64 each).
  const producer = Number(off.getBigUint64(at, true));
  const consumer = Number(off.getBigUint64(at + 8, true));
  const desc = Number(off.getBigUint64(at + 16, true));
  const { buf } = mmap(desc + RING * entryBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff, `mmap ${what}`);
  return new Ring(new Uint32Array(buf), producer >> 2, consumer >> 2, desc >> 2);
}

/** A ring in ordinary memory, laid out as the kernel's (for tests): producer, consumer, then the entries. */
export function memRing(entryBytes: number): Ring {
  return new Ring(new Uint32Array(16 + (RING * entryBytes) / 4), 0, 1, 16);
}

/** Entries per ring. */
export const XSK_RING = RING;

/**
 * The packet area: one anonymous mapping with a slice per socket, then `extra` bytes of
 * the data path's own (staging for joined segments), so that copies between any two
 * stay within one buffer.
 */
export function allocXskArea(sockets: number, extra: number): { addr: number; buf: ArrayBuffer } {
  return mmap(sockets * XSK_UMEM_BYTES + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0, "mmap (AF_XDP packet area)");
}

export class XskSocket {
  /** Frames free for sending, as offsets within this socket's slice. */
  private readonly free = new Int32Array(FRAMES - RING);
  private nfree = 0;
  /** Cached ring positions (ours to advance: rx consumer, fill and tx producer). */
  private rxCons = 0;
  private fillProd = 0;
  private txProd = 0;

  constructor(
    readonly name: string,
    readonly fd: number,
    readonly ifindex: number,
    /** The interface's MAC: the high 16 bits and the low 32. */
    readonly macHi: number,
    readonly macLo: number,
    /** Where this socket's slice starts in the packet area. */
    readonly base: number,
    private readonly rx: Ring,
    private readonly tx: Ring,
    private readonly fill: Ring,
    private readonly comp: Ring,
    /** The packet area (to write TX metadata in front of a send frame). */
    private readonly area: DataView,
    /** Frames may leave with a partial checksum (txPushPartial): the UMEM has TX metadata room. */
    readonly txCsum: boolean,
  ) {
    // Our ends of the rings start where they stand (0 on a new socket); the arithmetic
    // wraps at 2^32 as the kernel's does.
    this.rxCons = Atomics.load(rx.u32, rx.cons);
    this.fillProd = Atomics.load(fill.u32, fill.prod);
    this.txProd = Atomics.load(tx.u32, tx.prod);
    // Half the frames wait in the fill ring, half are for sending.
    for (let i = 0; i < RING; i++) this.putFill(i * XSK_FRAME);
    Atomics.store(fill.u32, fill.prod, this.fillProd);
    for (let i = RING; i < FRAMES; i++) this.free[this.nfree++] = i * XSK_FRAME + TX_HEADROOM;
  }

  private putFill(addr: number): void {
    // Fill entries are u64 frame addresses (all below 2^32 here).
    const at = this.fill.desc + (this.fillProd & (RING - 1)) * 2;
    this.fill.u32[at] = addr;
    this.fill.u32[at + 1] = 0;
    this.fillProd = (this.fillProd + 1) >>> 0;
  }

  /** Frames received and not yet taken (rxAddr(k)/rxLen(k) for k < count). */
  rxCount(): number {
    return (Atomics.load(this.rx.u32, this.rx.prod) - this.rxCons) >>> 0;
  }
  /** The k-th waiting frame's offset in the packet area. */
  rxAddr(k: number): number {
    return this.base + this.rx.u32[this.rx.desc + (((this.rxCons + k) & (RING - 1)) << 2)];
  }
  rxLen(k: number): number {
    return this.rx.u32[this.rx.desc + (((this.rxCons + k) & (RING - 1)) << 2) + 2];
  }
  /** Hands the first n waiting frames back to the kernel to receive into again. */
  rxRelease(n: number): void {
    for (let k = 0; k < n; k++) this.putFill(this.rxAddr(k) - this.base);
    this.rxCons = (this.rxCons + n) >>> 0;
    Atomics.store(this.rx.u32, this.rx.cons, this.rxCons);
    Atomics.store(this.fill.u32, this.fill.prod, this.fillProd);
  }

  /** A free send frame's offset in the packet area, or -1 when every one is in flight. */
  txFrame(): number {
    if (this.nfree === 0) this.reap();
    return this.nfree === 0 ? -1 : this.base + this.free[--this.nfree];
  }
  /** Queues the frame at `at` (from txFrame) of `len` bytes for sending. */
  txPush(at: number, len: number): void {
    this.desc(at, len, 0);
  }
  /**
   * Queues a frame whose transport checksum (at csumStart + csumOffset, frame offsets)
   * holds the pseudo-header sum, for the kernel to complete (only when txCsum).
   */
  txPushPartial(at: number, len: number, csumStart: number, csumOffset: number): void {
    const m = at - TX_METADATA_LEN;
    this.area.setUint32(m, XDP_TXMD_FLAGS_CHECKSUM, true);
    this.area.setUint32(m + 4, 0, true);
    this.area.setUint16(m + 8, csumStart, true);
    this.area.setUint16(m + 10, csumOffset, true);
    this.desc(at, len, XDP_TX_METADATA);
  }
  private desc(at: number, len: number, options: number): void {
    const d = this.tx.desc + ((this.txProd & (RING - 1)) << 2);
    this.tx.u32[d] = at - this.base;
    this.tx.u32[d + 1] = 0;
    this.tx.u32[d + 2] = len;
    this.tx.u32[d + 3] = options;
    this.txProd = (this.txProd + 1) >>> 0;
  }
  /**
   * Publishes the queued frames and asks the kernel to send them (copy mode sends in the
   * system call, at most 32 frames a call). Returns how many could not be sent now; they
   * stay in the ring for the next flush.
   */
  flushTx(): number {
    let left = (this.txProd - Atomics.load(this.tx.u32, this.tx.cons)) >>> 0;
    if (left === 0) return 0;
    Atomics.store(this.tx.u32, this.tx.prod, this.txProd);
    while (left > 0) {
      kick(this.fd);
      this.reap();
      const now = (this.txProd - Atomics.load(this.tx.u32, this.tx.cons)) >>> 0;
      if (now === left) break; // no progress: the device is busy, the next flush tries again
      left = now;
    }
    return left;
  }
  /** Takes sent frames back from the completion ring. */
  private reap(): void {
    const c = this.comp;
    let cons = Atomics.load(c.u32, c.cons);
    const prod = Atomics.load(c.u32, c.prod);
    while (cons !== prod) {
      // The chunk's send frame, whatever offset within it the kernel reports.
      this.free[this.nfree++] = (c.u32[c.desc + ((cons & (RING - 1)) << 1)] & ~(XSK_FRAME - 1)) + TX_HEADROOM;
      cons = (cons + 1) >>> 0;
    }
    Atomics.store(c.u32, c.cons, cons);
  }
}

/** An AF_XDP socket set up and bound (openXsk), as the control thread hands it to a worker. */
export interface XskPort {
  name: string;
  ifindex: number;
  fd: number;
  macHi: number;
  macLo: number;
  /** Where its slice of the packet area starts. */
  base: number;
  /** Its UMEM has TX metadata room: frames may leave with a partial checksum. */
  txCsum: boolean;
}

/**
 * An AF_XDP socket on queue 0 of interface `name` (index `ifindex`, MAC `mac`), with its
 * UMEM at `areaAddr + base` (a slice of allocXskArea's mapping), bound in copy mode; with
 * `txMetadata`, room for TX metadata if the kernel has it (partial checksums on send). Its
 * rings are mapped by the thread that uses it (adoptXsk): fds and mappings are process-wide.
 */
export function openXsk(name: string, ifindex: number, mac: Uint8Array, areaAddr: number, base: number, txMetadata: boolean): XskPort {
  if (mac.length !== 6) throw new Error(`--xdp ${name}: not an Ethernet interface`);
  const mdv = new DataView(mac.buffer, mac.byteOffset, 6);
  const macHi = readMacHi(mdv, 0);
  const macLo = readMacLo(mdv, 0);
  const fd = socket(AF_XDP, 3 /* SOCK_RAW */, 0);
  try {
    const reg = new Uint8Array(32); // struct xdp_umem_reg: addr, len, chunk_size, headroom, flags, tx_metadata_len
    const dv = new DataView(reg.buffer);
    dv.setBigUint64(0, BigInt(areaAddr + base), true);
    dv.setBigUint64(8, BigInt(XSK_UMEM_BYTES), true);
    dv.setUint32(16, XSK_FRAME, true);
    // A kernel without TX metadata refuses the flag (EINVAL): then without it.
    let txCsum = false;
    if (txMetadata) {
      dv.setUint32(24, XDP_UMEM_TX_METADATA_LEN, true);
      dv.setUint32(28, TX_METADATA_LEN, true);
      try {
        setsockopt(fd, SOL_XDP, XDP_UMEM_REG, reg, `XDP_UMEM_REG ${name}`);
        txCsum = true;
      } catch (e) {
        if (!(e instanceof SysError)) throw e;
        dv.setUint32(24, 0, true);
        dv.setUint32(28, 0, true);
      }
    }
    if (!txCsum) setsockopt(fd, SOL_XDP, XDP_UMEM_REG, reg, `XDP_UMEM_REG ${name}`);
    for (const opt of [XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING]) setsockopt(fd, SOL_XDP, opt, RING, `AF_XDP ring size ${name}`);
    const sa = new Uint8Array(16); // struct sockaddr_xdp
    const sdv = new DataView(sa.buffer);
    sdv.setUint16(0, AF_XDP, true);
    sdv.setUint16(2, XDP_COPY, true);
    sdv.setUint32(4, ifindex, true);
    sdv.setUint32(8, 0, true);
    try {
      bind(fd, sa);
    } catch (e) {
      if (e instanceof SysError) throw new SysError(`bind(AF_XDP) ${name}`, e.errno);
      throw e;
    }
    return { name, ifindex, fd, macHi, macLo, base, txCsum };
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** Maps the rings of a socket from openXsk, in the thread that will use them; `area` is the packet area. */
export function adoptXsk(port: XskPort, area: DataView): XskSocket {
  const off = new Uint8Array(128); // struct xdp_mmap_offsets: rx, tx, fill, completion
  getsockoptBytes(port.fd, SOL_XDP, XDP_MMAP_OFFSETS, off, `XDP_MMAP_OFFSETS ${port.name}`);
  const odv = new DataView(off.buffer);
  const rx = mapRing(port.fd, odv, 0, PGOFF_RX, 16, "rx ring");
  const tx = mapRing(port.fd, odv, 32, PGOFF_TX, 16, "tx ring");
  const fill = mapRing(port.fd, odv, 64, PGOFF_FILL, 8, "fill ring");
  const comp = mapRing(port.fd, odv, 96, PGOFF_COMP, 8, "completion ring");
  return new XskSocket(port.name, port.fd, port.ifindex, port.macHi, port.macLo, port.base, rx, tx, fill, comp, area, port.txCsum);
}
