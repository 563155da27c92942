// TUN device (bare IP packets, no packet-info header) over /dev/net/tun.
//
// Contract:
// - openTun/openTunQueue are set-up calls: they throw SysError (e.g. "TUNSETIFF tslb0:
//   Operation not permitted (EPERM)") and leak no fd when they do.
// - TunDevice.recv/send are hot: no allocation, no throw. recv returns the packet length,
//   0 when the queue is empty (EAGAIN), or -errno; send returns bytes written or -errno.
//   Both return -EINVAL when [off, off+len) is outside the buffer: the kernel would
//   otherwise write past the end of a JS buffer.
// - The device is not persistent: it disappears when its last queue fd is closed.
import { BufPtr } from "./buf_ptr.ts";
import type { Device } from "./device.ts";
import {
  EAGAIN, EINVAL, O_CLOEXEC, O_RDWR, SysError, close, ioctl, ioctlInt, open, readPtr,
  setNonBlocking, writePtr,
} from "./libc.ts";

// include/uapi/linux/if_tun.h
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
/** _IOW('T', 202, int) = dir 1 << 30 | size 4 << 16 | 'T' << 8 | 202 */
export const TUNSETIFF = 0x400454ca;
/** _IOW('T', 208, unsigned int): which offloads user space takes (TUN_F_*). */
export const TUNSETOFFLOAD = 0x400454d0;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;

/** IFNAMSIZ: interface names are at most 15 bytes plus a NUL. */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq): a 16-byte name and a 24-byte union (ifr_flags: a short at 16). */
const IFREQ_SIZE = 40;

export interface TunOptions {
  /** IFF_MULTI_QUEUE, so that more queues can be attached with openTunQueue. Default true. */
  multiQueue?: boolean;
  /**
   * IFF_VNET_HDR with checksum and TSO offloads: every packet read or written carries a
   * 10-byte virtio_net_hdr in front (wire/vnet.ts), reads may be 64 KiB TCP super-packets
   * and transport checksums may be left partial. Default false.
   */
  offload?: boolean;
}

export class TunDevice implements Device {
  /** true for a TAP (Ethernet frames); set once by openTap. */
  l2 = false;
  /** true when every packet carries a virtio_net_hdr in front (TunOptions.offload). */
  vnet = false;
  private closed = false;
  private readonly rx = new BufPtr();
  private readonly tx = new BufPtr();

  /** `name` is the name the kernel gave the device (a "tslb%d" template is resolved). */
  constructor(readonly name: string, readonly fd: number) {}

  recv(u8: Uint8Array, off: number, cap: number): number {
    const p = this.rx.at(u8, off, cap);
    if (p < 0) return -EINVAL;
    const r = readPtr(this.fd, p, cap);
    return r === -EAGAIN ? 0 : r;
  }

  send(u8: Uint8Array, off: number, len: number): number {
    const p = this.tx.at(u8, off, len);
    return p < 0 ? -EINVAL : writePtr(this.fd, p, len);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rx.release();
    this.tx.release();
    close(this.fd);
  }
}

/** Creates (or attaches to) TUN device `name` (a "%d" template is allowed) with IFF_TUN | IFF_NO_PI. */
export function openTun(name: string, opts: TunOptions = {}): TunDevice {
  return attach(name, tunFlags(opts.multiQueue ?? true, opts.offload ?? false));
}

function tunFlags(multiQueue: boolean, offload: boolean): number {
  return IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0) | (offload ? IFF_VNET_HDR : 0);
}

/**
 * Creates (or attaches to) TAP device `name` (IFF_TAP | IFF_NO_PI): Ethernet frames, for
 * direct routing. The returned device reports l2 = true.
 */
export function openTap(name: string): TunDevice {
  const d = attach(name, IFF_TAP | IFF_NO_PI);
  d.l2 = true;
  return d;
}

/**
 * Opens one more queue of the multi-queue TUN device `name` (for one more worker); every
 * queue of a device must have the same flags, so `offload` must match the first one's.
 */
export function openTunQueue(name: string, offload = false): TunDevice {
  return attach(name, tunFlags(true, offload));
}

function attach(name: string, flags: number): TunDevice {
  const nameBytes = new TextEncoder().encode(name);
  if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ) {
    throw new SysError("TUNSETIFF", EINVAL, `${name} (name must be 1-15 bytes)`);
  }
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(nameBytes, 0);
  new DataView(ifr.buffer).setUint16(IFNAMSIZ, flags, true);

  const fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  try {
    ioctl(fd, TUNSETIFF, ifr, "TUNSETIFF", name);
    // TSO needs the checksum offload too; ECN-marked super-packets keep their flag.
    if (flags & IFF_VNET_HDR) ioctlInt(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN, "TUNSETOFFLOAD", name);
    setNonBlocking(fd);
  } catch (e) {
    close(fd);
    throw e;
  }
  // The kernel writes the final name back into ifr_name (resolving "%d").
  const end = ifr.indexOf(0);
  const dev = new TunDevice(new TextDecoder().decode(ifr.subarray(0, end < 0 ? IFNAMSIZ : end)), fd);
  dev.vnet = (flags & IFF_VNET_HDR) !== 0;
  return dev;
}
