// Drop and pass reasons of the data plane: ONE list shared by the counters, --stats
// extras, metrics and tests (Katran's increment_ch_drop_* counters). A packet the
// pipeline does not forward increments exactly one of these; nothing is thrown or logged.
export const DROP = {
  NONE: 0,
  /** Shorter than the smallest header it claims to carry. */
  TRUNCATED: 1,
  /** Neither IPv4 nor IPv6 (IP version field), or ARP that is not Ethernet/IPv4. */
  UNSUPPORTED_L3: 2,
  /** IP header malformed: IHL < 5, lengths inconsistent with the frame, an endless IPv6 extension chain. */
  BAD_IP_HEADER: 3,
  /** IPv4 header checksum wrong. */
  BAD_IP_CSUM: 4,
  /** A fragment: reassembly is not done on this path. */
  FRAGMENT: 5,
  /** Protocol that IPVS does not balance (ICMP echo, ESP, ...) toward a VIP. */
  UNSUPPORTED_L4: 6,
  /** TCP data offset or UDP length inconsistent with the packet. */
  BAD_L4_HEADER: 7,
  /** Addressed to a VIP, but no service for that protocol and port. */
  NO_SERVICE: 8,
  /** TCP segment without SYN (or with RST) and no connection: cannot start a flow. */
  NO_CONN: 9,
  /** The scheduler found no available destination (all quiesced, overloaded or none). */
  NO_DEST: 10,
  /** Connection table at capacity. */
  TABLE_FULL: 11,
  /** Packet of a connection whose destination was removed (expired on sight). */
  DEST_GONE: 12,
  /** Writing to the device failed. */
  TX_ERROR: 13,
  /** The connection's forwarding method cannot be used here (DR without a TAP). */
  UNSUPPORTED_FWD: 14,
  /** Multicast or broadcast that the kernel routed into the TUN (IPv6 router solicitations, MLD): never ours. */
  MULTICAST: 15,
  /** A frame on the TAP that is not for tslb's MAC or not for a VIP. */
  NOT_FOR_US: 16,
  /** TTL (hop limit) would reach 0 when forwarding. */
  TTL_EXCEEDED: 17,
  /** Direct routing: the real server's MAC is being resolved and its queue is full, or it never answered. */
  NEIGH_UNRESOLVED: 18,
  /** GRE/GUE header malformed: wrong version, unknown flags, bad checksum, lengths (forward/tunnel, decap). */
  BAD_TUNNEL_HEADER: 19,
  /** Too big for the tunnel: over 65535 bytes with the outer headers, over the tunnel MTU with DF (ICMP sent back), or no route to the real server. */
  TUNNEL_TOO_BIG: 20,
  /** Full NAT: every port of the local-port pool toward that real server is taken (a TCP client gets a reset). */
  FULLNAT_NO_PORT: 21,
  /** Full NAT: no local address toward the real server (no --laddr of its family, no route). */
  FULLNAT_NO_LADDR: 22,
  /** A new connection's first packet dropped while the table is over 3/4 full (--drop-packet, IPVS drop_packet). */
  DROP_PACKET: 23,
} as const;

export const DROP_NAMES: readonly string[] = [
  "none", "truncated", "unsupported_l3", "bad_ip_header", "bad_ip_csum", "fragment", "unsupported_l4",
  "bad_l4_header", "no_service", "no_conn", "no_dest", "table_full", "dest_gone", "tx_error",
  "unsupported_fwd", "multicast", "not_for_us", "ttl_exceeded", "neigh_unresolved", "bad_tunnel_header", "tunnel_too_big",
  "fullnat_no_port", "fullnat_no_laddr", "drop_packet",
];
export const DROP_COUNT = DROP_NAMES.length;
