// The XDP hand-off's program (io/xdp.ts) passes the kernel's verifier with its maps, and
// the labels of its jumps resolve. (Its behaviour on frames is the e2e test's: real
// interfaces, real sockets.)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadProgram } from "../../src/io/bpf.ts";
import { close } from "../../src/io/libc.ts";
import { BPF_PROG_TYPE_XDP, STEAL_MAX_FRAME, createStealMap, createXskMap, xdpProgram } from "../../src/io/xdp.ts";
import { XSK_MAX_FRAME } from "../../src/io/xsk.ts";

const s = suite("XDP program");

s("the verifier accepts it", () => {
  const steal = createStealMap();
  const xsk = createXskMap("test");
  try {
    const prog = xdpProgram(steal, xsk);
    // Every jump lands inside the program.
    prog.forEach(([op, , , off], pc) => {
      if ((op & 0x07) === 0x05 && op !== 0x85 && op !== 0x95) assert.ok(pc + 1 + off >= 0 && pc + 1 + off < prog.length, `jump at ${pc}`);
    });
    const fd = loadProgram(BPF_PROG_TYPE_XDP, prog, "(test)");
    assert.ok(fd >= 0);
    close(fd);
  } finally {
    close(steal);
    close(xsk);
  }
});

s("a frame it takes fits a socket's frame", () => {
  assert.ok(STEAL_MAX_FRAME <= XSK_MAX_FRAME);
  assert.ok(STEAL_MAX_FRAME >= 576, "a minimum-MTU IPv4 packet in its Ethernet frame");
});

s.run();
