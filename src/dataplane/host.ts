// The control thread's handle on the data plane: starts the worker, hands it the device
// queue and the shared memory, posts snapshots and waits until they are adopted (so a
// CLI command returns only once packets follow the new rules), and reads counters.
import { ConnTable } from "../conntrack/table.ts";
import { createEventFd, signalEventFd } from "../io/poller.ts";
import { allocCounters } from "../stats/counters.ts";
import { MAX_DEST } from "../stats/counters.ts";
import type { Snapshot } from "./snapshot.ts";
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

export class DataplaneHost {
  readonly table: ConnTable;
  readonly counterBlocks: Float64Array[] = [];
  private readonly counterSab: SharedArrayBuffer;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(8));
  private worker: Worker | null = null;
  private wakeFd = -1;
  private readonly waiters = new Map<number, () => void>();
  readonly clockBaseSec = Math.floor(Date.now() / 1000);

  constructor(connMax: number) {
    this.table = ConnTable.create(connMax, MAX_DEST);
    this.counterSab = allocCounters();
    this.counterBlocks.push(new Float64Array(this.counterSab));
  }

  async start(fd: number, devName: string, snapshot: Snapshot, tap: WorkerInit["tap"], icmpFd = -1, icmp6Fd = -1): Promise<void> {
    this.wakeFd = createEventFd();
    const w = new Worker(workerEntry());
    this.worker = w;
    w.onmessage = (ev: MessageEvent<{ type: string; gen?: number }>) => {
      if (ev.data.type === "adopted" || ev.data.type === "stopped") {
        const key = ev.data.type === "stopped" ? -1 : (ev.data.gen as number);
        this.waiters.get(key)?.();
        this.waiters.delete(key);
      }
    };
    w.onerror = (e) => console.error(`tslb: data-plane worker error: ${e.message}`);
    const init: WorkerMessage = {
      type: "init", fd, devName, wakeFd: this.wakeFd, table: this.table.shared, counters: this.counterSab,
      ctl: this.ctl.buffer as SharedArrayBuffer, clockBaseSec: this.clockBaseSec, snapshot, tap, icmpFd, icmp6Fd,
    };
    Atomics.store(this.ctl, 0, snapshot.gen);
    const done = this.waitFor(snapshot.gen);
    w.postMessage(init);
    await done;
  }

  /** Posts a snapshot and resolves once the worker runs on it. */
  async post(snapshot: Snapshot): Promise<void> {
    if (!this.worker) return;
    const done = this.waitFor(snapshot.gen);
    Atomics.store(this.ctl, 0, snapshot.gen);
    this.worker.postMessage({ type: "snapshot", snapshot } satisfies WorkerMessage);
    signalEventFd(this.wakeFd);
    await done;
  }

  async stop(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    const done = this.waitFor(-1);
    w.postMessage({ type: "stop" } satisfies WorkerMessage);
    signalEventFd(this.wakeFd);
    await Promise.race([done, Bun.sleep(1500)]);
    w.terminate();
    this.worker = null;
  }

  private waitFor(key: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`data plane did not adopt generation ${key} within ${ADOPT_TIMEOUT_MS} ms`));
      }, ADOPT_TIMEOUT_MS);
      this.waiters.set(key, () => { clearTimeout(t); resolve(); });
    });
  }
}
