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
import { Asm, type Insn, encodeProgram, loadProgram } from "./bpf.ts";
import { close, ioctl } from "./libc.ts";

export { encodeProgram };

const BPF_PROG_TYPE_SOCKET_FILTER = 1;
/** _IOR('T', 224, int) */
const TUNSETSTEERINGEBPF = 0x800454e0;

// eBPF opcodes used below (include/uapi/linux/bpf.h, bpf_common.h).
const LD_ABS_B = 0x30, LD_ABS_H = 0x28, LD_ABS_W = 0x20, LD_IND_H = 0x48;
const MOV64_X = 0xbf, MOV64_K = 0xb7, XOR64_X = 0xaf, AND64_K = 0x57, LSH64_K = 0x67, RSH64_K = 0x77;
const MUL32_K = 0x24, RSH32_K = 0x74, JEQ_K = 0x15, JNE_K = 0x55, JA = 0x05, EXIT = 0x95;

/**
 * The program. Registers: r6 the packet context LD_ABS needs, r8 the hash, r9 the IPv4
 * header length. Fragments hash by addresses alone (a later fragment has no ports, and
 * must reach the worker that saw its first fragment); so do IPv6 packets whose next
 * header is not TCP or UDP.
 */
export function steeringProgram(): Insn[] {
  const a = new Asm();
  a.i(MOV64_X, 6, 1);
  a.i(LD_ABS_B, 0, 0, 0, 0);
  a.i(RSH64_K, 0, 0, 0, 4);
  a.jump(JEQ_K, "v6", 0, 6);
  a.jump(JNE_K, "out", 0, 4);
  // IPv4: addresses; then, unless it is a fragment, the ports after the IHL-sized header.
  a.i(LD_ABS_W, 0, 0, 0, 12).i(MOV64_X, 8, 0);
  a.i(LD_ABS_W, 0, 0, 0, 16).i(XOR64_X, 8, 0);
  a.i(LD_ABS_H, 0, 0, 0, 6).i(AND64_K, 0, 0, 0, 0x3fff);
  a.jump(JNE_K, "mix", 0, 0);
  a.i(LD_ABS_B, 0, 0, 0, 0).i(AND64_K, 0, 0, 0, 0x0f).i(LSH64_K, 0, 0, 0, 2).i(MOV64_X, 9, 0);
  a.i(LD_IND_H, 0, 9, 0, 0).i(XOR64_X, 8, 0);
  a.i(LD_IND_H, 0, 9, 0, 2).i(XOR64_X, 8, 0);
  a.jump(JA, "mix");
  // IPv6: the eight address words; the ports when TCP or UDP follows the fixed header.
  a.label("v6");
  a.i(LD_ABS_W, 0, 0, 0, 8).i(MOV64_X, 8, 0);
  for (let w = 12; w < 40; w += 4) a.i(LD_ABS_W, 0, 0, 0, w).i(XOR64_X, 8, 0);
  a.i(LD_ABS_B, 0, 0, 0, 6);
  a.jump(JEQ_K, "ports6", 0, 6);
  a.jump(JNE_K, "mix", 0, 17);
  a.label("ports6");
  a.i(LD_ABS_H, 0, 0, 0, 40).i(XOR64_X, 8, 0);
  a.i(LD_ABS_H, 0, 0, 0, 42).i(XOR64_X, 8, 0);
  a.label("mix");
  a.i(MUL32_K, 8, 0, 0, 0x9e3779b1 | 0).i(RSH32_K, 8, 0, 0, 16).i(MOV64_X, 0, 8).i(EXIT);
  a.label("out");
  a.i(MOV64_K, 0, 0, 0, 0).i(EXIT);
  return a.done();
}

/** Loads the program and returns its fd (throws SysError when bpf(2) refuses). */
export function loadSteeringProgram(): number {
  return loadProgram(BPF_PROG_TYPE_SOCKET_FILTER, steeringProgram(), "(queue steering)");
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
