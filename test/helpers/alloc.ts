// The allocation check of the hot-path tests: run `loop` to warm up, then many more times,
// and report how far the heap grew (a path that allocates nothing stays flat).
import * as assert from "uvu/assert";
import { heapStats } from "bun:jsc";

/** Asserts that `loop(n)` (n iterations of the path under test) leaves the heap flat. */
export function assertNoHeapGrowth(loop: (n: number) => void, warm = 20_000, measured = 200_000): void {
  loop(warm);
  Bun.gc(true);
  const before = heapStats().heapSize;
  loop(measured);
  Bun.gc(true);
  const grew = heapStats().heapSize - before;
  assert.ok(grew < 256 * 1024, `heap grew ${grew} bytes`);
}
