// A worker's packet memory: one ArrayBuffer with a byte view and a DataView over it,
// allocated once and never re-viewed per packet. Packets are read at `slot + HEADROOM`
// so encapsulation can later write outer headers in front without copying.

/** Room for an outer IPv6 + UDP + GUE header (40 + 8 + 4, rounded up). */
export const HEADROOM = 64;
/** Largest frame read from a device (64 KiB GSO super-packets later; MTU-sized now). */
export const MAX_FRAME = 65535;

export class Frame {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  constructor(readonly buf: ArrayBuffer) {
    this.u8 = new Uint8Array(buf);
    this.dv = new DataView(buf);
  }
  static alloc(bytes: number): Frame {
    return new Frame(new ArrayBuffer(bytes));
  }
}
