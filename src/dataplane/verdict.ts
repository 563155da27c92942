// What the pipeline decided for one packet. The worker acts on it: TX and PASS write the
// (possibly rewritten) IP packet to the TUN, TX_L2 writes an Ethernet frame to the TAP,
// DROP and CONSUMED send nothing (a drop is already counted).
export const VERDICT_DROP = 0;
/** Rewritten for its connection: send pkt.start..pkt.len. */
export const VERDICT_TX = 1;
/** Not ours (e.g. a real server's packet with no connection): hand back unchanged, as IPVS lets it pass. */
export const VERDICT_PASS = 2;
/** An Ethernet frame for the TAP (direct routing, ARP): send pkt.start..pkt.len there. */
export const VERDICT_TX_L2 = 3;
/** Handled inside the pipeline (an ARP answered, a frame queued while its MAC resolves): send nothing. */
export const VERDICT_CONSUMED = 4;
/**
 * A TCP super-packet (GSO) whose connection's path cannot carry one (DR, tunnels, NAT46,
 * the PROXY header): nothing was changed or counted; the reader cuts it into segments
 * (wire/gso.ts) and processes each.
 */
export const VERDICT_SEGMENT = 5;
