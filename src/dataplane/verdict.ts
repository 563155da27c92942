// What the pipeline decided for one packet. The worker acts on it: TX and PASS write the
// (possibly rewritten) packet back to the device, DROP does nothing (already counted).
export const VERDICT_DROP = 0;
/** Rewritten for its connection: send pkt.start..pkt.len. */
export const VERDICT_TX = 1;
/** Not ours (e.g. a real server's packet with no connection): hand back unchanged, as IPVS lets it pass. */
export const VERDICT_PASS = 2;
