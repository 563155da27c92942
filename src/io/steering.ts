// Queue steering for a multi-queue TUN (TUNSETSTEERINGEBPF): a 50-instruction eBPF
// socket-filter program, loaded through bpf(2), that picks the queue (so the worker) of
// every packet the kernel hands to tslb from a hash of its addresses and ports. Without
// it the kernel's automatic selection moves a flow between queues as tslb's own writes
// update its flow table (perf-anchors §6.2), so one direction of a connection could be
// processed by two workers at once and reordered. With it each direction of a flow
// stays on one worker; the two directions may differ (their tuples do, under NAT), which
// the shared connection table allows.
//
// The hash: IPv4 src ^ dst ^ sport ^ dport (IPv6: all eight address words), times the
// golden-ratio constant, top 16 bits; the kernel takes it modulo the queue count.
// Packets that are neither IPv4 nor IPv6 go to queue 0.
import { bpf, bufPtr, close, ioctl } from "./libc.ts";

const BPF_PROG_LOAD = 5;
const BPF_PROG_TYPE_SOCKET_FILTER = 1;
/** _IOR('T', 224, int) */
const TUNSETSTEERINGEBPF = 0x800454e0;

// eBPF opcodes used below (include/uapi/linux/bpf.h, bpf_common.h).
const LD_ABS_B = 0x30, LD_ABS_H = 0x28, LD_ABS_W = 0x20, LD_IND_H = 0x48;
const MOV64_X = 0xbf, MOV64_K = 0xb7, XOR64_X = 0xaf, AND64_K = 0x57, LSH64_K = 0x67, RSH64_K = 0x77;
const MUL32_K = 0x24, RSH32_K = 0x74, JEQ_K = 0x15, JNE_K = 0x55, JA = 0x05, EXIT = 0x95;

type Insn = [op: number, dst: number, src: number, off: number, imm: number];

/**
 * The program. Registers: r6 the packet context LD_ABS needs, r8 the hash, r9 the IPv4
 * header length. Fragments hash by addresses alone (a later fragment has no ports, and
 * must reach the worker that saw its first fragment); so do IPv6 packets whose next
 * header is not TCP or UDP.
 */
export function steeringProgram(): Insn[] {
  const p: Insn[] = [];
  const fix: [at: number, label: string][] = [];
  const labels = new Map<string, number>();
  const i = (op: number, dst = 0, src = 0, off = 0, imm = 0) => p.push([op, dst, src, off, imm]);
  const jump = (op: number, label: string, imm = 0) => { fix.push([p.length, label]); i(op, 0, 0, 0, imm); };
  const label = (name: string) => labels.set(name, p.length);
  i(MOV64_X, 6, 1);
  i(LD_ABS_B, 0, 0, 0, 0);
  i(RSH64_K, 0, 0, 0, 4);
  jump(JEQ_K, "v6", 6);
  jump(JNE_K, "out", 4);
  // IPv4: addresses; then, unless it is a fragment, the ports after the IHL-sized header.
  i(LD_ABS_W, 0, 0, 0, 12); i(MOV64_X, 8, 0);
  i(LD_ABS_W, 0, 0, 0, 16); i(XOR64_X, 8, 0);
  i(LD_ABS_H, 0, 0, 0, 6); i(AND64_K, 0, 0, 0, 0x3fff);
  jump(JNE_K, "mix", 0);
  i(LD_ABS_B, 0, 0, 0, 0); i(AND64_K, 0, 0, 0, 0x0f); i(LSH64_K, 0, 0, 0, 2); i(MOV64_X, 9, 0);
  i(LD_IND_H, 0, 9, 0, 0); i(XOR64_X, 8, 0);
  i(LD_IND_H, 0, 9, 0, 2); i(XOR64_X, 8, 0);
  jump(JA, "mix");
  // IPv6: the eight address words; the ports when TCP or UDP follows the fixed header.
  label("v6");
  i(LD_ABS_W, 0, 0, 0, 8); i(MOV64_X, 8, 0);
  for (let w = 12; w < 40; w += 4) { i(LD_ABS_W, 0, 0, 0, w); i(XOR64_X, 8, 0); }
  i(LD_ABS_B, 0, 0, 0, 6);
  jump(JEQ_K, "ports6", 6);
  jump(JNE_K, "mix", 17);
  label("ports6");
  i(LD_ABS_H, 0, 0, 0, 40); i(XOR64_X, 8, 0);
  i(LD_ABS_H, 0, 0, 0, 42); i(XOR64_X, 8, 0);
  label("mix");
  i(MUL32_K, 8, 0, 0, 0x9e3779b1 | 0); i(RSH32_K, 8, 0, 0, 16); i(MOV64_X, 0, 8); i(EXIT);
  label("out");
  i(MOV64_K, 0, 0, 0, 0); i(EXIT);
  // Jump offsets count from the instruction after the jump.
  for (const [at, name] of fix) p[at][3] = labels.get(name)! - at - 1;
  return p;
}

/** struct bpf_insn[]: opcode, dst:4|src:4, off (s16), imm (s32), little-endian. */
export function encodeProgram(prog: Insn[]): Uint8Array {
  const b = new Uint8Array(prog.length * 8);
  const dv = new DataView(b.buffer);
  prog.forEach(([op, dst, src, off, imm], k) => {
    b[k * 8] = op;
    b[k * 8 + 1] = (src << 4) | dst;
    dv.setInt16(k * 8 + 2, off, true);
    dv.setInt32(k * 8 + 4, imm, true);
  });
  return b;
}

/** Loads the program and returns its fd (throws SysError when bpf(2) refuses). */
export function loadSteeringProgram(): number {
  const insns = encodeProgram(steeringProgram());
  const license = new TextEncoder().encode("GPL\0");
  const attr = new Uint8Array(128); // union bpf_attr, the BPF_PROG_LOAD part; the rest stays zero
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, BPF_PROG_TYPE_SOCKET_FILTER, true);
  dv.setUint32(4, insns.length / 8, true);
  dv.setBigUint64(8, BigInt(bufPtr(insns)), true);
  dv.setBigUint64(16, BigInt(bufPtr(license)), true);
  // insns and license stay referenced (alive) until bpf(2) has copied them.
  return bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)");
}

/** Attaches program `progFd` to the TUN behind queue fd `tunFd` (the device keeps its own reference). */
export function attachSteering(tunFd: number, progFd: number): void {
  const arg = new Uint8Array(4);
  new DataView(arg.buffer).setInt32(0, progFd, true);
  ioctl(tunFd, TUNSETSTEERINGEBPF, arg, "TUNSETSTEERINGEBPF");
}

/** Loads and attaches the steering program; the program fd is closed again (the device holds it). */
export function steerQueues(tunFd: number): void {
  const prog = loadSteeringProgram();
  try {
    attachSteering(tunFd, prog);
  } finally {
    close(prog);
  }
}
