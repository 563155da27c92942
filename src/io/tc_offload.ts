// Bulk offload (--bulk-offload, with --xdp): the kernel rewrites an established NAT or
// full-NAT TCP connection's bulk frames itself, so a download no longer crosses the TUN
// twice (a read and a write, each a copy of every byte) and user space.
//
// A tc program (tcx ingress, next to the XDP program on each interface of the hand-off)
// looks every TCP frame the XDP program left to the kernel up in an "offload map" by its
// addresses and ports. On a hit it writes the connection's other addresses and ports over
// them (NAT: client → VIP becomes client → real server, real server → client becomes VIP →
// client; full NAT also swaps in the local address and port), updates the IPv4 header's
// and TCP's checksums through the kernel's helpers (they know the socket buffer's checksum
// state: a super-packet's partial sum takes the change of the pseudo-header only), counts
// the frame in the entry, and sends it on itself (forward()): the kernel's FIB gives the
// way out and the next hop's MAC, the TTL goes down by one, and the frame is redirected to
// that interface's output, past the host's bridge and routing. The rewritten frame no
// longer matches the policy rule that sends real servers' replies into the TUN. Where the
// FIB has no answer yet (no neighbour entry, say) the rewritten frame goes on to the
// kernel, which routes it like any other.
//
// The program also goes on the ports of a bridge the hand-off names (the daemon's choice):
// there it sees a transfer's frames before the bridge does, so they never reach the
// bridge's XDP program, whose generic mode copies every super-packet whole first.
//
// Frames with SYN, FIN or RST are never rewritten: they take the usual path, so tslb's
// state machine sees every connection's opening and closing. The XDP program still takes
// small frames (a download's ACKs) into tslb, which keeps the connection alive; frames
// the program leaves to the kernel are the big ones and, for 100 ms after one, the
// flow's small ones (its bulk mark), so a flow's frames are not reordered by the two paths.
//
// tslb puts a connection's two entries in when it sees the first frame over 1 024 bytes
// (dataplane/flow_offload.ts), folds the entries' counts into its statistics, and takes
// them out when the connection goes.
import { Asm, createLink, createMap, loadProgram } from "./bpf.ts";
import { close } from "./libc.ts";

const BPF_MAP_TYPE_HASH = 1;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
const BPF_TCX_INGRESS = 46;
/** tcx: go on to the next program (or the kernel's path when none follows). */
export const TCX_NEXT = -1;
const FUNC_MAP_LOOKUP = 1, FUNC_SKB_STORE_BYTES = 9, FUNC_L3_CSUM_REPLACE = 10, FUNC_L4_CSUM_REPLACE = 11,
  FUNC_REDIRECT = 23, FUNC_CSUM_DIFF = 28, FUNC_SET_HASH_INVALID = 41, FUNC_FIB_LOOKUP = 69;
/** struct bpf_fib_lookup (64 bytes): family, l4_protocol, sport, dport, tot_len, ifindex, ..., src at 16, dst at 32, smac at 52, dmac at 58. */
const FIB_BYTES = 64, FIB_IFINDEX = 8, FIB_SRC = 16, FIB_DST = 32, FIB_SMAC = 52, FIB_DMAC = 58;
const AF_INET = 2, AF_INET6 = 10;
const BPF_F_PSEUDO_HDR = 0x10, BPF_F_IPV6 = 0x80;

/** Map sizes: IPv4 keys are addresses and ports (12 bytes); values the new ones, then the counts. */
export const OFFLOAD_KEY_BYTES = 12;
export const OFFLOAD_VALUE_BYTES = 32;
export const OFFLOAD_KEY6_BYTES = 36;
export const OFFLOAD_VALUE6_BYTES = 56;
/** Where each value keeps its frame and byte counts (u64, added to atomically by the program). */
export const OFFLOAD_PACKETS_AT = 16, OFFLOAD_BYTES_AT = 24;
export const OFFLOAD6_PACKETS_AT = 40, OFFLOAD6_BYTES_AT = 48;
/** Two entries per connection (one per direction). */
export const OFFLOAD_MAX_ENTRIES = 32768;

// eBPF opcodes (include/uapi/linux/bpf.h).
const LDX_W = 0x61, LDX_H = 0x69, LDX_B = 0x71, STX_W = 0x63, STX_H = 0x6b, STX_B = 0x73, ST_DW = 0x7a, ATOMIC_DW = 0xdb;
const MOV64_X = 0xbf, MOV64_K = 0xb7, ADD64_K = 0x07, AND64_K = 0x57;
const JGT_X = 0x2d, JEQ_K = 0x15, JNE_K = 0x55, JSET_K = 0x45, JLE_K = 0xb5, CALL = 0x85, EXIT = 0x95;
const TCP_FIN_SYN_RST = 0x07;
// __sk_buff fields.
const SKB_LEN = 0, SKB_INGRESS_IFINDEX = 36, SKB_DATA = 76, SKB_DATA_END = 80;
/** Where the program keeps the frame's TTL (or hop limit) and IPv4 TTL/protocol word, read before any helper. */
const TTL_AT = -112, TTL_WORD_AT = -120;
const ETH_HLEN = 14;

/** The maps the tc program and every worker share: IPv4 and IPv6. */
export interface OffloadMaps {
  v4: number;
  v6: number;
}

export function createOffloadMaps(): OffloadMaps {
  const v4 = createMap(BPF_MAP_TYPE_HASH, OFFLOAD_KEY_BYTES, OFFLOAD_VALUE_BYTES, OFFLOAD_MAX_ENTRIES, "(bulk offload map)");
  try {
    return { v4, v6: createMap(BPF_MAP_TYPE_HASH, OFFLOAD_KEY6_BYTES, OFFLOAD_VALUE6_BYTES, OFFLOAD_MAX_ENTRIES, "(bulk offload map, IPv6)") };
  } catch (e) {
    close(v4);
    throw e;
  }
}

/**
 * The program. Registers: r6 the socket buffer, r7 the map value, r8 the frame's start,
 * r9 the address change's checksum difference. Offsets count from the Ethernet header
 * (tc sees it at ingress); the packet pointers are dead after the first helper that may
 * change the packet, so everything the rewrite needs is on the stack or in the value.
 */
export function tcOffloadProgram(maps: OffloadMaps) {
  const a = new Asm();
  a.i(MOV64_X, 6, 1);
  a.i(LDX_W, 8, 6, SKB_DATA, 0).i(LDX_W, 3, 6, SKB_DATA_END, 0);
  a.i(MOV64_X, 4, 8).i(ADD64_K, 4, 0, 0, 54); // Ethernet 14 + IPv4 20 + TCP 20
  a.jump(JGT_X, "next", 4, 0, 3);
  a.i(LDX_H, 5, 8, 12, 0).jump(JEQ_K, "ipv6", 5, 0xdd86).jump(JNE_K, "next", 5, 0x0008);
  a.i(LDX_B, 5, 8, 14, 0).jump(JNE_K, "next", 5, 0x45); // no options
  a.i(LDX_H, 5, 8, 20, 0).i(AND64_K, 5, 0, 0, 0xff3f).jump(JNE_K, "next", 5, 0); // not a fragment
  a.i(LDX_B, 5, 8, 23, 0).jump(JNE_K, "next", 5, 6);
  a.i(LDX_B, 5, 8, 47, 0).jump(JSET_K, "next", 5, TCP_FIN_SYN_RST);
  a.i(LDX_B, 5, 8, 22, 0).i(STX_W, 10, 5, TTL_AT, 0).i(LDX_H, 5, 8, 22, 0).i(STX_W, 10, 5, TTL_WORD_AT, 0);
  // Key at fp-16: source, destination, ports (bytes 26..37).
  matchFlow(a, maps.v4, 26, 3, -16, 8, OFFLOAD_PACKETS_AT, OFFLOAD_BYTES_AT);
  // The IPv4 header sum, then TCP's (the addresses are in its pseudo-header), then the ports.
  a.i(MOV64_X, 1, 6).i(MOV64_K, 2, 0, 0, 24).i(MOV64_K, 3, 0, 0, 0).i(MOV64_X, 4, 9).i(MOV64_K, 5, 0, 0, 0);
  a.i(CALL, 0, 0, 0, FUNC_L3_CSUM_REPLACE).jump(JNE_K, "next", 0, 0);
  l4ByDiff(a, 50, BPF_F_PSEUDO_HDR);
  a.jump(JNE_K, "next", 0, 0);
  rewrite(a, -16 + 8, 8, 50, 26, OFFLOAD_KEY_BYTES);
  forward(a, 4);
  // IPv6 without extension headers.
  a.label("ipv6");
  a.i(MOV64_X, 4, 8).i(ADD64_K, 4, 0, 0, 74); // Ethernet 14 + IPv6 40 + TCP 20
  a.jump(JGT_X, "next", 4, 0, 3);
  a.i(LDX_B, 5, 8, 20, 0).jump(JNE_K, "next", 5, 6);
  a.i(LDX_B, 5, 8, 67, 0).jump(JSET_K, "next", 5, TCP_FIN_SYN_RST);
  a.i(LDX_B, 5, 8, 21, 0).i(STX_W, 10, 5, TTL_AT, 0);
  // Key at fp-40: source, destination, ports (bytes 22..57).
  matchFlow(a, maps.v6, 22, 9, -40, 32, OFFLOAD6_PACKETS_AT, OFFLOAD6_BYTES_AT);
  // BPF_F_IPV6: a complete sum of the socket buffer (a NIC's) is left alone for IPv6 (the
  // kernel would fold the pseudo-header change into it wrongly). A kernel without the flag
  // refuses the call, and the frame goes on unchanged.
  l4ByDiff(a, 70, BPF_F_PSEUDO_HDR | BPF_F_IPV6);
  a.jump(JNE_K, "next", 0, 0);
  rewrite(a, -40 + 32, 32, 70, 22, OFFLOAD_KEY6_BYTES);
  forward(a, 6);
  a.label("next");
  a.i(MOV64_K, 0, 0, 0, TCX_NEXT).i(EXIT);
  return a.done();
}

/**
 * The frame's `words` words from byte `from` (addresses, then ports) as the key at fp +
 * keyAt, looked up in `mapFd`: a miss goes to "next"; on a hit r7 = the value, the frame
 * is counted in it, and r9 = the checksum difference of the `addrBytes` address bytes.
 */
function matchFlow(a: Asm, mapFd: number, from: number, words: number, keyAt: number, addrBytes: number, packetsAt: number, bytesAt: number): void {
  for (let w = 0; w < words; w++) a.i(LDX_W, 5, 8, from + 4 * w, 0).i(STX_W, 10, 5, keyAt + 4 * w, 0);
  lookup(a, mapFd, keyAt);
  a.jump(JEQ_K, "next", 0, 0);
  a.i(MOV64_X, 7, 0);
  count(a, packetsAt, bytesAt);
  csumDiff(a, keyAt, addrBytes);
}

/** r0 = bpf_map_lookup_elem(map, fp + keyAt). */
function lookup(a: Asm, mapFd: number, keyAt: number): void {
  a.mapFd(1, mapFd).i(MOV64_X, 2, 10).i(ADD64_K, 2, 0, 0, keyAt).i(CALL, 0, 0, 0, FUNC_MAP_LOOKUP);
}

/**
 * The entry's frame count += 1 and byte count += the IP packet's length (the frame's less
 * its Ethernet header: IPVS counts IP bytes), atomically: several CPUs may count at once.
 */
function count(a: Asm, packetsAt: number, bytesAt: number): void {
  a.i(MOV64_K, 1, 0, 0, 1).i(ATOMIC_DW, 7, 1, packetsAt, 0);
  a.i(LDX_W, 1, 6, SKB_LEN, 0).i(ADD64_K, 1, 0, 0, -ETH_HLEN).i(ATOMIC_DW, 7, 1, bytesAt, 0);
}

/** r9 = the checksum difference from the key's addresses (fp + keyAt, `bytes`) to the value's. */
function csumDiff(a: Asm, keyAt: number, bytes: number): void {
  a.i(MOV64_X, 1, 10).i(ADD64_K, 1, 0, 0, keyAt).i(MOV64_K, 2, 0, 0, bytes);
  a.i(MOV64_X, 3, 7).i(MOV64_K, 4, 0, 0, bytes).i(MOV64_K, 5, 0, 0, 0);
  a.i(CALL, 0, 0, 0, FUNC_CSUM_DIFF).i(MOV64_X, 9, 0);
}

/** bpf_l4_csum_replace(skb, csumAt, 0, r9, flags): a difference (size 0) into TCP's sum. */
function l4ByDiff(a: Asm, csumAt: number, flags: number): void {
  a.i(MOV64_X, 1, 6).i(MOV64_K, 2, 0, 0, csumAt).i(MOV64_K, 3, 0, 0, 0).i(MOV64_X, 4, 9).i(MOV64_K, 5, 0, 0, flags);
  a.i(CALL, 0, 0, 0, FUNC_L4_CSUM_REPLACE);
}

/**
 * The ports' change into TCP's sum (old at fp + portsAt, new at value + valuePortsAt), the
 * new addresses and ports over the old (`bytes` from `at`), the flow hash dropped (it was
 * the old tuple's).
 */
function rewrite(a: Asm, portsAt: number, valuePortsAt: number, csumAt: number, at: number, bytes: number): void {
  a.i(MOV64_X, 1, 6).i(MOV64_K, 2, 0, 0, csumAt).i(LDX_W, 3, 10, portsAt, 0).i(LDX_W, 4, 7, valuePortsAt, 0).i(MOV64_K, 5, 0, 0, 4);
  a.i(CALL, 0, 0, 0, FUNC_L4_CSUM_REPLACE);
  a.i(MOV64_X, 1, 6).i(MOV64_K, 2, 0, 0, at).i(MOV64_X, 3, 7).i(MOV64_K, 4, 0, 0, bytes).i(MOV64_K, 5, 0, 0, 0);
  a.i(CALL, 0, 0, 0, FUNC_SKB_STORE_BYTES);
  a.i(MOV64_X, 1, 6).i(CALL, 0, 0, 0, FUNC_SET_HASH_INVALID);
}

/**
 * After the rewrite: the frame leaves by the route of its new addresses, found in the
 * kernel's FIB (policy rules included; bpf_fib_lookup also checks that a super-packet's
 * segments fit the way out), with the next hop's MAC and the TTL or hop limit one lower,
 * redirected to that interface's output. Where the kernel could only route it itself (no
 * neighbour entry yet, a TTL that ends here, forwarding off), it goes on to the kernel as
 * rewritten. On a bridge port this also keeps the frame out of the bridge, and so out of
 * the bridge's XDP program, which would copy a super-packet whole before looking at it.
 */
function forward(a: Asm, family: 4 | 6): void {
  const p = -80 - (family === 4 ? 0 : 24); // the lookup's parameters, below the key
  const words = family === 4 ? 1 : 4;
  const valueDst = family === 4 ? 4 : 16;
  a.i(LDX_W, 5, 10, TTL_AT, 0).jump(JLE_K, `fwd${family}_next`, 5, 1);
  for (let o = 0; o < FIB_BYTES; o += 8) a.i(ST_DW, 10, 0, p + o, 0);
  a.i(ST_DW, 10, 0, p, family === 4 ? AF_INET | (6 << 8) : AF_INET6 | (6 << 8)); // family, TCP
  // The ports and addresses the frame now carries (the value's).
  a.i(LDX_H, 5, 7, valueDst * 2, 0).i(STX_H, 10, 5, p + 2, 0).i(LDX_H, 5, 7, valueDst * 2 + 2, 0).i(STX_H, 10, 5, p + 4, 0);
  a.i(LDX_W, 5, 6, SKB_INGRESS_IFINDEX, 0).i(STX_W, 10, 5, p + FIB_IFINDEX, 0);
  for (let w = 0; w < words; w++) {
    a.i(LDX_W, 5, 7, 4 * w, 0).i(STX_W, 10, 5, p + FIB_SRC + 4 * w, 0);
    a.i(LDX_W, 5, 7, valueDst + 4 * w, 0).i(STX_W, 10, 5, p + FIB_DST + 4 * w, 0);
  }
  a.i(MOV64_X, 1, 6).i(MOV64_X, 2, 10).i(ADD64_K, 2, 0, 0, p).i(MOV64_K, 3, 0, 0, FIB_BYTES).i(MOV64_K, 4, 0, 0, 0);
  a.i(CALL, 0, 0, 0, FUNC_FIB_LOOKUP).jump(JNE_K, `fwd${family}_next`, 0, 0);
  if (family === 4) {
    // TTL − 1, and the header sum for its 16-bit word (TTL, protocol: read little-endian, TTL is the low byte).
    a.i(LDX_W, 4, 10, TTL_WORD_AT, 0).i(MOV64_X, 3, 4).i(ADD64_K, 4, 0, 0, -1).i(STX_W, 10, 4, TTL_WORD_AT, 0);
    a.i(MOV64_X, 1, 6).i(MOV64_K, 2, 0, 0, ETH_HLEN + 10).i(MOV64_K, 5, 0, 0, 2).i(CALL, 0, 0, 0, FUNC_L3_CSUM_REPLACE);
    a.jump(JNE_K, `fwd${family}_next`, 0, 0);
    storeStack(a, ETH_HLEN + 8, TTL_WORD_AT, 1);
  } else {
    a.i(LDX_W, 5, 10, TTL_AT, 0).i(ADD64_K, 5, 0, 0, -1).i(STX_B, 10, 5, TTL_AT, 0);
    storeStack(a, ETH_HLEN + 7, TTL_AT, 1);
  }
  storeStack(a, 0, p + FIB_DMAC, 6);
  storeStack(a, 6, p + FIB_SMAC, 6);
  a.i(LDX_W, 1, 10, p + FIB_IFINDEX, 0).i(MOV64_K, 2, 0, 0, 0).i(CALL, 0, 0, 0, FUNC_REDIRECT).i(EXIT);
  a.label(`fwd${family}_next`);
  a.i(MOV64_K, 0, 0, 0, TCX_NEXT).i(EXIT);
}

/** bpf_skb_store_bytes(skb, at, fp + from, bytes, 0). */
function storeStack(a: Asm, at: number, from: number, bytes: number): void {
  a.i(MOV64_X, 1, 6).i(MOV64_K, 2, 0, 0, at).i(MOV64_X, 3, 10).i(ADD64_K, 3, 0, 0, from).i(MOV64_K, 4, 0, 0, bytes).i(MOV64_K, 5, 0, 0, 0);
  a.i(CALL, 0, 0, 0, FUNC_SKB_STORE_BYTES);
}

/**
 * Loads the program and attaches it at tcx ingress of `ifindex`; the returned link fd
 * holds it (closing it, or the process ending, takes it off).
 */
export function attachTcOffload(ifindex: number, ifname: string, maps: OffloadMaps): number {
  const prog = loadProgram(BPF_PROG_TYPE_SCHED_CLS, tcOffloadProgram(maps), `(bulk offload ${ifname})`);
  try {
    return createLink(prog, ifindex, BPF_TCX_INGRESS, 0, `(tcx ingress ${ifname})`);
  } finally {
    close(prog);
  }
}
