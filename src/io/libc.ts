// libc through bun:ffi: the ONLY module of tslb that imports bun:ffi (STYLE §2.6 rule 13).
//
// Contract:
// - libc is dlopen'ed once per thread (module instance); every symbol returns i32 (or a
//   pointer for __errno_location): a 64-bit return would come back as a BigInt, ~3x slower
//   (perf-anchors §6.5). ssize_t results fit in i32 because every length we pass is < 2^31.
// - Hot wrappers (read, write, readPtr, writePtr, poll, send, recv, sendto, recvfrom) return
//   the result or -errno. They never throw and never allocate.
// - Set-up wrappers (open, ioctl, fcntl, setNonBlocking, eventfd, socket, bind, setsockopt,
//   getsockopt) throw SysError. close() returns 0 or -errno: it runs in cleanup paths.
// - Buffers are passed as typed arrays (bun:ffi passes their data pointer, byteOffset included)
//   or as a Pointer number from `bufPtr()`, computed once per long-lived buffer.
import { dlopen, ptr, read as peek, toArrayBuffer, type Pointer } from "bun:ffi";

const lib = dlopen("libc.so.6", {
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  // size_t arguments are u64 for ABI correctness; a number argument costs nothing
  // measurable over i32 (~350-450 ns per read either way on this VM).
  read: { args: ["i32", "ptr", "u64"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i64"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: "i32" },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i32" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i32" },
  recvfrom: { args: ["i32", "ptr", "u64", "i32", "ptr", "ptr"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  getpid: { args: [], returns: "i32" },
  // A pointer return is a plain number (no BigInt); set-up only (AF_XDP rings and memory).
  mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "u64"], returns: "ptr" },
  // syscall(2) for bpf(2), which glibc does not wrap: (nr, cmd, attr, size).
  syscall: { args: ["i64", "i64", "ptr", "u64"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
});
const C = lib.symbols;

// --- constants (x86_64/aarch64 Linux, asm-generic values) ---
export const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2;
export const O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
export const F_GETFL = 3, F_SETFL = 4;
export const AF_UNSPEC = 0, AF_INET = 2, AF_INET6 = 10, AF_NETLINK = 16;
export const SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3;
export const SOCK_NONBLOCK = O_NONBLOCK, SOCK_CLOEXEC = O_CLOEXEC;
export const SOL_SOCKET = 1, SO_SNDBUF = 7, SO_RCVBUF = 8;
export const POLLIN = 0x1, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
export const EFD_NONBLOCK = O_NONBLOCK, EFD_CLOEXEC = O_CLOEXEC;

export const EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9,
  EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19,
  ENOTDIR = 20, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, ENOSPC = 28, EROFS = 30,
  ERANGE = 34, EMSGSIZE = 90, EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98,
  EADDRNOTAVAIL = 99, ENETDOWN = 100, ENETUNREACH = 101, ENOBUFS = 105, ETIMEDOUT = 110,
  ECONNREFUSED = 111, EHOSTUNREACH = 113;

// errno -> [name, strerror text] (glibc wording), for SysError messages only.
const ERRNO_TEXT: Record<number, [string, string]> = {
  [EPERM]: ["EPERM", "Operation not permitted"],
  [ENOENT]: ["ENOENT", "No such file or directory"],
  [ESRCH]: ["ESRCH", "No such process"],
  [EINTR]: ["EINTR", "Interrupted system call"],
  [EIO]: ["EIO", "Input/output error"],
  [ENXIO]: ["ENXIO", "No such device or address"],
  [EBADF]: ["EBADF", "Bad file descriptor"],
  [EAGAIN]: ["EAGAIN", "Resource temporarily unavailable"],
  [ENOMEM]: ["ENOMEM", "Cannot allocate memory"],
  [EACCES]: ["EACCES", "Permission denied"],
  [EFAULT]: ["EFAULT", "Bad address"],
  [EBUSY]: ["EBUSY", "Device or resource busy"],
  [EEXIST]: ["EEXIST", "File exists"],
  [ENODEV]: ["ENODEV", "No such device"],
  [ENOTDIR]: ["ENOTDIR", "Not a directory"],
  [EINVAL]: ["EINVAL", "Invalid argument"],
  [ENFILE]: ["ENFILE", "Too many open files in system"],
  [EMFILE]: ["EMFILE", "Too many open files"],
  [ENOTTY]: ["ENOTTY", "Inappropriate ioctl for device"],
  [ENOSPC]: ["ENOSPC", "No space left on device"],
  [EROFS]: ["EROFS", "Read-only file system"],
  [ERANGE]: ["ERANGE", "Numerical result out of range"],
  [EMSGSIZE]: ["EMSGSIZE", "Message too long"],
  [EPROTONOSUPPORT]: ["EPROTONOSUPPORT", "Protocol not supported"],
  [EOPNOTSUPP]: ["EOPNOTSUPP", "Operation not supported"],
  [EAFNOSUPPORT]: ["EAFNOSUPPORT", "Address family not supported by protocol"],
  [EADDRINUSE]: ["EADDRINUSE", "Address already in use"],
  [EADDRNOTAVAIL]: ["EADDRNOTAVAIL", "Cannot assign requested address"],
  [ENETDOWN]: ["ENETDOWN", "Network is down"],
  [ENETUNREACH]: ["ENETUNREACH", "Network is unreachable"],
  [ENOBUFS]: ["ENOBUFS", "No buffer space available"],
  [ETIMEDOUT]: ["ETIMEDOUT", "Connection timed out"],
  [ECONNREFUSED]: ["ECONNREFUSED", "Connection refused"],
  [EHOSTUNREACH]: ["EHOSTUNREACH", "No route to host"],
};

/** "EPERM" for 1; "E<n>" for numbers outside the table. */
export function errnoName(errno: number): string {
  return ERRNO_TEXT[errno]?.[0] ?? `E${errno}`;
}

/** glibc's strerror() text for the common codes. */
export function strerror(errno: number): string {
  return ERRNO_TEXT[errno]?.[1] ?? `Unknown error ${errno}`;
}

/** A failed system call on the control plane, e.g. `TUNSETIFF tslb0: Operation not permitted (EPERM)`. */
export class SysError extends Error {
  /** errno name, e.g. "EPERM" (the same field name Node uses). */
  readonly code: string;
  constructor(readonly op: string, readonly errno: number, detail?: string) {
    super(`${op}${detail ? " " + detail : ""}: ${strerror(errno)} (${errnoName(errno)})`);
    this.name = "SysError";
    this.code = errnoName(errno);
  }
}

/** The calling thread's errno. Read it right after the failed call, before anything else runs. */
export function errno(): number {
  // __errno_location is per thread and costs no syscall; measured: no difference from caching it.
  return peek.i32(C.__errno_location()!, 0);
}

function check(r: number, op: string, detail?: string): number {
  if (r < 0) throw new SysError(op, errno(), detail);
  return r;
}

/** The address of a buffer's first byte, for the Ptr wrappers. Valid while `u8` is alive and
 *  not transferred or detached; compute it once per long-lived buffer (it costs ~20-30 ns). */
export function bufPtr(u8: Uint8Array | Int32Array | Int16Array): number {
  return ptr(u8);
}

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

// --- hot path: result or -errno, no throw, no allocation ---

export function read(fd: number, buf: Uint8Array, len: number): number {
  const r = C.read(fd, buf, len);
  return r >= 0 ? r : -errno();
}

export function write(fd: number, buf: Uint8Array, len: number): number {
  const r = C.write(fd, buf, len);
  return r >= 0 ? r : -errno();
}

/** read(2) into the raw address `p` (bufPtr(u8) + offset): no subarray per call. */
export function readPtr(fd: number, p: number, len: number): number {
  const r = C.read(fd, p as Pointer, len);
  return r >= 0 ? r : -errno();
}

/** write(2) from the raw address `p` (bufPtr(u8) + offset). */
export function writePtr(fd: number, p: number, len: number): number {
  const r = C.write(fd, p as Pointer, len);
  return r >= 0 ? r : -errno();
}

/** poll(2) over `nfds` struct pollfd at `fds` (a typed array or a bufPtr address). Ready count or -errno. */
export function poll(fds: Int32Array | number, nfds: number, timeoutMs: number): number {
  const r = C.poll(fds as Pointer, nfds, timeoutMs);
  return r >= 0 ? r : -errno();
}

export function send(fd: number, buf: Uint8Array, len: number, flags: number): number {
  const r = C.send(fd, buf, len, flags);
  return r >= 0 ? r : -errno();
}

export function sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null): number {
  const r = C.sendto(fd, buf, len, flags, addr, addr === null ? 0 : addr.byteLength);
  return r >= 0 ? r : -errno();
}

/** sendto(2) from the raw address `p` (bufPtr(u8) + offset) to the sockaddr bytes `addr`. */
export function sendtoPtr(fd: number, p: number, len: number, flags: number, addr: Uint8Array): number {
  const r = C.sendto(fd, p as Pointer, len, flags, addr, addr.byteLength);
  return r >= 0 ? r : -errno();
}

export function recv(fd: number, buf: Uint8Array, len: number, flags: number): number {
  const r = C.recv(fd, buf, len, flags);
  return r >= 0 ? r : -errno();
}

/** `addrLen[0]` must hold addr's capacity on entry; it holds the peer address length on return. */
export function recvfrom(fd: number, buf: Uint8Array, len: number, flags: number,
  addr: Uint8Array | null, addrLen: Int32Array | null): number {
  const r = C.recvfrom(fd, buf, len, flags, addr, addrLen);
  return r >= 0 ? r : -errno();
}

export const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MAP_POPULATE = 0x8000;
export const MSG_DONTWAIT = 0x40;

/**
 * mmap(2) of `len` bytes (fd -1: anonymous memory). Returns the address, for system calls
 * that take it, and an ArrayBuffer over the mapping, which stays mapped for the life of
 * the process (set-up memory: AF_XDP's packet area and rings). Throws SysError.
 */
export function mmap(len: number, prot: number, flags: number, fd: number, offset: number, op = "mmap"): { addr: number; buf: ArrayBuffer } {
  const p = C.mmap(null, len, prot, flags, fd, offset) as number | null;
  // MAP_FAILED is (void *)-1.
  if (p === null || p === 0 || p >= 2 ** 53 || p < 0) throw new SysError(op, errno());
  return { addr: p, buf: toArrayBuffer(p as Pointer, 0, len) };
}

/** An ArrayBuffer over `len` bytes of memory mapped at `addr` (by mmap, in any thread of this process). */
export function viewMemory(addr: number, len: number): ArrayBuffer {
  return toArrayBuffer(addr as Pointer, 0, len);
}

/** getsockopt(2) into the bytes of `out`; returns the length the kernel wrote. Throws SysError. */
export function getsockoptBytes(fd: number, level: number, name: number, out: Uint8Array, op = "getsockopt"): number {
  const len = new Int32Array([out.byteLength]);
  if (C.getsockopt(fd, level, name, out, len) < 0) throw new SysError(op, errno());
  return len[0];
}

/** sendto(2) of nothing: an AF_XDP socket's "send what the TX ring holds". Result or -errno. */
export function kick(fd: number): number {
  const r = C.sendto(fd, null, 0, MSG_DONTWAIT, null, 0);
  return r >= 0 ? r : -errno();
}

export function getpid(): number {
  return C.getpid();
}

/** close(2): 0 or -errno; never throws, because it runs in cleanup paths. */
export function close(fd: number): number {
  const r = C.close(fd);
  return r >= 0 ? r : -errno();
}

// --- set-up: throw SysError ---

export function open(path: string, flags: number, mode = 0): number {
  return check(C.open(cstr(path), flags, mode), "open", path);
}

/** ioctl(2) whose argument is a buffer (struct ifreq and friends). */
export function ioctl(fd: number, req: number, buf: Uint8Array, op = "ioctl", detail?: string): number {
  return check(C.ioctl(fd, req, buf), op, detail);
}

/** ioctl(2) whose argument is an integer passed by value (e.g. TUNSETPERSIST). */
export function ioctlInt(fd: number, req: number, arg: number, op = "ioctl", detail?: string): number {
  return check(C.ioctl(fd, req, arg as Pointer), op, detail);
}

/** bpf(2)'s system call number (no libc wrapper): x86-64 321, arm64 280. */
const SYS_BPF = process.arch === "arm64" ? 280 : 321;

/** bpf(2): `cmd` with the attribute block `attr`; throws SysError. */
export function bpf(cmd: number, attr: Uint8Array, op: string): number {
  return check(C.syscall(SYS_BPF, cmd, attr, attr.length), op);
}

export function fcntl(fd: number, cmd: number, arg = 0): number {
  return check(C.fcntl(fd, cmd, arg), "fcntl");
}

export function setNonBlocking(fd: number): void {
  const fl = fcntl(fd, F_GETFL);
  if ((fl & O_NONBLOCK) === 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

export function eventfd(initval: number, flags: number): number {
  return check(C.eventfd(initval, flags), "eventfd");
}

export function socket(domain: number, type: number, protocol: number): number {
  return check(C.socket(domain, type, protocol), "socket");
}

export function bind(fd: number, addr: Uint8Array): void {
  check(C.bind(fd, addr, addr.byteLength), "bind");
}

const optInt = new Int32Array(2); // [value, socklen]

/** setsockopt(2) with an int value or raw option bytes. */
export function setsockopt(fd: number, level: number, name: number, value: number | Uint8Array, op = "setsockopt"): void {
  if (typeof value === "number") {
    optInt[0] = value;
    check(C.setsockopt(fd, level, name, optInt, 4), op);
  } else {
    check(C.setsockopt(fd, level, name, value, value.byteLength), op);
  }
}

/** SO_PEERCRED (asm-generic/socket.h): the peer of a Unix socket as struct ucred { pid, uid, gid }. */
export const SO_PEERCRED = 17;

/** The credentials of the process at the other end of Unix socket `fd` (SO_PEERCRED). Throws SysError. */
export function peerCred(fd: number): { pid: number; uid: number; gid: number } {
  const ucred = new Int32Array(3);
  const len = new Int32Array([12]);
  check(C.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred, len), "getsockopt SO_PEERCRED");
  return { pid: ucred[0], uid: ucred[1] >>> 0, gid: ucred[2] >>> 0 };
}

/** getsockopt(2) for an int option. */
export function getsockopt(fd: number, level: number, name: number, op = "getsockopt"): number {
  optInt[0] = 0;
  optInt[1] = 4;
  check(C.getsockopt(fd, level, name, optInt.subarray(0, 1), optInt.subarray(1, 2)), op);
  return optInt[0];
}

/** bpf(2) for the per-flow map calls (dataplane/flow_offload.ts): the result or -errno, no throw. */
export function bpfNoThrow(cmd: number, attr: Uint8Array): number {
  const r = C.syscall(SYS_BPF, cmd, attr, attr.length);
  return r >= 0 ? r : -errno();
}
