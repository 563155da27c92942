// The XDP hand-off (--xdp): an XDP program on each interface tslb is given takes the
// frames tslb would otherwise get through the TUN or the TAP (TCP/UDP to a NAT or DR
// service, or from a masqueraded real server's port) straight into tslb's AF_XDP socket
// on that interface (io/xsk.ts), before the host's IP stack, routing and bridge see them.
// Everything else (ARP and neighbour discovery, the host's own traffic, IPv4 fragments and
// options, IPv6 extension headers, other services) goes on to the kernel untouched, and
// so to the TUN path when it is tslb's.
//
// Only frames addressed to this host are candidates: the destination MAC must be one the
// host receives on that interface (its own, its bridge's for a bridge port, and tslb's
// own on the DR segment). A frame a bridge port merely carries between two other hosts
// (a real server's reply to its own router, say) is the bridge's to forward.
//
// Which frames: two BPF hash maps (the "steal maps"), shared by every interface's program:
// for IPv4, 8-byte keys of address (4 bytes, network order), port (2, network order), IP
// protocol, direction (0: the destination is a service, 1: the source is a real server,
// 2: the source is a DR service, so the frame is a DR real server's reply to a client);
// for IPv6, 20-byte keys of the same with a 16-byte address (TCP or UDP right after the
// fixed header: no extension headers). The control thread keeps them equal to the rules
// (control/xdp_keys.ts).
//
// DR replies (--xdp-forward, on by default) do not need tslb, but when this host is also
// the real servers' router they cross it: the program takes them too, and tslb routes
// them on to the client from its sockets (dataplane/xdp_path.ts), past the host's bridge
// and routing, joining a response's segments as it does for NAT.
//
// The program comes off when its link fd closes, so also when tslb dies.
import { Asm, createLink, createMap, loadProgram, updateElem, updateLink } from "./bpf.ts";
import { close } from "./libc.ts";

const BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2, BPF_MAP_TYPE_XSKMAP = 17, BPF_XDP = 37;
export const BPF_PROG_TYPE_XDP = 6;
const XDP_FLAGS_SKB_MODE = 2, XDP_FLAGS_DRV_MODE = 4;
const XDP_PASS = 2;
const FUNC_MAP_LOOKUP = 1, FUNC_KTIME_GET_NS = 5, FUNC_REDIRECT_MAP = 51;

/**
 * Bulk flows, marked in the kernel: a frame over STEAL_MAX_FRAME stays with the kernel and
 * marks its flow (one direction: addresses and ports, hashed into one of BULK_SLOTS slots)
 * for BULK_NS; the flow's small frames in that time stay with the kernel too. Otherwise a
 * transfer's short segments (window-limited sends, a burst's last bytes), taken into a
 * socket, reach the receiver after the super-packets the kernel sent on meanwhile: out of
 * order. Measured at the client of a 4-connection bulk download, segments queued out of
 * order in 6 s: DR 31 900 without the mark, 91 with it; NAT 20 600 and 10.
 */
const BULK_SLOTS = 4096;
const BULK_NS = 100_000_000;

/** Steal-key directions: to a service, from a NAT real server, from a DR service (its real server's reply). */
export const DIR_SERVICE = 0, DIR_SERVER = 1, DIR_DR_REPLY = 2;

/**
 * The longest frame taken. A longer one is part of a bulk transfer (or a TCP super-packet,
 * in generic mode), which the TUN carries better: with offloads it moves 64 KiB per read,
 * where a socket moves one frame. Taking frames up to the MTU (1 514) cut a bulk download
 * through generic XDP to 660–740 MB/s; up to 1 024 it ran at 980 MB/s (the TUN alone:
 * 1.1–1.2 GB/s). It must stay below a socket frame less the kernel's headroom (XSK_MAX_FRAME).
 */
export const STEAL_MAX_FRAME = 1024;

/** Steal-map key sizes, and how many keys each map holds (services plus real servers). */
export const STEAL_KEY_BYTES = 8;
export const STEAL_KEY6_BYTES = 20;
export const STEAL_MAX = 65536;

// eBPF opcodes (include/uapi/linux/bpf.h, bpf_common.h).
const LDX_W = 0x61, LDX_H = 0x69, LDX_B = 0x71, STX_W = 0x63, STX_H = 0x6b, STX_B = 0x73, ST_B = 0x72;
const MOV64_X = 0xbf, MOV64_K = 0xb7, ADD64_K = 0x07, AND64_K = 0x57, SUB64_X = 0x1f, MUL32_K = 0x24, XOR32_X = 0xac, RSH64_K = 0x77;
const LDX_DW = 0x79, STX_DW = 0x7b;
const JA = 0x05, JGT_X = 0x2d, JGE_X = 0x3d, JEQ_K = 0x15, JNE_K = 0x55, JLT_K = 0xa5, CALL = 0x85, EXIT = 0x95;
const JEQ32_K = 0x16, JNE32_K = 0x56, JNE_X = 0x5d;

/** The steal-map key of an IPv4 address (int32 of its big-endian value), port, protocol and direction (DIR_*). */
export function stealKey(addr: number, port: number, proto: number, dir: number): Uint8Array {
  return Uint8Array.of(addr >>> 24, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff, addr & 0xff, port >>> 8, port & 0xff, proto, dir);
}

/** The IPv6 steal-map key: the address as 4 int32 words of its big-endian value. */
export function stealKey6(words: readonly number[], port: number, proto: number, dir: number): Uint8Array {
  const k = new Uint8Array(STEAL_KEY6_BYTES);
  const dv = new DataView(k.buffer);
  for (let i = 0; i < 4; i++) dv.setInt32(i * 4, words[i] | 0);
  dv.setUint16(16, port);
  k[18] = proto;
  k[19] = dir;
  return k;
}

/**
 * The program for one interface. Registers: r6 the context, r7 the IP protocol, r8 the
 * frame's start (kept across helper calls). Loads of network-order fields read them
 * little-endian, so constants are byte-swapped: 0x0008 is EtherType 0x0800. With
 * `drReplies`, a third key (the source, direction 2) takes DR real servers' replies.
 */
export function xdpProgram(maps: XdpMaps, xskFd: number, macs: readonly Uint8Array[], drReplies: boolean) {
  const [stealFd, steal6Fd] = maps.steal;
  const bulkFd = maps.bulk;
  const a = new Asm();
  a.i(MOV64_X, 6, 1);
  a.i(LDX_W, 8, 6, 0, 0); // data
  a.i(LDX_W, 3, 6, 4, 0); // data_end
  a.i(MOV64_X, 4, 8).i(ADD64_K, 4, 0, 0, 38); // Ethernet 14 + IPv4 20 + ports 4
  a.jump(JGT_X, "pass", 4, 0, 3);
  // The destination MAC, as two little-endian loads compared in 32 bits (JMP32: a
  // constant with its top bit set is not sign-extended).
  a.i(LDX_H, 5, 8, 0, 0).i(LDX_W, 4, 8, 2, 0);
  macs.forEach((m, k) => {
    a.jump(JNE32_K, `mac${k + 1}`, 5, m[0] | (m[1] << 8));
    a.jump(JEQ32_K, "ours", 4, (m[2] | (m[3] << 8) | (m[4] << 16) | (m[5] << 24)) | 0);
    a.label(`mac${k + 1}`);
  });
  a.jump(JA, "pass");
  a.label("ours");
  a.i(LDX_H, 5, 8, 12, 0).jump(JEQ_K, "ipv6", 5, 0xdd86).jump(JNE_K, "pass", 5, 0x0008);
  a.i(LDX_B, 5, 8, 14, 0).jump(JNE_K, "pass", 5, 0x45); // IPv4 without options
  a.i(LDX_H, 5, 8, 20, 0).i(AND64_K, 5, 0, 0, 0xff3f).jump(JNE_K, "pass", 5, 0); // MF or offset: a fragment
  a.i(LDX_B, 7, 8, 23, 0).jump(JEQ_K, "key", 7, 6).jump(JNE_K, "pass", 7, 17);
  a.label("key");
  // r9: the flow's hash; a longer frame marks the flow bulk and stays with the kernel.
  flowHash(a, [26, 30, 34]);
  a.i(MOV64_X, 4, 8).i(ADD64_K, 4, 0, 0, STEAL_MAX_FRAME + 1);
  a.jump(JGE_X, "big", 3, 0, 4);
  // Key 1: destination address and port, direction 0.
  a.i(LDX_W, 5, 8, 30, 0).i(STX_W, 10, 5, -8, 0);
  a.i(LDX_H, 5, 8, 36, 0).i(STX_H, 10, 5, -4, 0);
  a.i(STX_B, 10, 7, -2, 0).i(ST_B, 10, 0, -1, DIR_SERVICE);
  lookup(a, stealFd, -8);
  a.jump(JNE_K, "take", 0, 0);
  // Key 2: source address and port, direction 1 (then 2).
  a.i(LDX_W, 5, 8, 26, 0).i(STX_W, 10, 5, -8, 0);
  a.i(LDX_H, 5, 8, 34, 0).i(STX_H, 10, 5, -4, 0);
  sourceKeys(a, stealFd, -8, -1, drReplies);
  a.jump(JA, "take");
  // IPv6: the transport header right after the fixed one (next header TCP or UDP).
  a.label("ipv6");
  a.i(MOV64_X, 4, 8).i(ADD64_K, 4, 0, 0, 58); // Ethernet 14 + IPv6 40 + ports 4
  a.jump(JGT_X, "pass", 4, 0, 3);
  a.i(LDX_B, 7, 8, 20, 0).jump(JEQ_K, "key6", 7, 6).jump(JNE_K, "pass", 7, 17);
  a.label("key6");
  flowHash(a, [22, 26, 30, 34, 38, 42, 46, 50, 54]);
  a.i(MOV64_X, 4, 8).i(ADD64_K, 4, 0, 0, STEAL_MAX_FRAME + 1);
  a.jump(JGE_X, "big", 3, 0, 4);
  // Key 1 at fp-24: destination address (bytes 38..53) and port (56), direction 0.
  for (let w = 0; w < 4; w++) a.i(LDX_W, 5, 8, 38 + 4 * w, 0).i(STX_W, 10, 5, -24 + 4 * w, 0);
  a.i(LDX_H, 5, 8, 56, 0).i(STX_H, 10, 5, -8, 0);
  a.i(STX_B, 10, 7, -6, 0).i(ST_B, 10, 0, -5, DIR_SERVICE);
  lookup(a, steal6Fd, -24);
  a.jump(JNE_K, "take", 0, 0);
  // Key 2: source address (22..37) and port (54), direction 1 (then 2).
  for (let w = 0; w < 4; w++) a.i(LDX_W, 5, 8, 22 + 4 * w, 0).i(STX_W, 10, 5, -24 + 4 * w, 0);
  a.i(LDX_H, 5, 8, 54, 0).i(STX_H, 10, 5, -8, 0);
  sourceKeys(a, steal6Fd, -24, -5, drReplies);
  // A frame of a flow marked bulk within BULK_NS stays with the kernel, behind its super-packets.
  a.label("take");
  a.i(CALL, 0, 0, 0, FUNC_KTIME_GET_NS).i(STX_DW, 10, 0, -40, 0);
  bulkSlot(a, bulkFd);
  a.jump(JEQ_K, "socket", 0, 0);
  a.i(LDX_W, 5, 0, 0, 0).jump(JNE_X, "socket", 5, 0, 9);
  a.i(LDX_DW, 4, 0, 8, 0).i(LDX_DW, 5, 10, -40, 0).i(SUB64_X, 5, 4);
  a.jump(JLT_K, "pass", 5, BULK_NS);
  // To the socket of the queue the frame came in on; with none there, on to the kernel.
  a.label("socket");
  a.mapFd(1, xskFd).i(LDX_W, 2, 6, 16, 0).i(MOV64_K, 3, 0, 0, XDP_PASS).i(CALL, 0, 0, 0, FUNC_REDIRECT_MAP).i(EXIT);
  // A frame over STEAL_MAX_FRAME (so goes through the TUN, with its offloads, or the
  // kernel's routing): its flow's slot takes the flow's hash and the time.
  a.label("big");
  a.i(CALL, 0, 0, 0, FUNC_KTIME_GET_NS).i(STX_DW, 10, 0, -40, 0);
  bulkSlot(a, bulkFd);
  a.jump(JEQ_K, "pass", 0, 0);
  a.i(STX_W, 0, 9, 0, 0).i(LDX_DW, 5, 10, -40, 0).i(STX_DW, 0, 5, 8, 0);
  a.label("pass");
  a.i(MOV64_K, 0, 0, 0, XDP_PASS).i(EXIT);
  return a.done();
}

/**
 * r9 = a 32-bit hash of the frame's words at `offsets` (addresses, then both ports). Its
 * high bits pick the slot: the low bits of a product only see the low bits of its input,
 * and the low bytes of the ports word are the service's fixed port.
 */
function flowHash(a: Asm, offsets: readonly number[]): void {
  a.i(MOV64_K, 9, 0, 0, 0);
  offsets.forEach((o, k) => a.i(LDX_W, 5, 8, o, 0).i(MUL32_K, 5, 0, 0, HASH_MUL[k]).i(XOR32_X, 9, 5));
}
const HASH_MUL = [0x9e3779b1, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f, 0x165667b1, 0xd3a2646d, 0xfd7046c5, 0xb55a4f09, 0x7feb352d].map((m) => m | 0);

/** r0 = the bulk map's slot for the flow hash in r9 (a pointer to {u32 hash, u32 pad, u64 ns}), or 0. */
function bulkSlot(a: Asm, bulkFd: number): void {
  a.i(MOV64_X, 5, 9).i(RSH64_K, 5, 0, 0, 20).i(AND64_K, 5, 0, 0, BULK_SLOTS - 1).i(STX_W, 10, 5, -32, 0);
  lookup(a, bulkFd, -32);
}

/**
 * The source key at fp + keyAt (address and port stored, protocol in place) looked up as
 * direction 1, then 2 with `drReplies`: on a hit to "take", on a miss to "pass"; the
 * direction byte is at fp + dirAt.
 */
function sourceKeys(a: Asm, mapFd: number, keyAt: number, dirAt: number, drReplies: boolean): void {
  a.i(ST_B, 10, 0, dirAt, DIR_SERVER);
  lookup(a, mapFd, keyAt);
  if (drReplies) {
    a.jump(JNE_K, "take", 0, 0);
    a.i(ST_B, 10, 0, dirAt, DIR_DR_REPLY);
    lookup(a, mapFd, keyAt);
  }
  a.jump(JEQ_K, "pass", 0, 0);
}

/** r0 = bpf_map_lookup_elem(map, fp + keyAt). */
function lookup(a: Asm, mapFd: number, keyAt: number): void {
  a.mapFd(1, mapFd).i(MOV64_X, 2, 10).i(ADD64_K, 2, 0, 0, keyAt).i(CALL, 0, 0, 0, FUNC_MAP_LOOKUP);
}

/** The maps every interface's program shares: the steal maps (IPv4, IPv6) and the bulk-flow slots. */
export interface XdpMaps {
  steal: [number, number];
  /** BULK_SLOTS of {u32 flow hash, u32 pad, u64 ns}. */
  bulk: number;
}

/** The shared maps, created once by the control thread (their fds are process-wide). */
export function createXdpMaps(): XdpMaps {
  const made: number[] = [];
  try {
    made.push(createMap(BPF_MAP_TYPE_HASH, STEAL_KEY_BYTES, 1, STEAL_MAX, "(xdp steal map)"));
    made.push(createMap(BPF_MAP_TYPE_HASH, STEAL_KEY6_BYTES, 1, STEAL_MAX, "(xdp steal map, IPv6)"));
    made.push(createMap(BPF_MAP_TYPE_ARRAY, 4, 16, BULK_SLOTS, "(xdp bulk flows)"));
    return { steal: [made[0], made[1]], bulk: made[2] };
  } catch (e) {
    for (const fd of made) close(fd);
    throw e;
  }
}

/** A one-entry XSKMAP: key 0 (queue 0) to an AF_XDP socket, set by attachXdp. */
export function createXskMap(ifname: string): number {
  return createMap(BPF_MAP_TYPE_XSKMAP, 4, 4, 1, `(xsk map ${ifname})`);
}

/** What attach() leaves open: close both to take the program off. */
export interface XdpAttachment {
  link: number;
  xskMap: number;
  /** "native" (the driver runs it) or "generic" (the kernel, on the socket buffer). */
  mode: string;
}

/**
 * Points queue 0 of interface `ifindex` at AF_XDP socket `xskFd` and attaches the program,
 * taking frames for the destination MACs `macs` (and DR replies with `drReplies`), in
 * `mode`: "native" (the driver runs it) or "generic" (the kernel, on socket buffers).
 */
export function attachXdp(ifindex: number, ifname: string, macs: readonly Uint8Array[], maps: XdpMaps, xskFd: number, mode: "native" | "generic", drReplies: boolean): XdpAttachment {
  const xskMap = createXskMap(ifname);
  let prog = -1;
  try {
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, xskFd, true);
    updateElem(xskMap, new Uint8Array(4), v);
    prog = loadProgram(BPF_PROG_TYPE_XDP, xdpProgram(maps, xskMap, macs, drReplies), `(xdp ${ifname})`);
    const link = createLink(prog, ifindex, BPF_XDP, mode === "native" ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE, `(xdp ${mode} ${ifname})`);
    return { link, xskMap, mode };
  } catch (e) {
    close(xskMap);
    throw e;
  } finally {
    // The link holds the program.
    if (prog >= 0) close(prog);
  }
}

/**
 * Replaces an attached program with one taking frames for `macs` (the same socket, maps and
 * mode): for when a bridge takes another MAC. The old program serves until the swap.
 */
export function retargetXdp(att: XdpAttachment, ifname: string, macs: readonly Uint8Array[], maps: XdpMaps, drReplies: boolean): void {
  const prog = loadProgram(BPF_PROG_TYPE_XDP, xdpProgram(maps, att.xskMap, macs, drReplies), `(xdp ${ifname})`);
  try {
    updateLink(att.link, prog, `(xdp ${ifname})`);
  } finally {
    close(prog);
  }
}
