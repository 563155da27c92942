// An in-memory Device for pipeline and worker tests (wireguard-go's ChannelTUN): frames
// pushed with inject() are what recv() returns; everything sent is recorded in `sent`.
// Test code only: it allocates per frame.
import type { Device } from "./device.ts";

export class MemDevice implements Device {
  readonly fd = -1;
  readonly inbox: Uint8Array[] = [];
  readonly sent: Uint8Array[] = [];
  constructor(readonly name: string, readonly l2: boolean) {}
  inject(frame: Uint8Array): void {
    this.inbox.push(frame);
  }
  recv(u8: Uint8Array, off: number, cap: number): number {
    const f = this.inbox.shift();
    if (!f) return 0;
    const n = Math.min(f.length, cap);
    u8.set(f.subarray(0, n), off);
    return n;
  }
  send(u8: Uint8Array, off: number, len: number): number {
    this.sent.push(u8.slice(off, off + len));
    return len;
  }
  close(): void {}
}
