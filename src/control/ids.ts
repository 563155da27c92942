// Stable numeric ids for services and destinations: the data plane's slot numbers for
// counters and connection entries. 0 is never handed out ("unset"). An id stays with its
// service/destination while the rules hold it; a freed destination id is reused only
// once no connection entry counts against it any more, so a new destination never
// inherits an old one's ActiveConn/InActConn.
import { MAX_DEST, MAX_SVC } from "../stats/counters.ts";
import { ENOMEM_ERROR } from "./errors.ts";
import { dottedQuad } from "./dotted_quad.ts";
import { destKeyText, type RuleSet, serviceKeyText } from "./model.ts";

/** Ids 1..max-1, handed out round-robin among those free and reusable. */
export class IdPool {
  /** 1 for every id held (a Set rebuilt per new id made a restore of 100 000 destinations quadratic). */
  private readonly taken: Uint8Array;
  private next = 1;
  constructor(private readonly max: number, private readonly reusable: (id: number) => boolean) {
    this.taken = new Uint8Array(max);
  }

  /** A free id; `fresh` is told about it (counter zero points). Throws ENOMEM when none is left. */
  take(fresh: (id: number) => void): number {
    for (let n = 0; n < this.max; n++) {
      const id = this.next;
      this.next = this.next + 1 >= this.max ? 1 : this.next + 1;
      if (this.taken[id] === 0 && this.reusable(id)) {
        this.taken[id] = 1;
        fresh(id);
        return id;
      }
    }
    throw ENOMEM_ERROR();
  }

  release(id: number): void {
    this.taken[id] = 0;
  }

  /** Takes `id` back for its old owner (undoing a release). */
  hold(id: number): void {
    this.taken[id] = 1;
  }
}

export class IdAllocator {
  private readonly byKey = new Map<string, number>();
  private readonly pool: IdPool;
  constructor(max: number, reusable: (id: number) => boolean) {
    this.pool = new IdPool(max, reusable);
  }

  /** The id of `key`, allocating one if needed; `fresh` is told about new ids (counter zero points). */
  get(key: string, fresh: (id: number) => void): number {
    const have = this.byKey.get(key);
    if (have !== undefined) return have;
    const id = this.pool.take(fresh);
    this.byKey.set(key, id);
    return id;
  }

  /** How many keys hold an id. */
  get size(): number {
    return this.byKey.size;
  }

  /** Forgets every key not in `live`; `forgot` is told each (key, id). */
  retain(live: Set<string>, forgot: (key: string, id: number) => void = () => {}): void {
    // Deleting the entry being visited is safe while iterating a Map.
    for (const [k, id] of this.byKey) {
      if (live.has(k)) continue;
      this.byKey.delete(k);
      this.pool.release(id);
      forgot(k, id);
    }
  }

  /** Undoes get() of a new key, or retain() of a gone one (with `id`, its old id back). */
  forget(key: string): void {
    const id = this.byKey.get(key);
    if (id === undefined) return;
    this.byKey.delete(key);
    this.pool.release(id);
  }
  restore(key: string, id: number): void {
    this.byKey.set(key, id);
    this.pool.hold(id);
  }

  peek(key: string): number | undefined {
    return this.byKey.get(key);
  }
}

export class RuleIds {
  readonly svc: IdAllocator;
  /**
   * Destination ids by service key text, then by destination (destSlotKey): one map of
   * 100 000 long text keys took a restore a third of a second to fill; 10 000 maps of ten
   * number keys take a fraction of that, and keep no strings alive.
   */
  private readonly destsOf = new Map<string, Map<DestSlotKey, number>>();
  private readonly destPool: IdPool;
  /**
   * The ids of the rules last synced, in their order: service s has svcIds[s], and its
   * i-th destination destIds[destStart[s] + i]. Compiling, listing and sampling rates
   * read these instead of building a key string per destination and looking it up (a
   * third of a second per pass at 100 000 destinations).
   */
  svcIds: Int32Array = new Int32Array(0);
  destIds: Int32Array = new Int32Array(0);
  destStart: Int32Array = new Int32Array(1);
  /** How to take the last sync() back (undo()), until keep() says it stands. */
  private undoLog: UndoLog | null = null;
  constructor(destInUse: (id: number) => boolean) {
    this.svc = new IdAllocator(MAX_SVC, () => true);
    this.destPool = new IdPool(MAX_DEST, (id) => !destInUse(id));
  }

  /** A destination's key: its service's key text and its own, as health checks name it. */
  static destKey(svcKey: string, d: { addr: string; port: number }): string {
    return `${svcKey}|${destKeyText(d)}`;
  }

  /** The id of the destination with this destKey(), if it has one. */
  destId(key: string): number | undefined {
    const bar = key.indexOf("|"); // a service key text has none
    const slash = key.lastIndexOf("/"); // destKeyText: addr/port
    return this.destsOf.get(key.slice(0, bar))?.get(destSlotKey({ addr: key.slice(bar + 1, slash), port: Number(key.slice(slash + 1)) }));
  }

  /**
   * Assigns ids to everything in `rules`, drops ids of what is gone, and records them in
   * rule order. Until keep(), undo() takes all of it back: the gone get their ids again,
   * so a change that fails later (the kernel refusing a route) leaves every counter and
   * connection where it was. (A new object may have been given an id freed by the same
   * sync, after the pool came round; its old owner then gets it back with counters that
   * read from the new object's zero point.)
   */
  sync(rules: RuleSet, fresh: (kind: "svc" | "dest", id: number) => void): void {
    const services = rules.services;
    const n = services.length;
    const start = new Int32Array(n + 1);
    for (let s = 0; s < n; s++) start[s + 1] = start[s] + services[s].dests.length;
    // Each key is built once.
    const svcKeys: string[] = new Array(n);
    const destKeys: DestSlotKey[] = new Array(start[n]);
    for (let s = 0; s < n; s++) {
      svcKeys[s] = serviceKeyText(services[s].key);
      const dests = services[s].dests;
      for (let i = 0; i < dests.length; i++) destKeys[start[s] + i] = destSlotKey(dests[i]);
    }
    const log: UndoLog = {
      svcIds: this.svcIds, destIds: this.destIds, destStart: this.destStart,
      goneSvc: [], goneDests: [], goneMaps: [], newSvc: [], newDests: [], newMaps: [],
    };
    this.undoLog = log;
    // Ids of what is gone are freed first, so that what is new may take them. Nothing
    // to forget when nothing is held (the first restore).
    if (this.svc.size > 0) this.svc.retain(new Set(svcKeys), (k, id) => log.goneSvc.push(k, id));
    if (this.destsOf.size > 0) this.forgetDests(svcKeys, destKeys, start, log);
    const svcIds = new Int32Array(n);
    const destIds = new Int32Array(start[n]);
    const freshDest = (id: number) => fresh("dest", id);
    for (let s = 0; s < n; s++) {
      const sk = svcKeys[s];
      svcIds[s] = this.svc.get(sk, (id) => { log.newSvc.push(sk); fresh("svc", id); });
      let m = this.destsOf.get(sk);
      const created = m === undefined;
      if (m === undefined) {
        this.destsOf.set(sk, (m = new Map()));
        log.newMaps.push(sk);
      }
      for (let j = start[s]; j < start[s + 1]; j++) {
        let id = created ? undefined : m.get(destKeys[j]);
        if (id === undefined) {
          m.set(destKeys[j], (id = this.destPool.take(freshDest)));
          log.newDests.push(m, destKeys[j]);
        }
        destIds[j] = id;
      }
    }
    this.svcIds = svcIds;
    this.destIds = destIds;
    this.destStart = start;
  }

  /** The last sync() stands: undo() no longer applies. */
  keep(): void {
    this.undoLog = null;
  }

  /** Takes the last sync() back (see sync()); nothing when it was kept. */
  undo(): void {
    const log = this.undoLog;
    if (log === null) return;
    this.undoLog = null;
    for (let k = 0; k < log.newDests.length; k += 2) {
      const m = log.newDests[k] as Map<DestSlotKey, number>, dk = log.newDests[k + 1] as DestSlotKey;
      this.destPool.release(m.get(dk)!);
      m.delete(dk);
    }
    for (const sk of log.newMaps) this.destsOf.delete(sk);
    for (const sk of log.newSvc) this.svc.forget(sk);
    for (let k = 0; k < log.goneMaps.length; k += 2) {
      const m = log.goneMaps[k + 1] as Map<DestSlotKey, number>;
      this.destsOf.set(log.goneMaps[k] as string, m);
      for (const id of m.values()) this.destPool.hold(id);
    }
    for (let k = 0; k < log.goneDests.length; k += 3) {
      const m = log.goneDests[k] as Map<DestSlotKey, number>, id = log.goneDests[k + 2] as number;
      m.set(log.goneDests[k + 1] as DestSlotKey, id);
      this.destPool.hold(id);
    }
    for (let k = 0; k < log.goneSvc.length; k += 2) this.svc.restore(log.goneSvc[k] as string, log.goneSvc[k + 1] as number);
    this.svcIds = log.svcIds;
    this.destIds = log.destIds;
    this.destStart = log.destStart;
  }

  /** Frees the ids of destinations (and of whole services) that the synced rules no longer have. */
  private forgetDests(svcKeys: readonly string[], destKeys: readonly DestSlotKey[], start: Int32Array, log: UndoLog): void {
    const live = new Map<string, number>();
    svcKeys.forEach((sk, s) => live.set(sk, s));
    for (const [sk, m] of this.destsOf) {
      const s = live.get(sk);
      if (s === undefined) {
        // The map goes whole; its entries stay in it for undo().
        for (const id of m.values()) this.destPool.release(id);
        this.destsOf.delete(sk);
        log.goneMaps.push(sk, m);
        continue;
      }
      // Most services keep every destination: a set only when one is gone.
      let held = 0;
      for (let j = start[s]; j < start[s + 1]; j++) if (m.has(destKeys[j])) held++;
      if (held === m.size) continue;
      const keep = new Set(destKeys.slice(start[s], start[s + 1]));
      for (const [dk, id] of m) {
        if (keep.has(dk)) continue;
        m.delete(dk);
        this.destPool.release(id);
        log.goneDests.push(m, dk, id);
      }
    }
  }
}

/**
 * What a sync() changed: the arrays it replaced; the (key, id) pairs it freed (services,
 * destinations, and whole maps of gone services); the keys it gave new ids. Flat arrays
 * of pairs and triples: a restore of 100 000 destinations logs each.
 */
interface UndoLog {
  svcIds: Int32Array;
  destIds: Int32Array;
  destStart: Int32Array;
  goneSvc: (string | number)[];
  goneDests: (Map<DestSlotKey, number> | DestSlotKey)[];
  goneMaps: (string | Map<DestSlotKey, number>)[];
  newSvc: string[];
  newDests: (Map<DestSlotKey, number> | DestSlotKey)[];
  newMaps: string[];
}

/** A destination within its service: IPv4 address and port as one number, else destKeyText. */
type DestSlotKey = number | string;

function destSlotKey(d: { addr: string; port: number }): DestSlotKey {
  const v4 = dottedQuad(d.addr);
  return v4 === null ? destKeyText(d) : (v4 >>> 0) * 65536 + d.port;
}
