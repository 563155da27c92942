// Poller over eventfds (no network involved): timeout, wake-up by signal, drain, a wake-up
// from another thread, and no allocation in wait().
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { heapStats } from "bun:jsc";
import { join } from "node:path";
import { Poller, createEventFd, drainEventFd, signalEventFd } from "../../src/io/poller.ts";
import { close } from "../../src/io/libc.ts";

const poller = suite("poller");

poller("wait() returns 0 on timeout and 1 after a signal", () => {
  const fd = createEventFd();
  try {
    const p = new Poller([fd]);
    assert.is(p.wait(0), 0);
    const t0 = performance.now();
    assert.is(p.wait(30), 0);
    assert.ok(performance.now() - t0 >= 25, "waited for the timeout");
    assert.is(p.readable(0), false);
    assert.is(signalEventFd(fd), 0);
    assert.is(signalEventFd(fd), 0);
    assert.is(p.wait(1000), 1);
    assert.is(p.readable(0), true);
    assert.is(drainEventFd(fd), 2, "two signals pending");
    assert.is(drainEventFd(fd), 0, "nothing left");
    assert.is(p.wait(0), 0);
  } finally {
    close(fd);
  }
});

poller("readable(i) tells which fd is ready", () => {
  const a = createEventFd();
  const b = createEventFd();
  try {
    const p = new Poller([a, b]);
    signalEventFd(b);
    assert.is(p.wait(100), 1);
    assert.is(p.readable(0), false);
    assert.is(p.readable(1), true);
  } finally {
    close(a);
    close(b);
  }
});

poller("a signal from another thread wakes a blocked wait()", async () => {
  const fd = createEventFd();
  const w = new Worker(join(import.meta.dir, "../helpers/io_eventfd_worker.ts"));
  try {
    const msgs: unknown[] = [];
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    w.onmessage = (ev) => (ev.data === "ready" ? ready() : msgs.push(ev.data));
    await isReady;
    const p = new Poller([fd]);
    w.postMessage({ fd, delayMs: 50 });
    const t0 = performance.now();
    assert.is(p.wait(5000), 1);
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `woken after ${ms.toFixed(0)} ms`);
    assert.is(drainEventFd(fd), 1);
  } finally {
    w.terminate();
    close(fd);
  }
});

poller("wait() and readable() allocate nothing", () => {
  const fd = createEventFd();
  try {
    const p = new Poller([fd]);
    for (let i = 0; i < 1000; i++) p.wait(0);
    Bun.gc(true);
    const before = heapStats().objectCount;
    let n = 0;
    for (let i = 0; i < 100_000; i++) n += p.wait(0) + (p.readable(0) ? 1 : 0);
    const delta = heapStats().objectCount - before;
    assert.is(n, 0);
    assert.ok(delta <= 8, `allocated ${delta} objects in 100k calls`);
  } finally {
    close(fd);
  }
});

poller.run();
