// UDP health check. UDP has no handshake, so this is the most a generic probe can learn:
// one datagram goes to the target from a connected socket; an ICMP port-unreachable
// (ECONNREFUSED on that socket) or another socket error fails the check, and a reply OR
// silence until the timeout passes it. It therefore catches a stopped server process on
// a live host, not a dead host (no ICMP comes back from one) or a hung process: use a
// TCP or HTTP check on a companion port for those. A passing probe without a reply takes
// the whole timeout.
import type { udp } from "bun";
import { type CheckResult, type CheckTarget, type Checker, errorText, runProbe } from "./checker.ts";

/** The probe datagram. */
export const UDP_PROBE = "tslb health check\n";

export const udpChecker: Checker = {
  kind: "udp",
  check(t: CheckTarget, timeoutMs: number, signal: AbortSignal): Promise<CheckResult> {
    return runProbe(timeoutMs, signal, { ok: true, detail: "no reply, no ICMP error" }, (finish, settled) => {
      let sock: udp.ConnectedSocket<"buffer"> | null = null;
      Bun.udpSocket({
        ...(t.localPort ? { port: t.localPort } : {}),
        connect: { hostname: t.addr, port: t.port },
        socket: {
          data() { finish(true, "reply"); },
          // Bun 1.4 calls this with the error alone (its types say (socket, error)).
          error(a: unknown, b?: unknown) { finish(false, errorText(b ?? a)); },
        },
      } as Parameters<typeof Bun.udpSocket>[0]).then((s) => {
        sock = s as udp.ConnectedSocket<"buffer">;
        if (settled()) return s.close();
        sock.send(UDP_PROBE);
      }, (e) => finish(false, errorText(e)));
      return () => sock?.close();
    });
  },
};
