// Forwarding method numbers shared by the compiled snapshot, the connection table
// flags and the XMIT table (ip_vs_xmit.c's split). Order is the -L column's words.
export const FWD_MASQ = 0;
export const FWD_ROUTE = 1;
export const FWD_TUNNEL = 2;
/** tslb-only full NAT (DPVS's FNAT): NAT that also rewrites the source to a local address. */
export const FWD_FULLNAT = 3;
export const FWD_NAMES = ["masq", "route", "tunnel", "fullnat"] as const;
