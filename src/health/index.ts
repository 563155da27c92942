// The health checkers: one line each, the only registration point (STYLE §2.1.4).
import type { Checker } from "./checker.ts";
import { httpChecker } from "./http.ts";
import { tcpChecker } from "./tcp.ts";
import { udpChecker } from "./udp.ts";

export const CHECKERS: Readonly<Record<Checker["kind"], Checker>> = { tcp: tcpChecker, http: httpChecker, udp: udpChecker };
