// poll(2) over a fixed set of fds, and eventfd helpers to wake a worker blocked in it.
//
// Contract: Poller.wait/readable and signalEventFd/drainEventFd allocate nothing and never
// throw; wait returns the ready count, 0 on timeout (and on EINTR, so callers just loop),
// or -errno. The constructor and createEventFd are set-up calls and may throw SysError.
import {
  EAGAIN, EFD_CLOEXEC, EFD_NONBLOCK, EINTR, POLLERR, POLLHUP, POLLIN, bufPtr, eventfd, poll,
  readPtr, writePtr,
} from "./libc.ts";

/** sizeof(struct pollfd): int fd, short events, short revents. */
const POLLFD_SIZE = 8;

export class Poller {
  readonly fds: readonly number[];
  // One buffer seen as int32 (fd at [2i]) and int16 (events at [4i+2], revents at [4i+3]).
  private readonly i32: Int32Array;
  private readonly i16: Int16Array;
  private readonly p: number;

  constructor(fds: number[]) {
    this.fds = fds.slice();
    const buf = new ArrayBuffer(Math.max(1, fds.length) * POLLFD_SIZE);
    this.i32 = new Int32Array(buf);
    this.i16 = new Int16Array(buf);
    for (let i = 0; i < fds.length; i++) {
      this.i32[2 * i] = fds[i];
      this.i16[4 * i + 2] = POLLIN;
    }
    this.p = bufPtr(this.i32);
  }

  /** Blocks up to timeoutMs (-1: forever). Ready count, 0 on timeout or EINTR, or -errno. */
  wait(timeoutMs: number): number {
    const r = poll(this.p, this.fds.length, timeoutMs);
    return r === -EINTR ? 0 : r;
  }

  /** After wait(): fd i has data, or an error or hang-up that its next read will report. */
  readable(i: number): boolean {
    return (this.i16[4 * i + 3] & (POLLIN | POLLERR | POLLHUP)) !== 0;
  }
}

/** A non-blocking, close-on-exec eventfd with counter 0. */
export function createEventFd(): number {
  return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

// eventfd reads and writes are one 8-byte counter. Per-thread scratch (each Worker has its
// own module instance), so signalling from the control thread never races the worker's drain.
const counter = new Uint8Array(8);
const counterView = new DataView(counter.buffer);
const counterPtr = bufPtr(counter);

/** Adds 1 to the counter, waking any poll() on fd. 0 or -errno. */
export function signalEventFd(fd: number): number {
  counterView.setUint32(0, 1, true);
  counterView.setUint32(4, 0, true);
  const r = writePtr(fd, counterPtr, 8);
  // EAGAIN: the counter is at its maximum, so the fd is readable anyway.
  return r >= 0 || r === -EAGAIN ? 0 : r;
}

/** Resets the counter. Returns how many signals were pending (low 32 bits), 0 if none, or -errno. */
export function drainEventFd(fd: number): number {
  const r = readPtr(fd, counterPtr, 8);
  if (r === -EAGAIN) return 0;
  return r < 0 ? r : counterView.getUint32(0, true);
}
