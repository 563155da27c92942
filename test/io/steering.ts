// The queue-steering eBPF program (io/steering.ts), run by a small interpreter of the
// instructions it uses on real packets: fragments of one datagram meet on one queue,
// each direction of a flow keeps its queue, flows spread, and the encoding is the
// kernel's struct bpf_insn. (The kernel's verifier accepting it is checked by every
// e2e run with two workers.)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encodeProgram, steeringProgram } from "../../src/io/steering.ts";
import { buildIp4, buildIp6 } from "../fixtures/builder.ts";
import { CLIENT, CLIENT6, RS1, VIP, VIP6 } from "../fixtures/snapshots.ts";

/** Runs the program over `pkt` (a socket filter on a TUN: data starts at the IP header). */
function run(pkt: Uint8Array): number {
  const prog = steeringProgram();
  const r = new Array<number>(11).fill(0);
  const ld = (at: number, size: number): number | null => {
    if (at < 0 || at + size > pkt.length) return null;
    let v = 0;
    for (let k = 0; k < size; k++) v = v * 256 + pkt[at + k];
    return v;
  };
  for (let pc = 0; pc < prog.length; pc++) {
    const [op, dst, src, off, imm] = prog[pc];
    const size = { 0x30: 1, 0x28: 2, 0x20: 4, 0x48: 2 }[op as 0x30];
    if (size !== undefined) {
      const v = ld((op === 0x48 ? r[src] : 0) + imm, size);
      if (v === null) return 0; // out of bounds: the program ends returning 0
      r[0] = v;
      continue;
    }
    const u32 = (x: number) => x >>> 0;
    switch (op) {
      case 0xbf: r[dst] = r[src]; break;
      case 0xb7: r[dst] = imm; break;
      case 0xaf: r[dst] = u32(r[dst] ^ r[src]); break;
      case 0x57: r[dst] = u32(r[dst] & imm); break;
      case 0x67: r[dst] = r[dst] * 2 ** imm; break;
      case 0x77: r[dst] = Math.floor(r[dst] / 2 ** imm); break;
      case 0x24: r[dst] = u32(Math.imul(r[dst], imm)); break;
      case 0x74: r[dst] = u32(r[dst]) >>> imm; break;
      case 0x15: if (r[dst] === imm) pc += off; break;
      case 0x55: if (r[dst] !== imm) pc += off; break;
      case 0x05: pc += off; break;
      case 0x95: return r[0] & 0xffff; // the kernel keeps the low 16 bits, then takes them modulo the queues
      default: throw new Error(`opcode ${op.toString(16)} not interpreted`);
    }
  }
  throw new Error("fell off the end");
}

const s = suite("steering: the queue-selection eBPF program");

s("the encoding: 8 bytes an instruction, registers packed dst | src << 4, little-endian fields", () => {
  const prog = steeringProgram();
  const b = encodeProgram(prog);
  assert.is(b.length, prog.length * 8);
  assert.is(b[0], 0xbf); // r6 = r1
  assert.is(b[1], 0x16);
  assert.is(b[b.length - 8], 0x95); // ends with exit
});

s("each direction of a flow keeps one queue; many flows spread over two queues", () => {
  const a = run(buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: 0x10 }));
  assert.is(run(buildIp4({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: 0x18, payload: "GET /" })), a);
  const queues = [0, 0];
  for (let port = 30000; port < 31000; port++) queues[run(buildIp4({ src: CLIENT, dst: VIP, sport: port, dport: 80 })) % 2]++;
  assert.ok(queues[0] > 400 && queues[1] > 400, `split ${queues}`);
  const v6 = [0, 0];
  for (let port = 30000; port < 31000; port++) v6[run(buildIp6({ src: CLIENT6, dst: VIP6, sport: port, dport: 80 })) % 2]++;
  assert.ok(v6[0] > 400 && v6[1] > 400, `IPv6 split ${v6}`);
});

s("a later IPv4 fragment goes where its first fragment went", () => {
  const first = buildIp4({ src: RS1, dst: CLIENT, proto: "udp", sport: 53, dport: 40000, payload: "x".repeat(100) });
  const later = first.slice();
  first[6] = 0x20; // MF, offset 0
  later[6] = 0x00; later[7] = 0x10; // offset 128 bytes, last: the "ports" are payload bytes
  later[28] = 0x12; later[29] = 0x34;
  assert.is(run(later), run(first));
  for (let port = 30000; port < 30050; port++) {
    const f = buildIp4({ src: RS1, dst: CLIENT, proto: "udp", sport: 53, dport: port, payload: "y".repeat(64) });
    f[6] = 0x20;
    assert.is(run(f), run(first), "fragments hash by addresses alone");
  }
});

s("IPv6: a fragment header (next header 44) hashes by addresses alone", () => {
  const a = buildIp6({ src: CLIENT6, dst: VIP6, sport: 40000, dport: 80 });
  const b = buildIp6({ src: CLIENT6, dst: VIP6, sport: 40001, dport: 80 });
  a[6] = 44; b[6] = 44;
  assert.is(run(a), run(b));
});

s("what is neither IPv4 nor IPv6, or too short, goes to queue 0", () => {
  assert.is(run(Uint8Array.of(0x10, 0, 0, 0)), 0);
  assert.is(run(Uint8Array.of(0x45, 0, 0)), 0);
});

s.run();
