// Counter memory: one Float64Array block per worker (exact up to 2^53), single writer;
// the control thread sums the blocks and tolerates slightly stale values. Layout:
//   [svc id * 5 + k]                 service stats
//   [(MAX_SVC + dest id) * 5 + k]    destination stats
//   [DROP_BASE + reason]             drops by DropReason (wire/drop.ts)
//   [MISC_BASE + m]                  rx / tx / pass / segmented / gso_rx / coalesced / joined packet counts
// k: conns, inpkts, outpkts, inbytes, outbytes (the ip_vs_stats fields).
import { DROP_COUNT } from "../wire/drop.ts";

/** Ids are slot numbers; 0 is reserved as "unset" (Katran's real ids start at 1). */
/** Room for a -R of 10 000 services × 10 real servers with headroom (~5.9 MB of counters per worker). */
export const MAX_SVC = 16384;
export const MAX_DEST = 131072;

export const K_CONNS = 0;
export const K_INPKTS = 1;
export const K_OUTPKTS = 2;
export const K_INBYTES = 3;
export const K_OUTBYTES = 4;
export const STATS_WIDTH = 5;

export const DROP_BASE = (MAX_SVC + MAX_DEST) * STATS_WIDTH;
export const MISC_BASE = DROP_BASE + DROP_COUNT;
export const M_RX = 0;
export const M_TX = 1;
export const M_PASS = 2;
/** TCP super-packets (offloading TUN) cut into segments for a path that cannot take them. */
export const M_SEGMENTED = 3;
/** TCP super-packets read from an offloading TUN (each counts once in rx too). */
export const M_GSO_RX = 4;
/** UDP super-packets written by the coalescer (several datagrams of a flow in one write). */
export const M_COALESCED = 5;
/** TCP packets written by the joiner that carry several segments of a flow. */
export const M_JOINED = 6;
/** Frames taken from the XDP hand-off's AF_XDP sockets (--xdp; each counts once in rx too). */
export const M_XDP_RX = 7;
/** Of those, the ones sent on through the TUN (next hop not learnt yet, TTL, not ours). */
export const M_XDP_TUN = 8;
/** Of those, DR real servers' replies, routed on to their clients (--xdp-forward). */
export const M_XDP_DR = 9;
/** Connections whose bulk frames the kernel took over (--bulk-offload); their frames count in the service stats. */
export const M_OFFLOADED = 10;
export const MISC_COUNT = 11;
/** The names of the MISC counters, by index (drops op, metrics). */
export const MISC_NAMES = ["rx", "tx", "pass", "segmented", "gso_rx", "coalesced", "joined", "xdp_rx", "xdp_tun", "xdp_dr", "offloaded"] as const;
export const COUNTER_WORDS = MISC_BASE + MISC_COUNT;

export function svcBase(id: number): number {
  return id * STATS_WIDTH;
}
export function destBase(id: number): number {
  return (MAX_SVC + id) * STATS_WIDTH;
}

export function allocCounters(): SharedArrayBuffer {
  return new SharedArrayBuffer(COUNTER_WORDS * 8);
}

/** Sums word `i` over all worker blocks (control thread). */
export function sumCounter(blocks: readonly Float64Array[], i: number): number {
  let s = 0;
  for (let b = 0; b < blocks.length; b++) s += blocks[b][i];
  return s;
}
