// libc wrappers: SysError text, -errno returns on hot calls, throws on set-up calls, raw
// pointers at offsets. Uses eventfds and an unbound, never-used UDP socket: no traffic.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  AF_INET, EAGAIN, EBADF, EFD_NONBLOCK, F_GETFL, O_NONBLOCK, SOCK_CLOEXEC, SOCK_DGRAM, SOL_SOCKET,
  SO_RCVBUF, SysError, bufPtr, close, errno, errnoName, eventfd, fcntl, getpid, getsockopt, ioctl,
  open, read, readPtr, setNonBlocking, setsockopt, socket, strerror, write, writePtr,
} from "../../src/io/libc.ts";

const err = suite("SysError");

err("message: op, detail, strerror text and errno name", () => {
  const e = new SysError("TUNSETIFF", 1, "tslb0");
  assert.is(e.message, "TUNSETIFF tslb0: Operation not permitted (EPERM)");
  assert.is(e.op, "TUNSETIFF");
  assert.is(e.errno, 1);
  assert.is(e.code, "EPERM");
  assert.is(e.name, "SysError");
  assert.instance(e, Error);
  assert.is(new SysError("socket", 97).message, "socket: Address family not supported by protocol (EAFNOSUPPORT)");
  assert.is(new SysError("x", 200).message, "x: Unknown error 200 (E200)");
  assert.is(errnoName(17), "EEXIST");
  assert.is(strerror(19), "No such device");
});

err("set-up calls throw SysError with errno", () => {
  try {
    open("/nonexistent-tslbt/x", 0);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, SysError);
    assert.is((e as Error).message, "open /nonexistent-tslbt/x: No such file or directory (ENOENT)");
  }
  const fd = eventfd(0, 0);
  try {
    assert.throws(() => ioctl(fd, 0x400454ca, new Uint8Array(40), "TUNSETIFF", "evfd"),
      (e: unknown) => e instanceof SysError && e.message === "TUNSETIFF evfd: Inappropriate ioctl for device (ENOTTY)");
  } finally {
    close(fd);
  }
});

// ---

const hot = suite("libc hot calls");

hot("failures return -errno, never throw", () => {
  assert.is(read(-1, new Uint8Array(8), 8), -EBADF);
  assert.is(errno(), EBADF);
  assert.is(close(-1), -EBADF);
  const fd = eventfd(0, EFD_NONBLOCK);
  try {
    assert.is(read(fd, new Uint8Array(8), 8), -EAGAIN, "empty eventfd");
  } finally {
    close(fd);
  }
});

hot("readPtr/writePtr at an offset from bufPtr; typed arrays keep their byteOffset", () => {
  const u8 = new Uint8Array(64);
  assert.is(bufPtr(u8.subarray(16)), bufPtr(u8) + 16);
  const fd = eventfd(0, EFD_NONBLOCK);
  try {
    const dv = new DataView(u8.buffer);
    dv.setUint32(8, 5, true); // eventfd value 5 as 8 host-order bytes at offset 8
    assert.is(writePtr(fd, bufPtr(u8) + 8, 8), 8);
    assert.is(write(fd, u8.subarray(8), 8), 8, "again, through a subarray");
    assert.is(readPtr(fd, bufPtr(u8) + 40, 8), 8);
    assert.is(dv.getUint32(40, true), 10);
    assert.equal([...u8.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0], "bytes before the offset untouched");
  } finally {
    close(fd);
  }
});

hot("getpid, fcntl O_NONBLOCK, socket options", () => {
  assert.is(getpid(), process.pid);
  const fd = eventfd(0, 0);
  try {
    assert.is(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    setNonBlocking(fd);
    assert.is(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  } finally {
    close(fd);
  }
  const s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, 65536);
    assert.is(getsockopt(s, SOL_SOCKET, SO_RCVBUF), 131072, "the kernel doubles SO_RCVBUF");
  } finally {
    close(s);
  }
});

err.run();
hot.run();
