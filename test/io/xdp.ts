// The XDP hand-off's program (io/xdp.ts) passes the kernel's verifier with its maps, and
// the labels of its jumps resolve. (Its behaviour on frames is the e2e test's: real
// interfaces, real sockets.)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadProgram } from "../../src/io/bpf.ts";
import { close } from "../../src/io/libc.ts";
import { BPF_PROG_TYPE_XDP, STEAL_MAX_FRAME, createXdpMaps, createXskMap, xdpProgram } from "../../src/io/xdp.ts";
import { XSK_MAX_FRAME } from "../../src/io/xsk.ts";

const s = suite("XDP program");

s("the verifier accepts it, with and without taking DR replies", () => {
  const maps = createXdpMaps();
  const xsk = createXskMap("test");
  try {
    for (const drReplies of [false, true]) {
      // Three MACs, one with the top bit of its last four bytes set.
      const prog = xdpProgram(maps, xsk, [Uint8Array.of(2, 0, 0, 0, 0, 1), Uint8Array.of(0xfe, 0xff, 0x80, 1, 2, 0xff), Uint8Array.of(6, 5, 4, 3, 2, 1)], drReplies);
      // Every jump lands inside the program.
      prog.forEach(([op, , , off], pc) => {
        if ((op & 0x07) === 0x05 && op !== 0x85 && op !== 0x95) assert.ok(pc + 1 + off >= 0 && pc + 1 + off < prog.length, `jump at ${pc}`);
      });
      const fd = loadProgram(BPF_PROG_TYPE_XDP, prog, "(test)");
      assert.ok(fd >= 0);
      close(fd);
    }
  } finally {
    for (const fd of [...maps.steal, maps.bulk, xsk]) close(fd);
  }
});

s("a program the verifier rejects: the error carries the verifier's last words", () => {
  // r0 = 0, and no exit.
  assert.throws(() => loadProgram(BPF_PROG_TYPE_XDP, [[0xb7, 0, 0, 0, 0]], "(bad)"), /bpf\(BPF_PROG_LOAD\) \(bad\).*last insn is not an exit or jmp/);
});

s("a frame it takes fits a socket's frame", () => {
  assert.ok(STEAL_MAX_FRAME <= XSK_MAX_FRAME);
  assert.ok(STEAL_MAX_FRAME >= 576, "a minimum-MTU IPv4 packet in its Ethernet frame");
});

s.run();
