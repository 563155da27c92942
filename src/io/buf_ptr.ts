// The address of the buffer the data plane reads into and writes from, cached: the
// worker passes the same frame buffer on every call, so ptr() (~20–30 ns) runs once, not
// per packet. The cache holds a reference to the buffer so the address stays valid; a
// detached buffer has byteLength 0 and fails the range check before its address is used.
import { bufPtr } from "./libc.ts";

export class BufPtr {
  private buf: Uint8Array | null = null;
  private ptr = 0;

  /** The address of u8[off], or -1 when [off, off+len) is not inside u8. */
  at(u8: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < 0 || off + len > u8.byteLength) return -1;
    if (u8 !== this.buf) {
      this.buf = u8;
      this.ptr = bufPtr(u8);
    }
    return this.ptr + off;
  }

  release(): void {
    this.buf = null;
  }
}
