// The health monitor (seesaw's healthcheck contract): one check loop per target, each
// with its interval, timeout and rise/fall counts; loops start staggered over the first
// interval so a thousand targets never probe at once; a probe never overlaps the next
// one of the same target; and the owner hears only of transitions, batched. Health
// changes availability, never configuration: the owner recompiles the data plane with
// the target marked unavailable and leaves the rules (and -S) alone. Control thread only;
// probes are async sockets and never block anything.
//
// States: unknown → up on the first success, unknown/up → down after `fall` consecutive
// failures, down → up after `rise` consecutive successes. unknown counts as available,
// so a new destination takes traffic at once, as in keepalived and HAProxy, and a failed
// one needs `fall` failures (at most fall × interval) to be taken out.
import type { CheckResult, CheckTarget, Checker } from "./checker.ts";

export type HealthState = "unknown" | "up" | "down";

export interface CheckSettings {
  kind: Checker["kind"];
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

/** One target to watch. `key` is the owner's identity of the target (a destination). */
export interface WatchSpec {
  key: string;
  /** For logs: "198.18.1.11:8080 of TCP 198.18.0.100:80". */
  label: string;
  target: CheckTarget;
  settings: CheckSettings;
}

export interface HealthStatus {
  kind: Checker["kind"];
  state: HealthState;
  /** The last probe's result, null before the first one ends. */
  last: CheckResult | null;
  /** Epoch ms of the last probe's end (0: none yet) and of the last state change (start of watching at first). */
  lastCheckMs: number;
  changedMs: number;
  /** Consecutive successes / failures so far. */
  successes: number;
  failures: number;
  transitions: number;
}

export interface Transition {
  key: string;
  label: string;
  from: HealthState;
  to: HealthState;
  result: CheckResult;
  /** Whether availability changed (unknown → up does not). */
  availabilityChanged: boolean;
}

/** Availability as the data plane sees it: anything but down takes connections. */
export const isAvailable = (s: HealthState): boolean => s !== "down";

/**
 * The state machine alone (pure, no timers): the status after one more result. Returns
 * the new state; the caller compares it with the old one.
 */
export function step(st: HealthStatus, r: CheckResult, rise: number, fall: number, nowMs: number): HealthState {
  st.last = r;
  st.lastCheckMs = nowMs;
  if (r.ok) { st.successes++; st.failures = 0; } else { st.failures++; st.successes = 0; }
  const from = st.state;
  let to = from;
  if (r.ok && (from === "unknown" || (from === "down" && st.successes >= rise))) to = "up";
  if (!r.ok && from !== "down" && st.failures >= fall) to = "down";
  if (to !== from) { st.state = to; st.changedMs = nowMs; st.transitions++; }
  return to;
}

/** What a check really probes: when this changes, the state starts over at unknown. */
function probeIdentity(w: WatchSpec): string {
  const t = w.target;
  return `${w.settings.kind}|${t.af}|${t.addr}|${t.port}|${t.path}|${t.status}|${t.localPort}`;
}

interface Watch {
  spec: WatchSpec;
  identity: string;
  status: HealthStatus;
  timer: ReturnType<typeof setTimeout> | null;
  abort: AbortController | null;
  stopped: boolean;
}

export interface MonitorOptions {
  /** Called with the transitions of one batch, after the probes that caused them. */
  notify: (changes: Transition[]) => void;
  /** Stagger fraction in [0, 1) for a new target's first probe; default Math.random. */
  random?: () => number;
  now?: () => number;
}

export class Monitor {
  private readonly watches = new Map<string, Watch>();
  private pending: Transition[] = [];
  private flushScheduled = false;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly checkers: Readonly<Record<string, Checker>>, private readonly opts: MonitorOptions) {
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Watches exactly `specs`: new keys start (staggered), missing keys stop, a key whose
   * probe changed starts over at unknown, and a key whose timings changed keeps its state
   * and uses them from its next probe on.
   */
  sync(specs: readonly WatchSpec[]): void {
    const want = new Map(specs.map((s) => [s.key, s]));
    for (const [k, w] of this.watches) if (!want.has(k)) this.stopWatch(w, k);
    for (const spec of specs) {
      const w = this.watches.get(spec.key);
      const identity = probeIdentity(spec);
      if (w && w.identity === identity) { w.spec = spec; continue; }
      if (w) this.stopWatch(w, spec.key);
      this.startWatch(spec, identity);
    }
  }

  status(key: string): HealthStatus | undefined {
    return this.watches.get(key)?.status;
  }

  /** Keys currently down. */
  down(): Set<string> {
    const out = new Set<string>();
    for (const [k, w] of this.watches) if (w.status.state === "down") out.add(k);
    return out;
  }

  stop(): void {
    for (const [k, w] of this.watches) this.stopWatch(w, k);
  }

  private startWatch(spec: WatchSpec, identity: string): void {
    const w: Watch = {
      spec, identity, timer: null, abort: null, stopped: false,
      status: {
        kind: spec.settings.kind, state: "unknown", last: null, lastCheckMs: 0, changedMs: this.now(),
        successes: 0, failures: 0, transitions: 0,
      },
    };
    this.watches.set(spec.key, w);
    const first = Math.floor(this.random() * spec.settings.intervalMs);
    w.timer = setTimeout(() => void this.run(w), first);
  }

  private stopWatch(w: Watch, key: string): void {
    w.stopped = true;
    if (w.timer) clearTimeout(w.timer);
    w.abort?.abort();
    if (this.watches.get(key) === w) this.watches.delete(key);
  }

  private async run(w: Watch): Promise<void> {
    w.timer = null;
    if (w.stopped) return;
    const startMs = this.now();
    const s = w.spec.settings;
    const checker = this.checkers[s.kind];
    w.abort = new AbortController();
    const r = await checker.check(w.spec.target, s.timeoutMs, w.abort.signal);
    w.abort = null;
    if (w.stopped) return;
    const from = w.status.state;
    const to = step(w.status, r, s.rise, s.fall, this.now());
    if (to !== from) {
      this.pending.push({ key: w.spec.key, label: w.spec.label, from, to, result: r, availabilityChanged: isAvailable(from) !== isAvailable(to) });
      this.scheduleFlush();
    }
    // Fixed rate (probe starts one interval apart) unless a probe outlasts the interval.
    const next = Math.max(0, startMs + w.spec.settings.intervalMs - this.now());
    w.timer = setTimeout(() => void this.run(w), next);
  }

  /** Transitions of probes that end in the same turn of the event loop go out together. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setTimeout(() => {
      this.flushScheduled = false;
      const batch = this.pending;
      this.pending = [];
      if (batch.length > 0) this.opts.notify(batch);
    }, 0);
  }
}
