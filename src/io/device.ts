// The one device contract of the data plane (smoltcp phy::Device, wireguard-go tun.Device).
// TUN, TAP and the in-memory test device implement it; the worker loop takes any Device.
// Buffers belong to the caller; a device may cache the address of the buffer it was last handed (to skip ptr() per packet) but never writes to it outside a call.

export interface Device {
  readonly name: string;
  /** File descriptor to poll() for readability; -1 for devices that cannot be polled. */
  readonly fd: number;
  /** true for TAP (Ethernet frames), false for TUN (bare IP packets). */
  readonly l2: boolean;
  /**
   * Reads one frame into u8[off, off+cap). Returns its length, 0 if none is ready
   * (EAGAIN), or -errno on error. Never throws, never allocates.
   */
  recv(u8: Uint8Array, off: number, cap: number): number;
  /** Writes u8[off, off+len) as one frame. Returns bytes written or -errno. Never throws. */
  send(u8: Uint8Array, off: number, len: number): number;
  close(): void;
}
