// IPVS's TCP state machine (net/netfilter/ipvs/ip_vs_proto_tcp.c, reference §4.3) and
// its default timeouts (§4.4). Three next-state tables: INPUT (client→server on a NAT
// connection), OUTPUT (server→client, NAT only) and INPUT-ONLY (DR/tunnel connections,
// whose replies the balancer never sees). Pure data plus two small functions.

export const S_NONE = 0;
export const S_ESTABLISHED = 1;
export const S_SYN_SENT = 2;
export const S_SYN_RECV = 3;
export const S_FIN_WAIT = 4;
export const S_TIME_WAIT = 5;
export const S_CLOSE = 6;
export const S_CLOSE_WAIT = 7;
export const S_LAST_ACK = 8;
export const S_LISTEN = 9;
export const S_SYNACK = 10;
/** UDP entries have one state, shown as "UDP" by -c. */
export const S_UDP = 11;
export const STATE_COUNT = 12;

export const STATE_NAMES: readonly string[] = [
  "NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
  "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP",
];

/** Default per-state timeouts in seconds (index = state); --set changes ES, FIN_WAIT and UDP. */
export const DEFAULT_STATE_TIMEOUTS: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300];

export const TABLE_INPUT = 0;
export const TABLE_OUTPUT = 1;
export const TABLE_INPUT_ONLY = 2;

// Short names keep the tables readable in the same shape as the reference.
// (No transition of these three tables leads to NONE or SYNACK: only secure_tcp's do.)
const ES = S_ESTABLISHED, SS = S_SYN_SENT, SR = S_SYN_RECV, FW = S_FIN_WAIT, TW = S_TIME_WAIT;
const CL = S_CLOSE, CW = S_CLOSE_WAIT, LA = S_LAST_ACK, LI = S_LISTEN;

// Rows: events syn, fin, ack, rst. Columns: NONE ES SS SR FW TW CL CW LA LI SA.
const INPUT = [
  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
  [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];
const OUTPUT = [
  [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
  [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
  [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
  [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const INPUT_ONLY = [
  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
  [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/** Flattened [table][event][state] → next state; one typed array, indexed without allocation. */
const NEXT = new Uint8Array(3 * 4 * 11);
[INPUT, OUTPUT, INPUT_ONLY].forEach((t, ti) => t.forEach((row, ei) => row.forEach((s, si) => { NEXT[(ti * 4 + ei) * 11 + si] = s; })));

/** IPVS's event index from TCP flags, first match wins: RST 3, SYN 0, FIN 1, ACK 2; none → -1. */
export function tcpEvent(flags: number): number {
  if (flags & 0x04) return 3;
  if (flags & 0x02) return 0;
  if (flags & 0x01) return 1;
  if (flags & 0x10) return 2;
  return -1;
}

/** Next TCP state for a packet with `flags` on an entry in `state`, through table `table`. */
export function tcpNextState(table: number, state: number, flags: number): number {
  const ev = tcpEvent(flags);
  if (ev < 0) return S_CLOSE;
  return NEXT[(table * 4 + ev) * 11 + state];
}
