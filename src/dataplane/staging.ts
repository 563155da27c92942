// The per-flow staging slots both write-side joiners keep (UDP coalescing, TCP joining):
// which slots are taken, how many packets each holds, and which one gives way when all
// are taken. What a slot holds and how it is written out is the subclass's.
// Allocation-free after construction.
export abstract class StagingSlots {
  /** Per slot: packets staged (0 = free). */
  protected readonly count: Int32Array;
  /** Slots in use (flush() is a no-op at 0). */
  pending = 0;
  private victim = 0;

  constructor(private readonly slots: number) {
    this.count = new Int32Array(slots);
  }

  /** Writes slot s out; it calls release(s). */
  protected abstract write(s: number): void;

  /** Writes everything staged. */
  flush(): void {
    if (this.pending === 0) return;
    for (let s = 0; s < this.slots; s++) if (this.count[s] !== 0) this.write(s);
  }

  /** A free slot, or, all being taken, the next one in turn, written out first. Its count is 0. */
  protected claim(): number {
    let s = 0;
    while (s < this.slots && this.count[s] !== 0) s++;
    if (s === this.slots) {
      s = this.victim;
      this.victim = (this.victim + 1) % this.slots;
      this.write(s);
    }
    return s;
  }

  /** Slot s now holds its first packet. */
  protected take(s: number): void {
    this.count[s] = 1;
    this.pending++;
  }

  /** Slot s is free again (written out, or its packet dropped). */
  protected release(s: number): void {
    this.count[s] = 0;
    this.pending--;
  }
}
