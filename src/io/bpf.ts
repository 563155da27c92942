// bpf(2) for tslb's two small programs (TUN queue steering, the XDP hand-off): an
// assembler with labels, BPF_PROG_LOAD with the verifier's log in the error, and the map
// and link commands. Set-up calls only: they throw SysError.
import { SysError, bpf, bufPtr } from "./libc.ts";

const BPF_MAP_CREATE = 0, BPF_MAP_UPDATE_ELEM = 2, BPF_MAP_DELETE_ELEM = 3, BPF_PROG_LOAD = 5, BPF_LINK_CREATE = 28, BPF_LINK_UPDATE = 29;

/** One instruction: opcode, dst register, src register, offset (s16), immediate (s32). */
export type Insn = [op: number, dst: number, src: number, off: number, imm: number];

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

/** Builds a program; jumps name labels, resolved by done(). */
export class Asm {
  readonly p: Insn[] = [];
  private readonly fix: [at: number, label: string][] = [];
  private readonly labels = new Map<string, number>();
  i(op: number, dst = 0, src = 0, off = 0, imm = 0): this {
    this.p.push([op, dst, src, off, imm]);
    return this;
  }
  jump(op: number, label: string, dst = 0, imm = 0, src = 0): this {
    this.fix.push([this.p.length, label]);
    return this.i(op, dst, src, 0, imm);
  }
  label(name: string): this {
    this.labels.set(name, this.p.length);
    return this;
  }
  /** r[dst] = the map behind `fd` (the two-slot ld_imm64 with BPF_PSEUDO_MAP_FD). */
  mapFd(dst: number, fd: number): this {
    return this.i(0x18, dst, 1, 0, fd).i(0, 0, 0, 0, 0);
  }
  done(): Insn[] {
    // Jump offsets count from the instruction after the jump.
    for (const [at, name] of this.fix) {
      const to = this.labels.get(name);
      if (to === undefined) throw new Error(`bpf: no label ${name}`);
      this.p[at][3] = to - at - 1;
    }
    return this.p;
  }
}

/**
 * Loads a program of `type` (BPF_PROG_TYPE_*). Without a log first: a verifier log of a
 * program that passes can outgrow any buffer given (ENOSPC). Only when the load fails is
 * it repeated with the log, whose last words the error carries.
 */
export function loadProgram(type: number, prog: Insn[], what: string): number {
  try {
    return load(type, prog, what, null);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const log = new Uint8Array(1 << 20);
    try {
      // Loaded after all (it should not be): keep it.
      return load(type, prog, what, log);
    } catch {
      const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0)))).trim();
      if (text) throw new SysError(e.op, e.errno, `(${text.split("\n").slice(-2).join("; ")})`);
      throw e;
    }
  }
}

function load(type: number, prog: Insn[], what: string, log: Uint8Array | null): number {
  const insns = encodeProgram(prog);
  const license = new TextEncoder().encode("GPL\0");
  const attr = new Uint8Array(128); // union bpf_attr, the BPF_PROG_LOAD part; the rest stays zero
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, insns.length / 8, true);
  dv.setBigUint64(8, BigInt(bufPtr(insns)), true);
  dv.setBigUint64(16, BigInt(bufPtr(license)), true);
  if (log !== null) {
    dv.setUint32(24, 1, true); // log_level
    dv.setUint32(28, log.length, true);
    dv.setBigUint64(32, BigInt(bufPtr(log)), true);
  }
  // insns, license and log stay referenced (alive) until bpf(2) returns.
  return bpf(BPF_PROG_LOAD, attr, `bpf(BPF_PROG_LOAD) ${what}`);
}

export function createMap(type: number, keySize: number, valueSize: number, maxEntries: number, what: string): number {
  const attr = new Uint8Array(128);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, keySize, true);
  dv.setUint32(8, valueSize, true);
  dv.setUint32(12, maxEntries, true);
  return bpf(BPF_MAP_CREATE, attr, `bpf(BPF_MAP_CREATE) ${what}`);
}

function elemAttr(fd: number, key: Uint8Array, value: Uint8Array | null): Uint8Array {
  const attr = new Uint8Array(128);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, fd, true);
  dv.setBigUint64(8, BigInt(bufPtr(key)), true);
  if (value) dv.setBigUint64(16, BigInt(bufPtr(value)), true);
  return attr;
}

export function updateElem(fd: number, key: Uint8Array, value: Uint8Array): void {
  bpf(BPF_MAP_UPDATE_ELEM, elemAttr(fd, key, value), "bpf(BPF_MAP_UPDATE_ELEM)");
}

/** Deletes `key`; one that is not there is not an error. */
export function deleteElem(fd: number, key: Uint8Array): void {
  try {
    bpf(BPF_MAP_DELETE_ELEM, elemAttr(fd, key, null), "bpf(BPF_MAP_DELETE_ELEM)");
  } catch (e) {
    if (!(e instanceof SysError && e.code === "ENOENT")) throw e;
  }
}

/** Puts program `progFd` in place of the one link `linkFd` holds (atomically: no frame goes without). */
export function updateLink(linkFd: number, progFd: number, what: string): void {
  const attr = new Uint8Array(128);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, linkFd, true);
  dv.setUint32(4, progFd, true);
  bpf(BPF_LINK_UPDATE, attr, `bpf(BPF_LINK_UPDATE) ${what}`);
}

/**
 * Attaches program `progFd` at `attachType` to interface `ifindex` through a BPF link:
 * the program comes off when the returned fd is closed, so also when the process dies.
 */
export function createLink(progFd: number, ifindex: number, attachType: number, flags: number, what: string): number {
  const attr = new Uint8Array(128);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, progFd, true);
  dv.setUint32(4, ifindex, true);
  dv.setUint32(8, attachType, true);
  dv.setUint32(12, flags, true);
  return bpf(BPF_LINK_CREATE, attr, `bpf(BPF_LINK_CREATE) ${what}`);
}
