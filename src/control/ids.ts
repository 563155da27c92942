// Stable numeric ids for services and destinations: the data plane's slot numbers for
// counters and connection entries. 0 is never handed out ("unset"). An id stays with its
// service/destination while the rules hold it; a freed destination id is reused only
// once no connection entry counts against it any more, so a new destination never
// inherits an old one's ActiveConn/InActConn.
import { MAX_DEST, MAX_SVC } from "../stats/counters.ts";
import { ENOMEM_ERROR } from "./errors.ts";
import { destKeyText, type RuleSet, serviceKeyText } from "./model.ts";

export class IdAllocator {
  private readonly byKey = new Map<string, number>();
  /** 1 for every id a key holds (kept in step with byKey: a Set rebuilt per new id made
   *  a restore of 100 000 destinations quadratic). */
  private readonly taken: Uint8Array;
  private next = 1;
  constructor(private readonly max: number, private readonly reusable: (id: number) => boolean) {
    this.taken = new Uint8Array(max);
  }

  /** The id of `key`, allocating one if needed; `fresh` is told about new ids (counter zero points). */
  get(key: string, fresh: (id: number) => void): number {
    const have = this.byKey.get(key);
    if (have !== undefined) return have;
    for (let n = 0; n < this.max; n++) {
      const id = this.next;
      this.next = this.next + 1 >= this.max ? 1 : this.next + 1;
      if (this.taken[id] === 0 && this.reusable(id)) {
        this.byKey.set(key, id);
        this.taken[id] = 1;
        fresh(id);
        return id;
      }
    }
    throw ENOMEM_ERROR();
  }

  /** Forgets every key not in `live`. */
  retain(live: Set<string>): void {
    for (const [k, id] of [...this.byKey]) {
      if (live.has(k)) continue;
      this.byKey.delete(k);
      this.taken[id] = 0;
    }
  }

  peek(key: string): number | undefined {
    return this.byKey.get(key);
  }
}

export class RuleIds {
  readonly svc: IdAllocator;
  readonly dest: IdAllocator;
  constructor(destInUse: (id: number) => boolean) {
    this.svc = new IdAllocator(MAX_SVC, () => true);
    this.dest = new IdAllocator(MAX_DEST, (id) => !destInUse(id));
  }

  static destKey(svcKey: string, d: { addr: string; port: number }): string {
    return `${svcKey}|${destKeyText(d)}`;
  }

  /** Assigns ids to everything in `rules` and drops ids of what is gone. */
  sync(rules: RuleSet, fresh: (kind: "svc" | "dest", id: number) => void): void {
    const liveSvc = new Set<string>();
    const liveDest = new Set<string>();
    for (const s of rules.services) {
      const sk = serviceKeyText(s.key);
      liveSvc.add(sk);
      for (const d of s.dests) liveDest.add(RuleIds.destKey(sk, d));
    }
    this.svc.retain(liveSvc);
    this.dest.retain(liveDest);
    for (const s of rules.services) {
      const sk = serviceKeyText(s.key);
      this.svc.get(sk, (id) => fresh("svc", id));
      for (const d of s.dests) this.dest.get(RuleIds.destKey(sk, d), (id) => fresh("dest", id));
    }
  }
}
