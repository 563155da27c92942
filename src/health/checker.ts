// The health-check plug-in contract (seesaw's Checker, made async): one probe of one
// target, bounded by a timeout and an AbortSignal, that always resolves (never rejects)
// with a result. Checkers keep no state between probes; rise/fall, scheduling and
// transitions belong to the monitor (health/monitor.ts). Control thread only.

/** Where a probe goes. `addr` is canonical text; `port` is final (the check's or the destination's). */
export interface CheckTarget {
  af: 4 | 6;
  addr: string;
  port: number;
  /** http: request path and the status that passes (0 = any 2xx or 3xx). */
  path: string;
  status: number;
  /** Local port to bind (the --check-via-vip policy rule matches it); 0 = any. */
  localPort: number;
}

export interface CheckResult {
  ok: boolean;
  /** Time the probe took, milliseconds. */
  ms: number;
  /** What happened, for logs and `-L --health`: "connected", "HTTP 200", "ECONNREFUSED", ... */
  detail: string;
}

export interface Checker {
  readonly kind: "tcp" | "http" | "udp";
  /** One probe. Resolves within about timeoutMs, or soon after `signal` aborts; never rejects. */
  check(target: CheckTarget, timeoutMs: number, signal: AbortSignal): Promise<CheckResult>;
}

/** "host:port" with IPv6 in brackets, for messages and the HTTP Host header. */
export function hostPort(t: { af: 4 | 6; addr: string; port: number }): string {
  return t.af === 6 ? `[${t.addr}]:${t.port}` : `${t.addr}:${t.port}`;
}

/** An error's code (ECONNREFUSED, EHOSTUNREACH ...) or its message. */
export function errorText(e: unknown): string {
  const x = e as { code?: unknown; message?: unknown } | null;
  if (x && typeof x.code === "string" && x.code !== "") return x.code;
  if (x && typeof x.message === "string" && x.message !== "") return x.message;
  return String(e);
}

/**
 * Runs one probe body with the timeout and the abort signal wired in. The body gets
 * `finish(ok, detail)` (the first call wins) and `settled()`, and returns a cleanup
 * that runs once, after the result is decided; resources that appear later (an async
 * connect) must check `settled()` and close themselves. On timeout the result is
 * `onTimeout` (a failure for TCP and HTTP; UDP's silence is a success).
 */
export function runProbe(
  timeoutMs: number, signal: AbortSignal, onTimeout: { ok: boolean; detail: string },
  body: (finish: (ok: boolean, detail: string) => void, settled: () => boolean) => () => void,
): Promise<CheckResult> {
  const t0 = performance.now();
  return new Promise<CheckResult>((resolve) => {
    let done = false;
    let cleanup: (() => void) | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const onAbort = () => finish(false, "aborted");
    function finish(ok: boolean, detail: string): void {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve({ ok, ms: Math.round(performance.now() - t0), detail });
      // cleanup is null when the body finished synchronously; it is run below then.
      if (cleanup) runCleanup(cleanup);
    }
    if (signal.aborted) return finish(false, "aborted");
    signal.addEventListener("abort", onAbort);
    timer = setTimeout(() => finish(onTimeout.ok, onTimeout.detail), timeoutMs);
    try {
      cleanup = body(finish, () => done);
    } catch (e) {
      cleanup = () => {};
      finish(false, errorText(e));
    }
    if (done) runCleanup(cleanup);
  });
}

function runCleanup(f: () => void): void {
  try { f(); } catch { /* closing a socket that already failed */ }
}
