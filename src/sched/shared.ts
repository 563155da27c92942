// Scheduler state that several data-plane workers share: with --workers > 1 the rr cursor
// and the wrr cursor and current weight live in shared memory, one slot per service id,
// so the service still walks its list as IPVS's one scheduler would (the workers take the
// packet lock around scheduling; dataplane/lock.ts). With one worker (and in tests and
// benches) nothing is shared and each scheduler keeps a private slot.
//
// Slot words: [0] generation of the snapshot whose rebuild last wrote the slot (the first
// worker to adopt a snapshot rebuilds, the others find the slot current), [1] cursor,
// [2] wrr current weight, [3] spare.
import { MAX_SVC } from "../stats/counters.ts";

export const SLOT_WORDS = 4;
export const SLOT_GEN = 0;
export const SLOT_CURSOR = 1;
export const SLOT_CW = 2;

let shared: Int32Array | null = null;

/** Memory for every service's slot (the host allocates it once, workers attach). */
export function allocSchedulerState(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAX_SVC * SLOT_WORDS * 4);
}

/** Called by each worker at start: `sab` when the workers share schedulers, null otherwise. */
export function shareSchedulerState(sab: SharedArrayBuffer | null): void {
  shared = sab === null ? null : new Int32Array(sab);
}

/**
 * Where a scheduler of service `svcId` keeps its position: the shared slot, or its own
 * private one. Returns the array and the slot's first index.
 */
export function schedulerSlot(svcId: number, own: Int32Array): [Int32Array, number] {
  return shared !== null && svcId >= 0 && svcId < MAX_SVC ? [shared, svcId * SLOT_WORDS] : [own, 0];
}
