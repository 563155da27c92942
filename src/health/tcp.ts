// TCP health check: a connect that completes within the timeout passes; the connection
// is closed at once, no data sent. A refused connect (RST) fails at once, silence at the
// timeout. Probes bound to a fixed local port (--check-via-vip) close with RST so that
// no TIME_WAIT entry blocks the next probe from the same port.
import { connect, type Socket } from "node:net";
import { type CheckResult, type CheckTarget, type Checker, errorText, runProbe } from "./checker.ts";

/** A TCP connection to the target (bound to t.localPort when set). */
export function openTcp(t: CheckTarget): Socket {
  return connect({ host: t.addr, port: t.port, family: t.af, ...(t.localPort ? { localPort: t.localPort } : {}) });
}

/** Closes a probe's socket: RST for fixed-port probes, FIN otherwise. */
export function closeProbe(s: Socket, t: CheckTarget): void {
  if (t.localPort && !s.destroyed && s.readyState === "open") s.resetAndDestroy();
  else s.destroy();
}

export const tcpChecker: Checker = {
  kind: "tcp",
  check(t: CheckTarget, timeoutMs: number, signal: AbortSignal): Promise<CheckResult> {
    return runProbe(timeoutMs, signal, { ok: false, detail: `timeout after ${timeoutMs} ms` }, (finish) => {
      const s = openTcp(t);
      s.on("connect", () => finish(true, "connected"));
      s.on("error", (e) => finish(false, errorText(e)));
      s.on("close", () => finish(false, "closed"));
      return () => closeProbe(s, t);
    });
  },
};
