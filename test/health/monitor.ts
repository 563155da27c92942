// The health monitor: the rise/fall state machine alone (pure), then the loop with fake
// checkers (health/checker.ts contract, seesaw's dummy checker idea): staggered starts,
// fixed-rate probes that never overlap, notifications only on transitions and batched,
// and sync() keeping or resetting state as the rules change.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { CheckResult, CheckTarget, Checker } from "../../src/health/checker.ts";
import { type HealthStatus, Monitor, type Transition, type WatchSpec, isAvailable, step } from "../../src/health/monitor.ts";

const OK: CheckResult = { ok: true, ms: 1, detail: "connected" };
const BAD: CheckResult = { ok: false, ms: 1, detail: "ECONNREFUSED" };
const fresh = (): HealthStatus => ({ kind: "tcp", state: "unknown", last: null, lastCheckMs: 0, changedMs: 0, successes: 0, failures: 0, transitions: 0 });

// ---
const sm = suite("step: rise and fall");

sm("unknown -> up on the first success; up -> down after fall failures; down -> up after rise successes", () => {
  const st = fresh();
  let clock = 1000;
  const seq = (rs: CheckResult[]) => rs.map((r) => step(st, r, 2, 3, clock++));
  assert.equal(seq([OK]), ["up"]);
  assert.equal(seq([BAD, BAD, OK, BAD, BAD]), ["up", "up", "up", "up", "up"], "a success in between resets the count");
  assert.equal(seq([BAD]), ["down"]);
  assert.is(st.changedMs, 1006);
  assert.equal(seq([OK, BAD, OK]), ["down", "down", "down"], "rise needs consecutive successes");
  assert.equal(seq([OK]), ["up"]);
  assert.is(st.transitions, 3);
  assert.equal(st.last, OK);
  assert.is(st.lastCheckMs, 1010);
});

sm("unknown -> down after fall failures (a dead server at start); fall 1 and rise 1 flip at once", () => {
  const st = fresh();
  assert.equal([BAD, BAD, BAD].map((r) => step(st, r, 2, 3, 0)), ["unknown", "unknown", "down"]);
  const quick = fresh();
  assert.equal([OK, BAD, OK, BAD].map((r) => step(quick, r, 1, 1, 0)), ["up", "down", "up", "down"]);
});

sm("only down is unavailable", () => {
  assert.equal(["unknown", "up", "down"].map((s) => isAvailable(s as HealthStatus["state"])), [true, true, false]);
});

sm.run();

// ---
/** A checker whose results a test scripts per target address; it records every probe. */
class FakeChecker implements Checker {
  readonly kind = "tcp" as const;
  results = new Map<string, boolean>();
  probes: { addr: string; at: number; timeoutMs: number }[] = [];
  inFlight = new Map<string, number>();
  maxInFlight = 0;
  delayMs = 0;
  async check(t: CheckTarget, timeoutMs: number, signal: AbortSignal): Promise<CheckResult> {
    this.probes.push({ addr: t.addr, at: performance.now(), timeoutMs });
    const n = (this.inFlight.get(t.addr) ?? 0) + 1;
    this.inFlight.set(t.addr, n);
    this.maxInFlight = Math.max(this.maxInFlight, n);
    if (this.delayMs) await new Promise((r) => { const tm = setTimeout(r, this.delayMs); signal.addEventListener("abort", () => { clearTimeout(tm); r(null); }); });
    this.inFlight.set(t.addr, this.inFlight.get(t.addr)! - 1);
    if (signal.aborted) return { ok: false, ms: 0, detail: "aborted" };
    return this.results.get(t.addr) ?? true ? OK : BAD;
  }
}

const spec = (addr: string, o: Partial<WatchSpec["settings"]> = {}, key = addr): WatchSpec => ({
  key, label: addr, target: { af: 4, addr, port: 80, path: "/", status: 0, localPort: 0 },
  settings: { kind: "tcp", intervalMs: 40, timeoutMs: 20, rise: 2, fall: 2, ...o },
});

const loop = suite("Monitor loop");

loop("first probes are staggered over one interval; then one per interval per target", async () => {
  const fake = new FakeChecker();
  const fractions = [0, 0.25, 0.5, 0.75];
  let k = 0;
  const m = new Monitor({ tcp: fake }, { notify: () => {}, random: () => fractions[k++] });
  const t0 = performance.now();
  m.sync(["a", "b", "c", "d"].map((a) => spec(a, { intervalMs: 400 })));
  await Bun.sleep(390);
  const first = fake.probes.map((p) => Math.round((p.at - t0) / 100));
  assert.equal(fake.probes.map((p) => p.addr), ["a", "b", "c", "d"]);
  assert.equal(first, [0, 1, 2, 3], "a quarter interval apart");
  await Bun.sleep(800);
  m.stop();
  const perTarget = ["a", "b", "c", "d"].map((a) => fake.probes.filter((p) => p.addr === a).length);
  assert.ok(perTarget.every((n) => n === 3 || n === 4), `${perTarget}`);
});

loop("only transitions are notified, batched; unknown -> up does not change availability", async () => {
  const fake = new FakeChecker();
  const batches: Transition[][] = [];
  const m = new Monitor({ tcp: fake }, { notify: (b) => batches.push(b), random: () => 0 });
  m.sync([spec("a"), spec("b")]);
  await Bun.sleep(100);
  assert.equal(batches.flat().map((t) => [t.key, t.from, t.to, t.availabilityChanged]).sort(), [["a", "unknown", "up", false], ["b", "unknown", "up", false]]);
  assert.is(batches.length, 1, "both first results in one batch");
  fake.results.set("a", false);
  fake.results.set("b", false);
  await Bun.sleep(150);
  const downs = batches.flat().filter((t) => t.to === "down").sort((x, y) => x.key.localeCompare(y.key));
  assert.equal(downs.map((t) => [t.key, t.from, t.availabilityChanged, t.result.detail]), [["a", "up", true, "ECONNREFUSED"], ["b", "up", true, "ECONNREFUSED"]]);
  assert.equal([...m.down()].sort(), ["a", "b"]);
  const n = batches.flat().length;
  await Bun.sleep(120);
  assert.is(batches.flat().length, n, "no news while nothing changes");
  fake.results.set("a", true);
  await Bun.sleep(150);
  assert.equal(batches.flat().slice(n).map((t) => [t.key, t.from, t.to]), [["a", "down", "up"]]);
  assert.equal([...m.down()], ["b"]);
  assert.equal(m.status("a")!.state, "up");
  m.stop();
});

loop("a slow probe never overlaps the next one of the same target", async () => {
  const fake = new FakeChecker();
  fake.delayMs = 70;
  const m = new Monitor({ tcp: fake }, { notify: () => {}, random: () => 0 });
  m.sync([spec("a", { intervalMs: 30, timeoutMs: 100 })]);
  await Bun.sleep(300);
  m.stop();
  assert.is(fake.maxInFlight, 1);
  const n = fake.probes.length;
  assert.ok(n >= 3 && n <= 5, `${n} probes of 70 ms in 300 ms`);
});

loop("sync: new timings keep the state; a changed probe starts over at unknown; removed targets stop (their probe aborted)", async () => {
  const fake = new FakeChecker();
  fake.results.set("a", false);
  const m = new Monitor({ tcp: fake }, { notify: () => {}, random: () => 0 });
  m.sync([spec("a")]);
  await Bun.sleep(120);
  assert.is(m.status("a")!.state, "down");
  m.sync([spec("a", { intervalMs: 50, rise: 5 })]);
  assert.is(m.status("a")!.state, "down", "same probe, new timings: still down");
  m.sync([{ ...spec("a"), target: { ...spec("a").target, port: 81 } }]);
  assert.is(m.status("a")!.state, "unknown", "another port: a new check");
  fake.delayMs = 1000;
  await Bun.sleep(20);
  const before = fake.probes.length;
  m.sync([]);
  assert.is(m.status("a"), undefined);
  await Bun.sleep(100);
  assert.is(fake.probes.length, before, "no probe after removal");
  assert.is(fake.inFlight.get("a"), 0, "the running probe was aborted");
  m.stop();
});

loop.run();
