// The control thread's handle on the data plane: starts the worker, hands it the device
// queue and the shared memory, posts snapshots and waits until they are adopted (so a
// CLI command returns only once packets follow the new rules), and reads counters.
import { ConnTable } from "../conntrack/table.ts";
import { close } from "../io/libc.ts";
import { createEventFd, signalEventFd } from "../io/poller.ts";
import { allocCounters } from "../stats/counters.ts";
import { MAX_DEST } from "../stats/counters.ts";
import type { Snapshot } from "./snapshot.ts";
import { allocSchedulerState } from "../sched/shared.ts";
import type { WorkerInit, WorkerMessage } from "./worker.ts";

const ADOPT_TIMEOUT_MS = 5000;

/**
 * Where the worker entry lives. From source it sits beside this file. In the compiled
 * binary every module is one bundle at /$bunfs/root/<name> and scripts/build.ts embeds
 * the worker as a second entry point, which bun stores as /$bunfs/root/dataplane/worker.js
 * (its path under the entries' common root, src/).
 */
function workerEntry(): string {
  const here = import.meta.url;
  return here.includes("$bunfs") ? "/$bunfs/root/dataplane/worker.js" : new URL("./worker.ts", here).href;
}

/** One data-plane worker's handles. */
interface WorkerSlot {
  worker: Worker;
  wakeFd: number;
}

export class DataplaneHost {
  readonly table: ConnTable;
  /** One counter block per worker (summed by the readers); the first exists before start(). */
  readonly counterBlocks: Float64Array[] = [];
  private readonly counterSabs: SharedArrayBuffer[] = [];
  /** [0] newest generation posted; [1 + i] generation worker i runs on. */
  private ctl = new Int32Array(new SharedArrayBuffer(8));
  /** The lock workers take around each packet when they share the table (conntrack/lock.ts). */
  private readonly lock = new SharedArrayBuffer(8);
  /** rr/wrr positions shared by the workers (sched/shared.ts). */
  private readonly sched = allocSchedulerState();
  private workers: WorkerSlot[] = [];
  /** Adoption messages still awaited per generation (-1: stop). */
  private readonly waiters = new Map<number, { left: number; done: () => void }>();
  readonly clockBaseSec = Math.floor(Date.now() / 1000);

  constructor(connMax: number) {
    this.table = ConnTable.create(connMax, MAX_DEST);
    this.addCounterBlock();
  }

  private addCounterBlock(): SharedArrayBuffer {
    const sab = allocCounters();
    this.counterSabs.push(sab);
    this.counterBlocks.push(new Float64Array(sab));
    return sab;
  }

  /**
   * Starts one worker per TUN queue in `queues` (all of one device). Worker 0 also reads
   * the TAP, the raw ICMP sockets and the firewall-mark TUNs, and sweeps the table; with
   * more than one worker every packet is processed under the shared lock.
   */
  async start(queues: readonly number[], devName: string, offload: boolean, coalesce: boolean, snapshot: Snapshot, tap: WorkerInit["tap"], icmpFd = -1, icmp6Fd = -1, xdp: WorkerInit["xdp"] = null,
    bulkOffload: WorkerInit["bulkOffload"] = null): Promise<void> {
    const n = queues.length;
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * (1 + n)));
    while (this.counterBlocks.length < n) this.addCounterBlock();
    Atomics.store(this.ctl, 0, snapshot.gen);
    const done = this.waitFor(snapshot.gen, n);
    for (let i = 0; i < n; i++) {
      const wakeFd = createEventFd();
      const w = new Worker(workerEntry());
      this.workers.push({ worker: w, wakeFd });
      w.onmessage = (ev: MessageEvent<{ type: string; gen?: number }>) => {
        if (ev.data.type === "adopted" || ev.data.type === "stopped") this.arrived(ev.data.type === "stopped" ? -1 : (ev.data.gen as number));
      };
      w.onerror = (e) => console.error(`tslb: data-plane worker ${i} error: ${e.message}`);
      const first = i === 0;
      const init: WorkerMessage = {
        type: "init", index: i, workers: n, fd: queues[i], devName, offload, coalesce, wakeFd, table: this.table.shared,
        counters: this.counterSabs[i], ctl: this.ctl.buffer as SharedArrayBuffer, lock: this.lock, sched: this.sched,
        clockBaseSec: this.clockBaseSec, snapshot, tap: first ? tap : null, icmpFd: first ? icmpFd : -1, icmp6Fd: first ? icmp6Fd : -1,
        xdp: first ? xdp : null, bulkOffload,
      };
      w.postMessage(init);
    }
    await done;
  }

  /** Posts a snapshot to every worker and resolves once all of them run on it. */
  async post(snapshot: Snapshot): Promise<void> {
    if (this.workers.length === 0) return;
    const done = this.waitFor(snapshot.gen, this.workers.length);
    Atomics.store(this.ctl, 0, snapshot.gen);
    for (const w of this.workers) {
      w.worker.postMessage({ type: "snapshot", snapshot } satisfies WorkerMessage);
      signalEventFd(w.wakeFd);
    }
    await done;
  }

  async stop(): Promise<void> {
    if (this.workers.length === 0) return;
    const done = this.waitFor(-1, this.workers.length);
    for (const w of this.workers) {
      w.worker.postMessage({ type: "stop" } satisfies WorkerMessage);
      signalEventFd(w.wakeFd);
    }
    await Promise.race([done.catch(() => undefined), Bun.sleep(1500)]);
    for (const w of this.workers) {
      w.worker.terminate();
      close(w.wakeFd);
    }
    this.workers = [];
  }

  private arrived(key: number): void {
    const w = this.waiters.get(key);
    if (!w || --w.left > 0) return;
    this.waiters.delete(key);
    w.done();
  }

  private waitFor(key: number, count: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`data plane did not adopt generation ${key} within ${ADOPT_TIMEOUT_MS} ms`));
      }, ADOPT_TIMEOUT_MS);
      this.waiters.set(key, { left: count, done: () => { clearTimeout(t); resolve(); } });
    });
  }
}
