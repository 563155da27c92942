// HTTP health check: `GET path HTTP/1.0` with `Connection: close` over a plain TCP socket
// (no fetch: no connection pool to hide a dead server, no HTTP_PROXY from the
// environment). The status line decides: the configured status, or any 2xx/3xx (as
// HAProxy and keepalived's HTTP_GET do). The body is not read.
import { type CheckResult, type CheckTarget, type Checker, errorText, hostPort, runProbe } from "./checker.ts";
import { closeProbe, openTcp } from "./tcp.ts";

/** Longest status line read before giving up on the answer. */
const MAX_STATUS_LINE = 1024;

/** The status code of an HTTP status line, or -1. */
export function parseStatusLine(line: string): number {
  const m = /^HTTP\/\d(?:\.\d)? (\d{3})(?: |$)/.exec(line);
  return m ? Number(m[1]) : -1;
}

/** Whether `code` passes a check that wants `want` (0 = any 2xx or 3xx). */
export function statusPasses(code: number, want: number): boolean {
  return want === 0 ? code >= 200 && code < 400 : code === want;
}

export const httpChecker: Checker = {
  kind: "http",
  check(t: CheckTarget, timeoutMs: number, signal: AbortSignal): Promise<CheckResult> {
    return runProbe(timeoutMs, signal, { ok: false, detail: `timeout after ${timeoutMs} ms` }, (finish) => {
      const s = openTcp(t);
      let head = "";
      s.on("connect", () => {
        s.write(`GET ${t.path} HTTP/1.0\r\nHost: ${hostPort(t)}\r\nUser-Agent: tslb-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n`);
      });
      s.on("data", (chunk: Buffer) => {
        head += chunk.toString("latin1");
        const eol = head.indexOf("\r\n");
        if (eol < 0 && head.length < MAX_STATUS_LINE) return;
        const line = eol < 0 ? head : head.slice(0, eol);
        const code = parseStatusLine(line);
        if (code < 0) return finish(false, "not an HTTP answer");
        const want = t.status === 0 ? "2xx/3xx" : String(t.status);
        finish(statusPasses(code, t.status), statusPasses(code, t.status) ? `HTTP ${code}` : `HTTP ${code} (want ${want})`);
      });
      s.on("error", (e) => finish(false, errorText(e)));
      s.on("close", () => finish(false, head === "" ? "closed without an answer" : "not an HTTP answer"));
      return () => closeProbe(s, t);
    });
  },
};
