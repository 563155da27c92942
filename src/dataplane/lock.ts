// The mutex data-plane workers take around each packet when several of them share the
// connection table, the destination counts and the schedulers' shared state. A futex-style
// lock on one shared int32 (0 free, 1 held, 2 held with a sleeper), as in Drepper's
// "Futexes Are Tricky": a short spin first, because the critical section is a fraction of
// a microsecond (the pipeline, never a system call), then Atomics.wait.
// With one worker nothing takes it (see worker.ts).

/** Spins before sleeping: a holder is normally out within ~0.2–1 µs. */
const SPINS = 200;

export class PacketLock {
  private readonly a: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    this.a = new Int32Array(sab, 0, 1);
  }

  lock(): void {
    const a = this.a;
    if (Atomics.compareExchange(a, 0, 0, 1) === 0) return;
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(a, 0) === 0 && Atomics.compareExchange(a, 0, 0, 1) === 0) return;
    }
    // Mark it contended; whoever unlocks then wakes one sleeper.
    while (Atomics.exchange(a, 0, 2) !== 0) Atomics.wait(a, 0, 2, 5);
  }

  unlock(): void {
    if (Atomics.exchange(this.a, 0, 0) === 2) Atomics.notify(this.a, 0, 1);
  }
}
